#!/usr/bin/env bash
# `pnpm test:image`: builds deploy/Dockerfile and runs services from it without a Docker daemon (buildah, podman,
# runc; vfs storage), on a Node.js 24 base built offline. Installs the tools when missing (setup.sh --image),
# keeps the base, the pnpm store and the storage under $RECSYS_IMAGE_CACHE (default ~/.cache/recsys-image).
# Needs root. The last output line is one JSON object (test/image/image-test.ts).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
t0=$(date +%s)
bash scripts/setup.sh --image
cache=${RECSYS_IMAGE_CACHE:-${HOME:-/root}/.cache/recsys-image}
mkdir -p "$cache/storage" "$cache/run"
cat >"$cache/storage.conf" <<CONF
# Written by scripts/test-image.sh: container storage of the image test, vfs (no overlay mounts needed).
[storage]
driver = "vfs"
graphroot = "$cache/storage"
runroot = "$cache/run"
CONF
export RECSYS_IMAGE_CACHE=$cache CONTAINERS_STORAGE_CONF=$cache/storage.conf
pnpm exec tsc -b test
RECSYS_IMAGE_SETUP_S=$(($(date +%s) - t0)) exec node test/dist/image/image-test.js
