"""Argument checks shared by every public constructor and entry point of the package.

Every check raises the house-style error "`name` must be <range>. Received: name=<value>" and
returns the value as the plain Python type the caller stores:

- `TypeError` when the value is not of an accepted type: a string or a list where a number is
  expected, a bool where a number is expected (`True` is an `int` to Python, never meant as 1
  here), a float where an integer is expected, None where the argument is required.
- `ValueError` when the type is right and the value is not: out of range, NaN, +-inf, or not
  one of the accepted names.

They run at construction (or, where the model is needed, in `on_train_begin`), so a bad
argument fails before any train step and leaves the model untouched.
"""

import math
import numbers
import os

import numpy as np


def _fail(error, name, expected, value):
    raise error(f"`{name}` must be {expected}. Received: {name}={value!r}")


def _or_none(expected, allow_none):
    return f"{expected} or None" if allow_none else expected


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def _bound(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def _interval(low, high, low_open, high_open):
    if low is not None and high is not None:
        return (
            f"in {'(' if low_open else '['}{_bound(low)}, {_bound(high)}{')' if high_open else ']'}"
        )
    if low is not None:
        return f"{'>' if low_open else '>='} {_bound(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_bound(high)}"
    return ""


def _check_real(name, value, kind, noun, bounds, allow_none):
    """The body of `check_int` and `check_number`; `bounds` = (low, high, low_open, high_open)."""
    expected = _or_none(f"{noun} {_interval(*bounds)}".rstrip(), allow_none)
    if _is_bool(value) or not isinstance(value, kind):
        _fail(TypeError, name, expected, value)
    low, high, low_open, high_open = bounds
    # Integers are compared as they are (a huge one does not fit a float, and is finite).
    number = int(value) if isinstance(value, numbers.Integral) else float(value)
    if (
        not (isinstance(number, int) or math.isfinite(number))
        or (low is not None and (number <= low if low_open else number < low))
        or (high is not None and (number >= high if high_open else number > high))
    ):
        _fail(ValueError, name, expected, value)


def check_int(name, value, minimum=None, maximum=None, allow_none=False):
    """`value` as an int in [minimum, maximum] (numpy integers accepted, bools and floats not)."""
    if value is None and allow_none:
        return None
    _check_real(
        name, value, numbers.Integral, "an integer", (minimum, maximum, False, False), allow_none
    )
    return int(value)


def check_number(
    name, value, low=None, high=None, low_open=False, high_open=False, allow_none=False
):
    """`value` as a finite float between the bounds (each closed unless `*_open`)."""
    if value is None and allow_none:
        return None
    _check_real(
        name, value, numbers.Real, "a finite number", (low, high, low_open, high_open), allow_none
    )
    return float(value)


def check_bool(name, value):
    """`value` as a bool; anything else (0, 1, "False", None) is a `TypeError`."""
    if not _is_bool(value):
        _fail(TypeError, name, "a bool (True or False)", value)
    return bool(value)


def check_choice(name, value, choices, allow_none=False):
    """`value` unchanged if it is one of the string `choices` (or None when allowed)."""
    if value is None and allow_none:
        return None
    if not (isinstance(value, str) and value in choices):
        _fail(ValueError, name, _or_none(f"one of {tuple(choices)}", allow_none), value)
    return value


def check_callable(name, value, allow_none=False):
    if not (callable(value) or (value is None and allow_none)):
        _fail(TypeError, name, _or_none("a callable", allow_none), value)
    return value


def check_path(name, value, allow_none=True):
    """A directory or file argument: a str or `os.PathLike` (returned unchanged)."""
    if not (isinstance(value, (str, os.PathLike)) or (value is None and allow_none)):
        _fail(TypeError, name, _or_none("a path (str or os.PathLike)", allow_none), value)
    return value


def check_sequence(name, value, allow_empty=False):
    """`value` as a list; a string, a mapping or a scalar is a `TypeError`."""
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple, np.ndarray)):
        _fail(TypeError, name, "a list", value)
    if not allow_empty and len(value) == 0:
        _fail(ValueError, name, "a non-empty list", value)
    return list(value)


def check_model(name, value):
    """`value` if it is a `keras.Model`."""
    import keras

    if not isinstance(value, keras.Model):
        raise TypeError(
            f"`{name}` must be a keras.Model. Received: {name} of type {type(value).__name__}"
        )
    return value


def check_data_format(data_format):
    """Resolves None to `keras.config.image_data_format()`; rejects anything else unknown."""
    import keras

    data_format = check_choice(
        "data_format", data_format, ("channels_last", "channels_first"), allow_none=True
    )
    return data_format or keras.config.image_data_format()


def take_renamed(kwargs, renames, owner):
    """Pops deprecated argument names from `kwargs`: `{new: value}` for the ones given.

    Old names keep working for one release with a `DeprecationWarning` (the old name's value is
    used); an unknown keyword is a `TypeError`, as Python itself says for a bad keyword.

    Args:
        kwargs: the `**kwargs` a constructor received.
        renames: dict old name -> new name.
        owner: the class or function name used in messages.
    """
    import warnings

    found = {}
    for old in list(kwargs):
        if old not in renames:
            raise TypeError(f"{owner}() got an unexpected keyword argument {old!r}")
        new = renames[old]
        warnings.warn(
            f"{owner}: `{old}` is deprecated and will be removed in the next release; use `{new}`.",
            DeprecationWarning,
            stacklevel=3,
        )
        found[new] = kwargs.pop(old)
    return found


def check_fit_has_data(owner, params):
    """`fit`'s steps per epoch (None: unknown), refusing 0: empty training data trains nothing.

    Keras runs a `fit` on an empty dataset or empty arrays without a word, 0 steps per epoch;
    a curriculum that counts in epochs or steps would otherwise report it as a length it does
    not know.
    """
    steps = (params or {}).get("steps")
    if steps == 0:
        raise ValueError(
            f"{owner}: the training data must hold at least one batch. Received: an empty "
            "dataset (`fit` runs 0 steps per epoch)."
        )
    return steps
