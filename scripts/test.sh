#!/usr/bin/env bash
# The README's test command: sets up .venv, lints with ruff, then runs the whole suite on the
# TensorFlow backend and the package's tests (not the recipes', marker `recipes`: they drive the
# package through tf.data and the runner, the same code on every backend) on JAX and PyTorch
# (there without the tests marked `no_torch`). Extra arguments go to pytest.
# Usage: bash scripts/test.sh [--fast] [pytest arguments]
#   --fast: the TensorFlow backend only, the package's tests without those marked `slow`
#           (about 5 minutes after set-up).
set -euo pipefail
cd "$(dirname "$0")/.."
# Lint and format check (the tree is kept formatted with `ruff format .`); CHECK_FORMAT=0 skips
# the format check while a change is in progress.
CHECK_FORMAT="${CHECK_FORMAT:-1}"
fast=0
if [ "${1:-}" = "--fast" ]; then fast=1; shift; fi
bash scripts/setup.sh --data
export PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=2
status=0
echo "=== ruff ==="
.venv/bin/ruff check . || status=1
if [ "$CHECK_FORMAT" = 1 ]; then .venv/bin/ruff format --check . || status=1; fi
backends=(tensorflow jax torch)
if [ $fast = 1 ]; then backends=(tensorflow); fi
for backend in "${backends[@]}"; do
  echo "=== pytest, KERAS_BACKEND=$backend ==="
  marker=()
  # `multihost` tests start JAX processes of their own (4 CPU devices' worth): never beside
  # other tests, so they run once, serially, after the JAX leg.
  if [ $fast = 1 ]; then marker=(-m "not slow and not recipes and not multihost"); fi
  if [ "$backend" = tensorflow ] && [ $fast = 0 ]; then marker=(-m "not multihost"); fi
  if [ "$backend" = jax ]; then marker=(-m "not recipes and not multihost"); fi
  if [ "$backend" = torch ]; then marker=(-m "not no_torch and not recipes and not multihost"); fi
  set +e
  KERAS_BACKEND=$backend .venv/bin/python -m pytest -q -n 2 "${marker[@]}" "$@"
  rc=$?
  set -e
  # pytest exit 5 means no test ran: that is a failure here, not a pass.
  if [ $rc -ne 0 ]; then echo "pytest failed on $backend (exit $rc)"; status=1; fi
  if [ "$backend" = jax ]; then
    echo "=== pytest, KERAS_BACKEND=jax, multi-process (serial) ==="
    set +e
    KERAS_BACKEND=jax .venv/bin/python -m pytest -q -n 0 -m multihost "$@"
    rc=$?
    set -e
    if [ $rc -ne 0 ]; then echo "pytest failed on jax multihost (exit $rc)"; status=1; fi
  fi
done
exit $status
