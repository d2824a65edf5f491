import type { DescMessage } from '@bufbuild/protobuf';

/** Protobuf wire types, as a tag's low three bits carry them. */
export const WIRE = { varint: 0, fixed64: 1, length: 2, fixed32: 5 } as const;

/**
 * A field's number as the generated descriptor has it: wire-level code (byte splicing and scanning on the hot path)
 * takes every number from here, never from a hand-typed constant, so a renumbered field cannot go unnoticed.
 */
export function fieldNumber(schema: DescMessage, localName: string): number {
  const field = schema.fields.find((f) => f.localName === localName);
  if (field === undefined) throw new TypeError(`${schema.typeName} has no field ${localName}`);
  return field.number;
}

/** A field's tag (number << 3 | wire type), the first bytes of the field on the wire. */
export function fieldTag(schema: DescMessage, localName: string, wireType: number): number {
  return fieldNumber(schema, localName) * 8 + wireType;
}

/**
 * Field numbers that must be equal in every schema given, because one wire writer or reader serves them all; throws at
 * load when a contract change makes them differ.
 */
export function sharedFieldNumbers<const N extends string>(schemas: readonly DescMessage[], names: readonly N[]): Record<N, number> {
  const out = {} as Record<N, number>;
  for (const name of names) {
    const numbers = schemas.map((schema) => fieldNumber(schema, name));
    if (numbers.some((n) => n !== numbers[0])) {
      throw new TypeError(
        `${name} has different field numbers in ${schemas.map((s) => s.typeName).join(', ')}: ${numbers.join(', ')}; one wire module serves them all`,
      );
    }
    out[name] = numbers[0]!;
  }
  return out;
}
