#!/usr/bin/env bash
# The README's main job: sets up .venv and the offline Fashion-MNIST, then compares the curricula
# (every available method, 3 seeds, `--length default`: 8 epochs) and prints the paper-style
# table with the activity column. Set-up time and the main job's time are printed separately at
# the end (budget: 20 minutes for the main job on a 2-core machine). Extra arguments go to
# `kc-recipes` (e.g. --length quick, --methods conventional,lerac --seeds 5 --epochs 6).
# KC_SKIP_SETUP=1 skips the set-up (an environment made already); KC_PYTHON names its python.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
if [ "${KC_SKIP_SETUP:-0}" != 1 ]; then bash scripts/setup.sh --data; fi
ready=$(date +%s)
echo "[main] set-up: $((ready - start)) s"
export KERAS_BACKEND="${KERAS_BACKEND:-tensorflow}" TF_CPP_MIN_LOG_LEVEL=2
set +e
"${KC_PYTHON:-.venv/bin/python}" -m keras_curriculum_recipes --recipe fashion_mnist \
  --length default --seeds 3 "$@"
rc=$?
set -e
end=$(date +%s)
echo "[main] set-up: $((ready - start)) s; main job: $((end - ready)) s (budget 1200 s);" \
     "total: $((end - start)) s; exit status $rc"
exit $rc
