"""Durations of the curricula: a count of units, or a fraction of the `fit`.

Every duration argument of the package (LeRaC's `duration`, `SigmaDecay`'s `every`, ...) takes
either an int >= 1, a count of the method's unit (epochs, or steps where the method has
`unit="step"`), which means exactly that count in any run; or a float in (0, 1), a fraction of
the `fit`, resolved when training starts from the fit's epochs (and steps per epoch, where the
unit is the step). A float >= 1 is refused: write counts as ints.
"""

import math
import numbers

from keras_curriculum._validation import check_int


def check_duration(name, value, allow_none=False, minimum=1):
    """`value` as an int >= `minimum` (a count) or a float in (0, 1) (a fraction of the fit)."""
    if value is None and allow_none:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return check_int(name, value, minimum)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value)
        if math.isfinite(value) and 0.0 < value < 1.0:
            return value
    expected = f"an int >= {minimum} (a count) or a float in (0, 1) (a fraction of the fit)"
    if allow_none:
        expected += " or None"
    # A float of 1 or more is a count written as a float: the wrong type, as for `check_int`.
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    error = ValueError if real and not (math.isfinite(value) and value >= 1) else TypeError
    raise error(f"`{name}` must be {expected}. Received: {name}={value!r}")


def is_fraction(value):
    return isinstance(value, float)


def resolve_duration(value, total):
    """The count a duration stands for in a fit of `total` units (a fraction: at least 1)."""
    if not is_fraction(value):
        return int(value)
    return max(1, int(math.floor(value * total + 0.5)))


def describe_duration(value, unit):
    """`"5 epochs"` or `"5% of the fit"`, for messages and plot titles."""
    if is_fraction(value):
        return f"{100 * value:g}% of the fit"
    return f"{value} {unit}{'' if value == 1 else 's'}"
