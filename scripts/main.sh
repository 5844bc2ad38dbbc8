#!/usr/bin/env bash
# The README's main job: sets up .venv and the offline Fashion-MNIST, then compares the curricula
# (every available method, 3 seeds) and prints the paper-style table. Extra arguments go to
# `kc-recipes` (e.g. --methods conventional,lerac --seeds 5 --epochs 6).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --data
export KERAS_BACKEND="${KERAS_BACKEND:-tensorflow}" TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/kc-recipes --recipe fashion_mnist --seeds 3 --epochs 4 "$@"
