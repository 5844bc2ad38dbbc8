"""Shared test set-up: quiet TF logs, a fixed seed per test, and the active Keras backend."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_and_clear():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


@pytest.fixture
def backend():
    return keras.backend.backend()


@pytest.fixture
def saved_plots(monkeypatch):
    """A list of `checks.SavedPlot`, one per figure the test saves (what it draws)."""
    from checks import record_saved_plots

    return record_saved_plots(monkeypatch)
