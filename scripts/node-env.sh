# Sourced by the set-up, main and test scripts: puts the repo's pinned Node LTS (.node-version) first on PATH
# when scripts/setup.sh installed it under .tools/ (the machine's own node is used when it is that version).
_recsys_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_recsys_node="$(cat "$_recsys_root/.node-version")"
if [ -x "$_recsys_root/.tools/node-v$_recsys_node/bin/node" ]; then
  case ":$PATH:" in
    *":$_recsys_root/.tools/node-v$_recsys_node/bin:"*) ;;
    *) export PATH="$_recsys_root/.tools/node-v$_recsys_node/bin:$PATH" ;;
  esac
fi
unset _recsys_root _recsys_node
