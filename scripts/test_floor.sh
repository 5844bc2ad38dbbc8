#!/usr/bin/env bash
# The package's own tests (the recipes' are deselected: marker `recipes`) on the oldest Keras
# setup.cfg allows, with the TensorFlow, keras-hub and JAX that go with it
# (scripts/constraints/floor.txt), in their own environment ./.venv-floor, on the TensorFlow and
# JAX backends (FLOOR_BACKENDS picks others), without tests/test_scale.py (the distribution
# matrix, the slowest file). Tests of what that Keras lacks skip with the version
# they need (tests/keras_versions.py). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
PINS=scripts/constraints/floor.txt

# The floor tested must be the floor declared.
declared=$(sed -n 's/^ *keras>=\([0-9.]*\),.*/\1/p' setup.cfg)
pinned=$(sed -n 's/^keras==\([0-9.]*\)$/\1/p' "$PINS")
if [ -z "$declared" ] || { [ "$declared" != "$pinned" ] && [ "$declared.0" != "$pinned" ]; }; then
  echo "setup.cfg declares keras>=$declared but $PINS pins keras==$pinned"; exit 1
fi

PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv-floor/bin/python ]; then
  echo "[floor] creating .venv-floor with $PY"
  "$PY" -m venv .venv-floor
fi
.venv-floor/bin/python -m pip install -q --upgrade pip
.venv-floor/bin/python -m pip install -q -c "$PINS" -e ".[tests]"
echo "[floor] ready: $(.venv-floor/bin/python -c 'import keras, tensorflow, jax, keras_hub; print("keras", keras.__version__, "tf", tensorflow.__version__, "jax", jax.__version__, "keras-hub", keras_hub.__version__)')"

export PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=2
status=0
for backend in ${FLOOR_BACKENDS:-tensorflow jax}; do
  echo "=== pytest on the Keras floor, KERAS_BACKEND=$backend ==="
  set +e
  KERAS_BACKEND=$backend .venv-floor/bin/python -m pytest -q -n 2 -m "not recipes and not multihost" --ignore=tests/test_scale.py "$@"
  rc=$?
  set -e
  # pytest exit 5 means no test ran: that is a failure here, not a pass.
  if [ $rc -ne 0 ]; then echo "pytest failed on $backend at the Keras floor (exit $rc)"; status=1; fi
done
echo "[floor] $((SECONDS - start)) s"
exit $status
