#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine, idempotently:
# redis-server (tests start their own on a free port), pnpm 12.4.2, the workspace's packages.
# --reference also installs Debian's PyTorch and scikit-learn for the PyTorch yardstick of bench:train.
# --image also installs buildah, podman, runc, skopeo and debootstrap for `pnpm test:image` (no Docker daemon).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${1:-}" = "--reference" ] && ! /usr/bin/python3 -c 'import torch, sklearn' >/dev/null 2>&1; then
  missing+=(python3-torch python3-sklearn)
fi
if [ "${1:-}" = "--image" ]; then
  for tool in buildah podman runc skopeo debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]} with apt-get" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian package may start a system redis on 6379; the project never uses it.
fi

want_pnpm=$(node -p "require('./package.json').packageManager.split('@')[1]")
if [ "$(pnpm --version 2>/dev/null || true)" != "$want_pnpm" ]; then
  echo "setup: installing pnpm@$want_pnpm" >&2
  npm install -g "pnpm@$want_pnpm" >/dev/null
fi

pnpm install --frozen-lockfile
