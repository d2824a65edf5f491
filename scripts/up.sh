#!/usr/bin/env bash
# README's main job: set up (idempotent), build, and serve the pipeline on localhost with embedded
# defaults. Today the pipeline is the feature service (in memory unless REDIS_URL is set), loaded with
# the sample users and items. Ctrl-C stops it, draining in-flight calls.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
pnpm run build

export GRPC_PORT="${GRPC_PORT:-50051}"
export METRICS_PORT="${METRICS_PORT:-9464}"
address="127.0.0.1:$GRPC_PORT"

node services/features/dist/main.js &
service=$!
stop() { kill -TERM "$service" 2>/dev/null || true; wait "$service" 2>/dev/null || true; }
trap 'stop; exit 0' INT TERM
trap stop EXIT

cli="node services/features/dist/cli.js"
$cli wait --address "$address" --timeout 20000
$cli load --address "$address" \
  --users deploy/sample/users.jsonl --items deploy/sample/items.csv

cat <<MSG

The feature service serves on $address (metrics: http://127.0.0.1:$METRICS_PORT/metrics).
Try it:
  node services/features/dist/cli.js user user-1
  node services/features/dist/cli.js items item-1 item-2 no-such-item
Ctrl-C stops it.
MSG
wait $service
