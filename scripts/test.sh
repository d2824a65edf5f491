#!/usr/bin/env bash
# README's test command: set up (idempotent), then lint, check generated code, build, and run every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# shellcheck source=node-env.sh
source scripts/node-env.sh
pnpm test
