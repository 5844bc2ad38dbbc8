"""Skips for tests of what a Keras between the declared floor and the newest tested one lacks.

scripts/test_floor.sh runs the package's tests on the oldest Keras setup.cfg allows: a test of a
Keras feature that came later is skipped there, with the version it needs and why, never failed.
"""

import keras
import pytest
from packaging.version import Version


def needs_keras(version, reason, backends=None):
    """A skip mark for Keras older than `version` (on `backends` only, when given)."""
    too_old = Version(keras.__version__) < Version(version)
    if backends is not None:
        too_old = too_old and keras.backend.backend() in backends
    return pytest.mark.skipif(
        too_old, reason=f"needs Keras >= {version} (found {keras.__version__}): {reason}"
    )
