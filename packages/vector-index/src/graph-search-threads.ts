import type { Worker } from 'node:worker_threads';
import { builtWorkerScript, startWorker } from '@recsys/data';
import type { HnswParams } from './index-files.js';
import type { Metric } from './vector-store.js';

/** What a graph-search thread opens: a version's usearch graph file and the index settings it was built with. */
export interface SearchThreadStart {
  graphPath: string;
  dim: number;
  metric: Metric;
  hnsw: HnswParams;
  querySpace: boolean;
  /** The rows the graph must hold (meta.json's count). */
  count: number;
  /**
   * The items' float32 vectors, row by row, in shared memory (a SharedArrayBuffer, not copied to the thread): given,
   * the thread scores its candidates exactly and answers them best first (ScoredCandidates), so that the thread that
   * asked only filters them.
   */
  vectors?: Float32Array;
}

export type SearchThreadRequest =
  /** `query`: as the graph is searched; `vector`: as the candidates are scored (with `vectors`; the same unless the graph is query-aware). */
  { kind: 'search'; id: number; query: Float32Array; vector: Float32Array; beam: number } | { kind: 'close' } | { kind: 'crash' };

/** A thread's candidates with their exact scores, best first (score descending, then row ascending). */
export interface ScoredCandidates {
  rows: Int32Array;
  scores: Float64Array;
}

/** What a thread answers a search: the graph's candidates (keys = rows), or those scored (with `vectors`). */
export type ThreadAnswer = { keys: BigUint64Array } | ScoredCandidates;

export type SearchThreadReply =
  | { kind: 'ready' }
  | { kind: 'failed'; message: string }
  | { kind: 'found'; id: number; keys: BigUint64Array }
  | { kind: 'scored'; id: number; rows: Int32Array; scores: Float64Array }
  | { kind: 'search-failed'; id: number; message: string };

/** What the threads did since they started. */
export interface SearchThreadStats {
  /** Threads answering now. */
  threads: number;
  /** Threads starting in place of dead ones. */
  starting: number;
  /** Searches a thread answered. */
  searched: number;
  /** Of those, the ones it answered with exact scores (it holds the vectors). */
  scored: number;
  /** Searches no thread answered (a thread failed or died under them, or none was left): the caller searched itself. */
  failed: number;
  /** Threads started again after one died. */
  restarts: number;
}

interface PendingSearch {
  resolve(answer: ThreadAnswer | undefined): void;
}

/** One graph-search thread: its searches in flight, settled by its replies or all at once when it dies. */
class SearchThread {
  readonly pending = new Map<number, PendingSearch>();
  private nextId = 0;
  private dead = false;

  private constructor(
    private readonly worker: Worker,
    onDeath: (thread: SearchThread) => void,
    private readonly onReply: (answer: ThreadAnswer | undefined) => void,
  ) {
    worker.on('message', (reply: SearchThreadReply) => this.settle(reply));
    const die = () => {
      if (this.dead) return;
      this.dead = true;
      this.settleAll();
      onDeath(this);
    };
    worker.on('error', die);
    worker.on('exit', die);
  }

  /** A started thread, once it has opened the graph; rejects with why it could not. */
  static async start(
    spec: SearchThreadStart,
    name: string,
    onDeath: (thread: SearchThread) => void,
    onReply: (answer: ThreadAnswer | undefined) => void,
  ): Promise<SearchThread> {
    const { worker } = await startWorker(
      builtWorkerScript(__dirname, 'search-worker.js'),
      { workerData: spec, name },
      {
        name: `${name}: the search thread`,
        before: 'it opened the graph',
        ready: (reply) => {
          const r = reply as SearchThreadReply;
          if (r.kind === 'ready') return r;
          return new Error(r.kind === 'failed' ? `${name}: ${r.message}` : `${name}: the search thread answered ${r.kind} before ready`);
        },
      },
    );
    return new SearchThread(worker, onDeath, onReply);
  }

  /** The graph's candidates for `query` (copies of the queries are sent), or undefined if this thread failed to answer. */
  search(query: Float32Array, vector: Float32Array, beam: number): Promise<ThreadAnswer | undefined> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, { resolve });
      this.worker.postMessage({ kind: 'search', id, query, vector, beam } satisfies SearchThreadRequest);
    });
  }

  private settle(reply: SearchThreadReply): void {
    if (reply.kind !== 'found' && reply.kind !== 'scored' && reply.kind !== 'search-failed') return;
    const search = this.pending.get(reply.id);
    if (search === undefined) return;
    this.pending.delete(reply.id);
    const answer: ThreadAnswer | undefined =
      reply.kind === 'found' ? { keys: reply.keys } : reply.kind === 'scored' ? { rows: reply.rows, scores: reply.scores } : undefined;
    this.onReply(answer);
    search.resolve(answer);
  }

  /** Every search in flight answered "no answer" (the caller searches itself). */
  settleAll(): void {
    for (const search of this.pending.values()) {
      this.onReply(undefined);
      search.resolve(undefined);
    }
    this.pending.clear();
  }

  /**
   * Asks the thread to end: it does once the search it is running is done. Never worker.terminate(): one that lands
   * inside a usearch call aborts the whole process (the binding throws a C++ exception nothing catches). A search takes
   * milliseconds.
   */
  async close(): Promise<void> {
    this.dead = true;
    this.settleAll();
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ kind: 'close' } satisfies SearchThreadRequest);
    await exited;
  }

  /** Makes the thread end between searches, as a crash would (for the specs); resolves once it has. */
  crash(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ kind: 'crash' } satisfies SearchThreadRequest);
    return exited;
  }
}

