#!/usr/bin/env bash
# Starts and stops README's main job N times in a row (default 30), as a person would: `bash scripts/up.sh` in the
# background, wait for its ready message, Ctrl-C (SIGINT), wait for it to exit 0. Meant for a built tree whose work dir
# already holds trained models and an index (run `bash scripts/up.sh` once first), so no run retrains.
# Usage: bash scripts/up-repeat.sh [N] [recsys-up flags...]   (UP_READY_TIMEOUT_S: per-run wait, default 180)
# Prints one line per run, then `ready R of N, clean exits C of N`; exits 1 unless every run was ready and exited 0.
# The logs stay in the printed directory; a run that failed is named with the line that said why.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-30}
[ $# -gt 0 ] && shift
ready_timeout=${UP_READY_TIMEOUT_S:-180}
logs=$(mktemp -d "${TMPDIR:-/tmp}/up-repeat.XXXXXX")
echo "up-repeat: $runs runs of bash scripts/up.sh $*; logs in $logs"
ready=0
clean=0
for i in $(seq 1 "$runs"); do
  log="$logs/run-$i.log"
  : >"$log"
  started=$(date +%s%N)
  bash scripts/up.sh "$@" >"$log" 2>&1 &
  pid=$!
  state=timeout
  for ((tick = 0; tick < ready_timeout * 10; tick++)); do
    if grep -q '^recsys is ready' "$log"; then
      state=ready
      break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      state=ended
      break
    fi
    sleep 0.1
  done
  seconds=$(((($(date +%s%N) - started) / 1000000) / 100))
  kill -INT "$pid" 2>/dev/null
  wait "$pid"
  code=$?
  [ "$state" = ready ] && ready=$((ready + 1))
  [ "$state" = ready ] && [ "$code" -eq 0 ] && clean=$((clean + 1))
  line="run $i: $state after $((seconds / 10)).$((seconds % 10)) s, exit $code"
  if [ "$state" != ready ] || [ "$code" -ne 0 ]; then
    why=$(grep -m1 -E 'recsys-up:|EADDRINUSE|ended unexpectedly' "$log" || tail -n 1 "$log")
    line="$line: $why"
  fi
  echo "$line"
done
echo "ready $ready of $runs, clean exits $clean of $runs"
[ "$ready" -eq "$runs" ] && [ "$clean" -eq "$runs" ]
