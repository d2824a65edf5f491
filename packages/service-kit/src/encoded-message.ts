import { fromBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';

/**
 * A response already in protobuf binary form. A handler returns one to send bytes it assembled
 * itself (for example stored messages spliced into a repeated field) without decoding and
 * re-encoding them; the serialiser writes the bytes as they are.
 */
export class EncodedMessage<Desc extends DescMessage = DescMessage> {
  constructor(
    readonly schema: Desc,
    readonly bytes: Uint8Array,
  ) {}

  decode(): MessageShape<Desc> {
    return fromBinary(this.schema, this.bytes);
  }
}