/**
 * Graph searches on threads of their own, so that a search (the largest part of a retrieval's CPU at a large catalogue)
 * does not hold the event loop: while one runs, the thread that asked decodes, fuses and answers other requests, and a
 * process of several stages (the all-in-one mode) uses a second core. Each thread memory-maps the version's graph file
 * (its pages are the page cache's, shared with every thread that maps it) and answers the graph's candidates; given the
 * vectors in shared memory it scores them exactly too (the same scoring code as the store's), best first, and the store
 * only filters them, so answers equal the store's own search. A search goes to the thread with
 * the fewest in flight. A search a thread fails to answer (it failed, died or was closed under it) resolves to
 * undefined and the caller searches itself; a thread that dies is started again, and a slot whose new thread cannot
 * start is left empty.
 */
export class GraphSearchThreads {
  private readonly counts = { searched: 0, scored: 0, failed: 0, restarts: 0 };
  private closed = false;
  /** Threads starting in place of dead ones. */
  private readonly starting = new Set<Promise<void>>();

  private constructor(
    private readonly spec: SearchThreadStart,
    private readonly label: string,
    private readonly threads: SearchThread[],
  ) {}

  /** `count` threads searching the graph of `spec`, each started and its graph opened; rejects if any cannot start. */
  static async start(spec: SearchThreadStart, count: number, label: string): Promise<GraphSearchThreads> {
    if (!Number.isInteger(count) || count <= 0) throw new RangeError(`${count} is not a positive number of search threads`);
    const pool = new GraphSearchThreads(spec, label, []);
    const started = await Promise.allSettled(Array.from({ length: count }, (_, k) => pool.startThread(k)));
    const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure !== undefined) {
      await pool.close();
      throw failure.reason as Error;
    }
    return pool;
  }

  private async startThread(slot: number): Promise<void> {
    const thread = await SearchThread.start(
      this.spec,
      `${this.label} search ${slot}`,
      (dead) => this.replace(dead, slot),
      (answer) => {
        if (answer === undefined) this.counts.failed++;
        else {
          this.counts.searched++;
          if ('rows' in answer) this.counts.scored++;
        }
      },
    );
    if (this.closed) {
      await thread.close();
      return;
    }
    this.threads.push(thread);
  }

  /** A dead thread out of the pool, and a new one in its slot (none if it cannot start). */
  private replace(dead: SearchThread, slot: number): void {
    const at = this.threads.indexOf(dead);
    if (at >= 0) this.threads.splice(at, 1);
    if (this.closed) return;
    this.counts.restarts++;
    const starting = this.startThread(slot).catch(() => undefined);
    this.starting.add(starting);
    void starting.finally(() => this.starting.delete(starting));
  }

  /**
   * The graph's candidates for `query` from the least busy thread (scored against `vector` when the threads hold the
   * vectors), or undefined (none answered): search yourself.
   */
  search(query: Float32Array, vector: Float32Array, beam: number): Promise<ThreadAnswer | undefined> {
    let best: SearchThread | undefined;
    for (const thread of this.threads) if (best === undefined || thread.pending.size < best.pending.size) best = thread;
    if (best === undefined) {
      this.counts.failed++;
      return Promise.resolve(undefined);
    }
    return best.search(query, vector, beam);
  }

  stats(): SearchThreadStats {
    return { threads: this.threads.length, starting: this.starting.size, ...this.counts };
  }

  /** Ends one thread as a crash would (for the specs: what happens to its searches and to the pool). */
  crashOne(): Promise<void> {
    const thread = this.threads[0];
    if (thread === undefined) throw new Error('no search thread is running');
    return thread.crash();
  }

  /** Ends every thread, those still starting included; searches in flight resolve to undefined. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A thread still starting (one that replaces a dead one) ends as soon as it is up: waited for too, so that no
    // thread outlives the pool's close.
    await Promise.all([...this.threads.splice(0).map((thread) => thread.close()), ...this.starting]);
  }
}
