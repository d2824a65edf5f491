import { type Tensor, evaluate } from '../graph/evaluate.js';
import type { Node } from '../graph/graph.js';
import { OPSET, toOnnxModel } from '../graph/onnx.js';
import { OrtRunner } from '../graph/ort-runner.js';
import type { InputDescription } from '../models/inputs.js';
import type { GraphDescription, VersionWriter } from '@recsys/model-format';

/** Above this, an exported graph does not compute what the trainer computes: refuse to publish it. */
export const PARITY_TOLERANCE = 1e-5;

export interface ExportedGraph {
  description: GraphDescription;
  bytes: Uint8Array;
}

/** Largest elementwise |a − b| relative to max(1, |a|). */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let k = 0; k < a.length; k++) worst = Math.max(worst, Math.abs(a[k]! - b[k]!) / Math.max(1, Math.abs(a[k]!)));
  return worst;
}

/**
 * Serialises a graph with its trained params as initializers, checks onnxruntime on the bytes
 * against the trainer's own forward pass on `check` feeds, and writes the file.
 */
export async function exportGraph(
  writer: VersionWriter,
  file: string,
  name: string,
  outputs: Record<string, Node>,
  inputs: InputDescription[],
  check: Record<string, Tensor>,
  metadata: Record<string, string>,
): Promise<ExportedGraph> {
  const bytes = toOnnxModel({ name, outputs, params: 'initializer', metadata });
  const runner = await OrtRunner.create(bytes, { threads: 1 });
  let parity = 0;
  try {
    const fromOrt = await runner.run(check);
    const fromTrainer = evaluate(Object.values(outputs), check);
    Object.keys(outputs).forEach((o, k) => (parity = Math.max(parity, maxDiff(fromTrainer[k]!.data, fromOrt[o]!.data))));
  } finally {
    await runner.release();
  }
  if (!(parity <= PARITY_TOLERANCE))
    throw new Error(`export ${file}: onnxruntime differs from the trainer by ${parity} (tolerance ${PARITY_TOLERANCE})`);
  const written = await writer.write(file, bytes);
  return {
    bytes,
    description: {
      file,
      sha256: written.sha256,
      bytes: written.bytes,
      inputs,
      outputs: Object.entries(outputs).map(([o, n]) => ({ name: o, dtype: 'float32', shape: [...n.shape] })),
      parityMaxAbsDiff: parity,
    },
  };
}

export { OPSET };
