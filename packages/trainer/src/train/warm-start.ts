import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProto_DataType } from 'onnx-buf';
import type { Node } from '../graph/graph.js';

/** Float initializers of exported graphs by name: the params a published version was trained to. */
export type WarmStart = ReadonlyMap<string, { dims: number[]; data: Float32Array }>;

/** The float initializers of ONNX model files (several graphs' params merge; the trainer's param names are unique per model). */
export function warmStartFrom(graphs: readonly Uint8Array[]): WarmStart {
  const out = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const bytes of graphs) {
    for (const t of fromBinary(ModelProtoSchema, bytes).graph?.initializer ?? []) {
      if (t.dataType !== TensorProto_DataType.FLOAT) continue;
      const raw = t.rawData;
      const data =
        raw.byteLength > 0
          ? new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength))
          : Float32Array.from(t.floatData);
      out.set(t.name, { dims: t.dims.map(Number), data });
    }
  }
  return out;
}

/**
 * Starts params from a published version's where the shapes allow: a param with the same name and shape takes its
 * values; others (a vocabulary that grew, a changed layer) keep their fresh initialisation.
 */
export function applyWarmStart(params: readonly Node[], from: WarmStart): { copied: number; total: number; skipped: string[] } {
  let copied = 0;
  const skipped: string[] = [];
  for (const p of params) {
    const init = from.get(p.name!);
    const shape = p.shape as readonly number[];
    if (init && init.dims.length === shape.length && init.dims.every((d, k) => d === shape[k]) && init.data.length === p.data!.length) {
      (p.data as Float32Array).set(init.data);
      copied++;
    } else skipped.push(p.name!);
  }
  return { copied, total: params.length, skipped };
}
