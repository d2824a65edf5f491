// A graph-search thread of an embedded index (graph-search-threads.ts): memory-maps the version's usearch graph and
// answers searches for graph candidates (rows); given the items' vectors in shared memory it scores them exactly too,
// best first, and the store's own thread only filters them.
import { parentPort, workerData } from 'node:worker_threads';
import type { Index } from 'usearch';
import { touchRows } from '@recsys/data';
import { scoreRow, TopK } from './exact-search.js';
import { newUsearchIndex } from './usearch-index.js';
import type { SearchThreadReply, SearchThreadRequest, SearchThreadStart } from './graph-search-threads.js';

const port = parentPort!;
const start = workerData as SearchThreadStart;

let index: Index;
try {
  index = newUsearchIndex(start.dim, start.metric, start.hnsw, start.querySpace);
  index.view(start.graphPath);
  const graphDim = start.querySpace ? start.dim + 1 : start.dim;
  if (index.size() !== start.count || index.dimensions() !== graphDim)
    throw new Error(`holds ${index.size()} vectors of dim ${index.dimensions()}, expected ${start.count} of dim ${graphDim}`);
  port.postMessage({ kind: 'ready' } satisfies SearchThreadReply);
} catch (error) {
  port.postMessage({ kind: 'failed', message: `${start.graphPath}: ${(error as Error).message}` } satisfies SearchThreadReply);
  port.close();
}

port.on('message', (request: SearchThreadRequest) => {
  if (request.kind === 'close') {
    port.close();
    return;
  }
  // Ends the thread between searches, as a crash would (the specs). Not worker.terminate() from outside: one that lands
  // inside a usearch call makes its binding throw a C++ exception nothing catches, which aborts the whole process.
  if (request.kind === 'crash') process.exit(1);
  let reply: SearchThreadReply;
  try {
    const { keys } = index.search(request.query, request.beam, 1);
    reply = start.vectors === undefined ? { kind: 'found', id: request.id, keys } : scored(request.id, keys, request.vector, start.vectors);
  } catch (error) {
    reply = { kind: 'search-failed', id: request.id, message: (error as Error).message };
  }
  port.postMessage(
    reply,
    reply.kind === 'found' && wholeBuffer(reply.keys)
      ? [reply.keys.buffer as ArrayBuffer]
      : reply.kind === 'scored'
        ? [reply.rows.buffer as ArrayBuffer, reply.scores.buffer as ArrayBuffer]
        : [],
  );
});

/** The graph's candidates scored exactly against `vector`, best first (as the store's TopK orders them: score, then row). */
function scored(id: number, keys: BigUint64Array, vector: Float32Array, vectors: Float32Array): SearchThreadReply {
  const { dim, metric } = start;
  const n = keys.length;
  const rows = new Int32Array(n);
  for (let i = 0; i < n; i++) rows[i] = Number(keys[i]);
  // Every candidate's vector read first, the reads overlapping, then the scores from the cache.
  touchRows(vectors, rows, dim, n);
  const top = new TopK(n);
  for (let i = 0; i < n; i++) top.push(scoreRow(vectors, dim, metric, vector, rows[i]!), rows[i]!);
  const best = top.sorted();
  const scores = new Float64Array(best.length);
  for (let i = 0; i < best.length; i++) {
    rows[i] = best[i]!.row;
    scores[i] = best[i]!.score;
  }
  return { kind: 'scored', id, rows, scores };
}

/** Whether the keys fill their buffer alone (then it moves rather than being copied). */
function wholeBuffer(keys: BigUint64Array): boolean {
  return keys.byteOffset === 0 && keys.byteLength === keys.buffer.byteLength && keys.buffer instanceof ArrayBuffer;
}
