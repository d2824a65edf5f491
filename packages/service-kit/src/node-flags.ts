/**
 * V8 flags every serving process starts with, on node's command line before the script: the pipeline launcher
 * (@recsys/pipeline's ServiceProcess) and the image's entry point (deploy/recsys.sh) put them there. Command-line flags,
 * not NODE_OPTIONS: node refuses --min-semi-space-size in NODE_OPTIONS (and the command line wins over it).
 *
 * The young generation is pinned at 16 MiB semi-spaces (32 MiB committed once the first scavenge has run, seconds into
 * the traffic). Left to V8 it starts at 1 MiB and doubles each time the bytes surviving scavenges since the last growth
 * exceed its size, up to 64 MiB semi-spaces (128 MiB) with the 4 GiB heap limit of a 64-bit build, and shrinks again
 * after a lull in allocation: a service's resident memory then moved by up to ~110 MiB with no change in what it holds
 * (re-ranking in a 10-minute soak: 176 → 245 MiB as the new space doubled to 128 MiB, 262 → 155 MiB as it fell back to
 * 8 MiB, then 204 MiB, its V8 heap in use 30 to 95 MiB throughout). Pinned, it is sized once, within warm-up.
 *
 * The old generation grows by a fixed factor of 1.5 (`--heap-growing-percent=50`): after each full collection V8 lets
 * it reach 1.5 times what survived before it collects again. Left to V8 the factor follows the ratio of marking speed
 * to the rate objects are promoted, up to 4 with the 4 GiB heap limit of this machine (V8 caps it lower for a smaller
 * heap, which node sizes from a cgroup memory limit): after a burst (overload), the limit set then let re-ranking
 * fill its old generation with garbage for the whole of the following 10-minute soak, its RSS up 10–32% from a live
 * heap that stayed at 25–29 MiB (heap snapshots). With the factor fixed it collects every few seconds at 26 → 40 MiB
 * and its RSS stayed flat (+2.3%, 160 MiB against 240–260 before). The cost is more frequent full collections: one
 * every ~6 s at 58 requests/s, 10–25 ms of pause plus 20–40 ms of incremental marking steps each.
 */
export const SERVING_NODE_FLAGS: readonly string[] = servingFlags(16);

/**
 * The all-in-one process's flags: SERVING_NODE_FLAGS with 64 MiB semi-spaces (128 MiB of new space). One process
 * allocates for every stage, ~5x a single stage's rate, so at 16 MiB it scavenges ~5x as often, each time copying
 * what the requests in flight hold. Two same-hour A/B pairs at 1M items (`bench:pipeline`, all-in-one, 8 s per level,
 * 2026-12-05): at 32 clients 239 and 242 against 209 and 216 requests/s (REST), 5.4–5.5 against 6.3–6.6 ms of CPU
 * per answer; at 1 and 8 clients within the runs' spread; RSS +60–70 MiB.
 */
export const ALL_IN_ONE_NODE_FLAGS: readonly string[] = servingFlags(64);

function servingFlags(semiSpaceMiB: number): readonly string[] {
  return [`--min-semi-space-size=${semiSpaceMiB}`, `--max-semi-space-size=${semiSpaceMiB}`, '--heap-growing-percent=50'];
}
