#!/bin/sh
# The image's entry point (after tini): the first argument picks the service or tool, the rest are its flags.
set -eu
app=${RECSYS_APP_DIR:-/app}
usage() {
  cat <<USAGE
usage: recsys COMMAND [ARGS...]

servers (configured by environment variables; see each service's README):
  gateway        REST and gRPC front door (GRPC_PORT 15050, HTTP_PORT 8080)
  features       feature service (GRPC_PORT 15051; REDIS_URL for Redis)
  retrieval      two-tower + vector search (GRPC_PORT 15052; MODELS_DIR, INDEX_DIR or QDRANT_URL)
  preranking     light model (GRPC_PORT 15053; MODELS_DIR)
  ranking        DLRM with dynamic batching (GRPC_PORT 15054; MODELS_DIR)
  reranking      business rules (GRPC_PORT 15055; RERANKING_RULES_FILE)
  all-in-one     every stage and the feature service in one process (the gateway's GRPC_PORT and HTTP_PORT)

offline tools:
  train ...          recsys train: trains and exports the models (--out DIR)
  evaluate ...       recsys evaluate: scores a published version
  retrain ...        recsys retrain: exports the newest window of the event log, trains a candidate, publishes it
                     only when the gate finds it no worse than the serving version (then builds its index)
  recsys ...         the trainer CLI with any of its commands (train, evaluate, data)
  load-features ...  recsys-load-features: loads a model version's data into the feature service
  events ...         recsys-events: exports the event log as training data (export), online metrics per version (report)
  build-index ...    recsys-index build: publishes a vector index version (--index-dir DIR | --qdrant URL)
  features-cli ...   recsys-features: bulk loads JSONL/CSV rows, reads users, items, popular items
  up ...             recsys-up: the whole pipeline in this one container (--work-dir /tmp/recsys)
  evaluate-pipeline ...  recsys-evaluate-pipeline: the funnel evaluation through running services (funnel.json, funnel.html)

Every command takes --help where it has flags.
USAGE
}
# The V8 flags every server starts with (the young generation pinned, the old one's growth factor fixed): service-kit's
# SERVING_NODE_FLAGS, and ALL_IN_ONE_NODE_FLAGS for the all-in-one process (a larger young generation), their one home.
# (Read without the operator's NODE_OPTIONS: a --cpu-prof or --require there is meant for the server, not this lookup.)
serving_flags() { NODE_OPTIONS= node -p "require('$app/packages/service-kit/dist/node-flags.js').${1:-SERVING_NODE_FLAGS}.join(' ')"; }
[ $# -gt 0 ] || { usage >&2; exit 2; }
command=$1
shift
case "$command" in
  gateway | features | retrieval | preranking | ranking | reranking)
    flags=$(serving_flags)
    # shellcheck disable=SC2086 # the flags are words
    exec node $flags "$app/services/$command/dist/main.js" "$@" ;;
  train | evaluate | retrain) exec node "$app/packages/trainer/dist/cli.js" "$command" "$@" ;;
  recsys) exec node "$app/packages/trainer/dist/cli.js" "$@" ;;
  load-features) exec node "$app/packages/offline/dist/load-features-cli.js" "$@" ;;
  events) exec node "$app/packages/offline/dist/events-cli.js" "$@" ;;
  build-index) exec node "$app/services/retrieval/dist/index-cli.js" build "$@" ;;
  features-cli) exec node "$app/services/features/dist/cli.js" "$@" ;;
  up) exec node "$app/packages/pipeline/dist/cli.js" "$@" ;;
  evaluate-pipeline) exec node "$app/packages/pipeline/dist/evaluate-cli.js" "$@" ;;
  all-in-one)
    flags=$(serving_flags ALL_IN_ONE_NODE_FLAGS)
    # shellcheck disable=SC2086 # the flags are words
    exec node $flags "$app/packages/all-in-one/dist/main.js" "$@" ;;
  help | --help | -h) usage ;;
  *) echo "recsys: unknown command \"$command\"" >&2; usage >&2; exit 2 ;;
esac
