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
 */
export const SERVING_NODE_FLAGS: readonly string[] = ['--min-semi-space-size=16', '--max-semi-space-size=16'];
