import { fromBinary } from '@bufbuild/protobuf';
import { features } from '@recsys/contracts';

/** Stored item bytes to messages, keeping the gaps. */
export function decodeItems(encoded: readonly (Uint8Array | undefined)[]): (features.Item | undefined)[] {
  return encoded.map((bytes) => (bytes ? fromBinary(features.ItemSchema, bytes) : undefined));
}
