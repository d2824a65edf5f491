#!/usr/bin/env bash
# The example funnel reports README links to: recsys-evaluate-pipeline on the default synthetic data (docs/funnel/synthetic)
# and, when ../shared/datasets/ml-100k is present, on MovieLens 100K (docs/funnel/ml100k; its models are trained once into
# .recsys/funnel-ml100k/models). The data stays where it is: only the reports are written into the repository.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=node-env.sh
source scripts/node-env.sh
pnpm run build >&2
node packages/pipeline/dist/evaluate-cli.js --out docs/funnel/synthetic "$@"
ml100k=${ML100K_DIR:-../shared/datasets/ml-100k}
if [ ! -f "$ml100k/u.data" ]; then
  echo "funnel-examples: $ml100k/u.data is absent: the ML-100K report is skipped" >&2
  exit 0
fi
models=.recsys/funnel-ml100k/models
if [ ! -d "$models/dlrm" ]; then
  echo "funnel-examples: training on ML-100K into $models" >&2
  node packages/trainer/dist/cli.js train --data "ml100k:$ml100k" --out "$models" --no-baseline >&2
fi
node packages/pipeline/dist/evaluate-cli.js --models "$models" --work-dir .recsys/funnel-ml100k --out docs/funnel/ml100k "$@"
