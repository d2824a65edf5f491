#!/usr/bin/env bash
# README's test command: set up (idempotent), then lint, check generated code, build, run every test and check the
# Helm chart (pnpm test), then build the container image and run services from it (pnpm test:image; needs root for
# buildah/podman, skipped with a message otherwise).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# shellcheck source=node-env.sh
source scripts/node-env.sh
pnpm test
if [ "$(id -u)" -eq 0 ]; then
  pnpm run test:image
else
  echo "test:image skipped: building and running the image without a daemon needs root (buildah, podman, runc)" >&2
fi
