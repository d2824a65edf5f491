import { fromBinary, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { InvalidArgumentError } from './errors.js';

/**
 * What a server's request deserializer returns for bytes that are not the method's message: grpc-js answers a
 * deserializer that throws with INTERNAL ("Error deserializing request"), a server error for the client's mistake.
 * The interceptor turns this into INVALID_ARGUMENT naming the field whose bytes do not decode.
 */
export class UndecodableRequest {
  constructor(
    readonly typeName: string,
    readonly field: string,
    readonly problem: string,
  ) {}

  toError(): InvalidArgumentError {
    return new InvalidArgumentError(this.field, `the request is not a valid ${this.typeName}: ${this.problem}`);
  }
}

const WIRE_NAMES = ['varint', 'fixed64', 'length-delimited', 'start-group', 'end-group', 'fixed32'];

/** The wire type a field's values take (packed repeated scalars also arrive length-delimited). */
function expectedWireTypes(field: DescField): WireType[] {
  if (field.fieldKind === 'message' || field.fieldKind === 'map') return [WireType.LengthDelimited, WireType.StartGroup];
  const scalar = field.fieldKind === 'scalar' || (field.fieldKind === 'list' && field.listKind === 'scalar') ? field.scalar : undefined;
  const repeated = field.fieldKind === 'list';
  let own: WireType;
  if (field.fieldKind === 'enum' || (field.fieldKind === 'list' && field.listKind === 'enum')) own = WireType.Varint;
  else if (field.fieldKind === 'list' && field.listKind === 'message') return [WireType.LengthDelimited, WireType.StartGroup];
  else if (scalar === 9 || scalar === 12)
    own = WireType.LengthDelimited; // string, bytes
  else if (scalar === 1 || scalar === 6 || scalar === 16)
    own = WireType.Bit64; // double, fixed64, sfixed64
  else if (scalar === 2 || scalar === 7 || scalar === 15)
    own = WireType.Bit32; // float, fixed32, sfixed32
  else own = WireType.Varint;
  return repeated && own !== WireType.LengthDelimited ? [own, WireType.LengthDelimited] : [own];
}

const isMessageField = (field: DescField) => field.fieldKind === 'message' || (field.fieldKind === 'list' && field.listKind === 'message');

/** The snake_case path of the first field whose bytes do not decode, or undefined when none can be pointed at. */
function locate(schema: DescMessage, bytes: Uint8Array, path: string, depth: number): string | undefined {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const tagStart = reader.pos;
    let fieldNo: number;
    let wireType: WireType;
    try {
      [fieldNo, wireType] = reader.tag();
    } catch {
      return undefined;
    }
    const field = schema.fields.find((f) => f.number === fieldNo);
    const name = `${path}${field?.name ?? `field ${fieldNo}`}`;
    const valueStart = reader.pos;
    try {
      reader.skip(wireType, fieldNo);
    } catch {
      return name;
    }
    if (!field) continue;
    if (!expectedWireTypes(field).includes(wireType)) return name;
    try {
      fromBinary(schema, bytes.subarray(tagStart, reader.pos));
    } catch {
      if (isMessageField(field) && wireType === WireType.LengthDelimited && depth < 32) {
        const inner = new BinaryReader(bytes.subarray(valueStart, reader.pos)).bytes();
        return locate(field.message!, inner, `${name}.`, depth + 1) ?? name;
      }
      return name;
    }
  }
  return undefined;
}

/** The request decoded, or an UndecodableRequest naming the field at fault. */
export function decodeRequest(schema: DescMessage, bytes: Uint8Array): unknown {
  try {
    return fromBinary(schema, bytes);
  } catch (error) {
    const field = locate(schema, bytes, '', 0);
    let problem = (error as Error).message;
    if (field !== undefined) {
      const wire = /wire type (\d)/.exec(problem);
      if (wire) problem = `${problem} (${WIRE_NAMES[Number(wire[1])] ?? 'unknown'})`;
    }
    return new UndecodableRequest(schema.typeName, field ?? 'request', problem);
  }
}
