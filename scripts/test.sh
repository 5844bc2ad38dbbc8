#!/usr/bin/env bash
# The README's test command: sets up .venv, then runs the whole suite on the TensorFlow and
# JAX backends and the torch-capable part on PyTorch. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --data
export PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=2
status=0
for backend in tensorflow jax torch; do
  echo "=== pytest, KERAS_BACKEND=$backend ==="
  marker=()
  if [ "$backend" = torch ]; then marker=(-m "not no_torch"); fi
  set +e
  KERAS_BACKEND=$backend .venv/bin/python -m pytest -q -n 2 "${marker[@]}" "$@"
  rc=$?
  set -e
  # pytest exit 5 means no test ran: that is a failure here, not a pass.
  if [ $rc -ne 0 ]; then echo "pytest failed on $backend (exit $rc)"; status=1; fi
done
exit $status
