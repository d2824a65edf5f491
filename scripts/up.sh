#!/usr/bin/env bash
# README's main job: set up (idempotent), build, then recsys-up: synthetic data dated to end today, every model trained
# (cached), the feature service loaded, the vector index built (cached), and every stage and the gateway serving on
# 127.0.0.1 with embedded defaults. Ctrl-C stops them all. Flags go to recsys-up (--help lists them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# shellcheck source=node-env.sh
source scripts/node-env.sh
echo "up: building" >&2
pnpm exec tsc -b packages/pipeline packages/all-in-one services/features services/retrieval services/preranking services/ranking services/reranking services/gateway
# exec: signals (Ctrl-C, SIGTERM) go straight to recsys-up, which stops the services in order.
exec node packages/pipeline/dist/cli.js "$@"
