"""Assertions shared by the test files: recorded values, drawn plots, rebuilt configs.

- `assert_same_recorded(actual, desired, ...)`: two runs recorded the same values, *and* they
  recorded something. numpy's `assert_array_equal` / `assert_allclose` treat NaN as equal to
  NaN, so two runs that recorded nothing (all-NaN scores, every step counter still at its
  "never" value) would pass them.
- `saved_plots` (a fixture in `conftest.py`): what every figure saved during the test draws,
  read from matplotlib's artists when `savefig` runs, so plot tests check the drawn data.
- `rebuilt(obj)`: copies of a layer, metric, schedule or callback rebuilt from its config (as
  is, through JSON, and through `keras.saving`), for tests that compare their behaviour.
"""

import inspect
import json
from typing import NamedTuple

import keras
import numpy as np


def _recorded(values, missing):
    if missing is None or (isinstance(missing, float) and np.isnan(missing)):
        return np.isfinite(values)
    return np.isfinite(values) & (values != missing)


def assert_same_recorded(
    actual, desired, *, min_recorded=None, missing=None, rtol=0.0, atol=0.0, err_msg=""
):
    """Asserts `actual` equals `desired` (within `rtol`, `atol`) and both recorded enough.

    An entry is recorded when it is finite and not `missing` (the value the recorder starts
    from, e.g. -1 for "never visited"; NaN always counts as not recorded). Both arrays must
    have their recorded entries in the same places, at least `min_recorded` of them.

    Args:
        actual, desired: array-likes of the same shape.
        min_recorded: int, the least number of recorded entries; None: every entry.
        missing: the "nothing recorded" value besides NaN and +-inf, or None.
        rtol, atol: tolerances of the comparison (0: bit-identical values).
        err_msg: prefix of the failure messages.
    """
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert actual.shape == desired.shape, f"{err_msg} shapes {actual.shape} != {desired.shape}"
    needed = actual.size if min_recorded is None else min_recorded
    assert needed >= 1, "min_recorded must be >= 1: a comparison of nothing proves nothing"
    for name, values in (("actual", actual), ("desired", desired)):
        count = int(_recorded(values, missing).sum())
        assert count >= needed, (
            f"{err_msg} {name} recorded {count} of {values.size} entries, expected at least "
            f"{needed}: {values.ravel()[:20]}"
        )
    np.testing.assert_array_equal(
        _recorded(actual, missing),
        _recorded(desired, missing),
        err_msg=f"{err_msg} recorded in different places",
    )
    if rtol == 0.0 and atol == 0.0:
        np.testing.assert_array_equal(actual, desired, err_msg=err_msg)
    else:
        np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol, err_msg=err_msg)


# ---------------------------------------------------------------------------------------------
# Plots


class Curve(NamedTuple):
    label: str  # "" for a line left out of the legend
    x: np.ndarray
    y: np.ndarray


class SavedPlot(NamedTuple):
    path: str
    title: str
    xlabel: str
    ylabel: str
    yscale: str
    curves: list  # of Curve, in drawing order

    def curve(self, label):
        found = [c for c in self.curves if c.label == label]
        assert len(found) == 1, f"no single curve {label!r} in {[c.label for c in self.curves]}"
        return found[0]


def _read_figure(figure, path):
    (axes,) = figure.axes
    curves = []
    for line in axes.get_lines():
        label = line.get_label()
        xy = np.asarray(line.get_xydata(), dtype=float)
        curves.append(Curve("" if label.startswith("_") else label, xy[:, 0], xy[:, 1]))
    return SavedPlot(
        str(path), axes.get_title(), axes.get_xlabel(), axes.get_ylabel(), axes.get_yscale(), curves
    )


def record_saved_plots(monkeypatch):
    """Returns a list that receives a `SavedPlot` for every figure saved from now on."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    saved = []
    original = Figure.savefig

    def savefig(figure, fname, *args, **kwargs):
        saved.append(_read_figure(figure, fname))
        return original(figure, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved


def assert_curve(curve, x, y, rtol=1e-6):
    """`curve` draws the points (x, y); NaN (a gap in the line) must be at the same x."""
    np.testing.assert_array_equal(curve.x, np.asarray(x, dtype=float), err_msg=curve.label)
    y = np.asarray(y, dtype=float)
    np.testing.assert_array_equal(np.isnan(curve.y), np.isnan(y), err_msg=curve.label)
    assert np.isfinite(y).any(), f"{curve.label}: nothing drawn to compare"
    np.testing.assert_allclose(curve.y, y, rtol=rtol, err_msg=curve.label)


# ---------------------------------------------------------------------------------------------
# Configs


def rebuilt(obj):
    """Copies of `obj` rebuilt from its config: `from_config(get_config())`, the same through
    JSON, and `keras.saving` (de)serialization through JSON, as a `.keras` file stores it.

    The config must hold every argument of `__init__`; whether the copies behave like `obj` is
    for the caller to check, on inputs where each argument makes a difference."""
    config = obj.get_config()
    arguments = [
        name
        for name, parameter in inspect.signature(type(obj).__init__).parameters.items()
        if name != "self"
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    assert not set(arguments) - set(config), f"config lacks {set(arguments) - set(config)}"
    serialized = json.dumps(keras.saving.serialize_keras_object(obj))
    copies = [
        type(obj).from_config(config),
        type(obj).from_config(json.loads(json.dumps(config))),
        keras.saving.deserialize_keras_object(json.loads(serialized)),
    ]
    for copy in copies:
        assert type(copy) is type(obj) and copy is not obj, copy
    return copies
