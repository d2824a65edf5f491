import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

/** The two-tower export's item vectors, unit length, by item id. */
export class ItemVectors {
  private constructor(
    readonly dim: number,
    private readonly data: Float32Array,
    private readonly rows: ReadonlyMap<string, number>,
  ) {}

  get size(): number {
    return this.rows.size;
  }

  /** The unit vector of an item; undefined when the export has none (or a zero vector). */
  get(itemId: string): Float32Array | undefined {
    const row = this.rows.get(itemId);
    return row === undefined ? undefined : this.data.subarray(row * this.dim, (row + 1) * this.dim);
  }

  static fromRows(ids: readonly string[], vectors: readonly (readonly number[])[]): ItemVectors {
    const dim = vectors[0]?.length ?? 0;
    const data = new Float32Array(ids.length * dim);
    vectors.forEach((v, i) => data.set(v, i * dim));
    return ItemVectors.normalised(ids, data, dim);
  }

  /** Reads `manifest.json`'s itemVectors from a two-tower version directory, checking size and checksum. */
  static async load(dir: string): Promise<ItemVectors> {
    const manifestPath = join(dir, 'manifest.json');
    const manifestText = await readFile(manifestPath, 'utf8').catch((error: unknown) => {
      throw new Error(`cannot read ${manifestPath}: ${(error as Error).message}`);
    });
    let manifest: unknown;
    try {
      manifest = JSON.parse(manifestText);
    } catch (error) {
      throw new Error(`${manifestPath}: malformed JSON (${(error as Error).message})`);
    }
    const parsed = manifestSchema.safeParse(manifest);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`${manifestPath}: ${issue.path.join('.')}: ${issue.message}`);
    }
    const { file, idsFile, count, dim, sha256 } = parsed.data.itemVectors;
    const bytes = await readFile(join(dir, file));
    if (bytes.byteLength !== count * dim * 4) {
      throw new Error(`${join(dir, file)}: ${bytes.byteLength} bytes, expected count × dim × 4 = ${count * dim * 4}`);
    }
    if (createHash('sha256').update(bytes).digest('hex') !== sha256)
      throw new Error(`${join(dir, file)}: checksum differs from the manifest`);
    const ids = (await readFile(join(dir, idsFile), 'utf8')).split('\n');
    if (ids.at(-1) === '') ids.pop();
    if (ids.length !== count) throw new Error(`${join(dir, idsFile)}: ${ids.length} ids, expected ${count}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const data = new Float32Array(count * dim);
    for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(i * 4, true);
    return ItemVectors.normalised(ids, data, dim);
  }

  private static normalised(ids: readonly string[], data: Float32Array, dim: number): ItemVectors {
    const rows = new Map<string, number>();
    for (let row = 0; row < ids.length; row++) {
      let norm = 0;
      for (let k = row * dim; k < (row + 1) * dim; k++) norm += data[k]! * data[k]!;
      // A zero vector has no direction: the item counts as having none. The first of duplicate ids wins.
      if (!(norm > 0) || rows.has(ids[row]!)) continue;
      const scale = 1 / Math.sqrt(norm);
      for (let k = row * dim; k < (row + 1) * dim; k++) data[k] *= scale;
      rows.set(ids[row]!, row);
    }
    return new ItemVectors(dim, data, rows);
  }
}

const manifestSchema = z.object({
  itemVectors: z.object(
    {
      file: z.string().min(1),
      idsFile: z.string().min(1),
      count: z.number().int().min(0),
      dim: z.number().int().min(1),
      dtype: z.literal('float32'),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
    },
    { error: 'missing: is this a two-tower model version directory?' },
  ),
});
