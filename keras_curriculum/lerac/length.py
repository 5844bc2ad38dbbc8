"""How long LeRaC's curriculum lasts in a given fit: pure functions of the fit's length.

Defaults (the paper's proportions, Croitoru et al., IJCV 2024, Table 1):
- `DEFAULT_DURATION = 0.05`: k = 5 % of the fit. Table 1 uses k = 5 to 7 epochs over runs of
  100 to 200 epochs (2.5 % to 7 %); 5 % is inside that range for every run length.
- `DEFAULT_RATE_RATIO = 1e-5`: the deepest group starts 5 orders of magnitude below the first
  (eta_n^(0) = 1e-5 eta_1^(0)). Table 1 spans 3 orders (BERT, 5e-5 -> 5e-8) to 7 (ResNet-18
  with SGD, 1e-1 -> 1e-8); the paper gives no rule, so the middle of that span is our choice.

With `unit="auto"` a fractional duration is counted in epochs when it covers at least one
epoch of the fit, and in steps otherwise (when the steps per epoch are known), so a short fit
still gets a curriculum of about 5 % of its steps instead of a whole epoch.
"""

import warnings

from keras_curriculum.durations import describe_duration
from keras_curriculum.durations import is_fraction
from keras_curriculum.durations import resolve_duration

DEFAULT_DURATION = 0.05
DEFAULT_RATE_RATIO = 1e-5
UNITS = ("auto", "epoch", "step")
MAX_SHARE = 0.5  # beyond this share of the fit, LeRaC warns that it dominates the run


def resolve_unit(duration, unit, epochs=None, steps_per_epoch=None):
    """The unit k is counted in: `unit`, or for `"auto"` the epoch unless a fraction of the fit
    covers less than one epoch and the steps per epoch are known (then the step)."""
    if unit != "auto":
        return unit
    if is_fraction(duration) and epochs and steps_per_epoch and duration * epochs < 1:
        return "step"
    return "epoch"


def resolve_k(duration, unit, epochs, steps_per_epoch):
    """k in `unit`s (already resolved, not "auto") for a fit of `epochs` x `steps_per_epoch`."""
    if not is_fraction(duration):
        return int(duration)
    if epochs is None:
        raise ValueError(f"LeRaC(duration={duration}) is a fraction of the fit: pass `epochs`.")
    if unit == "epoch":
        return resolve_duration(duration, epochs)
    if not steps_per_epoch:
        raise ValueError(
            f"LeRaC(duration={duration}, unit='step') is a fraction of the fit's steps, "
            "and this dataset's length is unknown: pass `steps_per_epoch` to `fit` or an "
            "int duration."
        )
    return resolve_duration(duration, epochs * steps_per_epoch)


def curriculum_share(k, unit, epochs, steps_per_epoch=None):
    """The fraction of the fit that k `unit`s cover, or None if the fit's length is unknown."""
    if not epochs:
        return None
    if unit == "epoch":
        return k / epochs
    if not steps_per_epoch:
        return None
    return k / (epochs * steps_per_epoch)


def warn_if_dominant(duration, unit, k, epochs, steps_per_epoch=None):
    """Warns (before the first step) when the curriculum covers more than half the fit."""
    share = curriculum_share(k, unit, epochs, steps_per_epoch)
    if share is None or share <= MAX_SHARE:
        return
    total = f"{epochs} epochs" if unit == "epoch" else f"{epochs * steps_per_epoch} steps"
    warnings.warn(
        f"LeRaC(duration={duration!r}) keeps the curriculum for {describe_duration(k, unit)}, "
        f"{share:.0%} of this fit ({total}): more than half the run trains deep layers below "
        "the base rate. Pass a smaller `duration`, e.g. a fraction of the fit such as "
        f"duration={DEFAULT_DURATION} (the paper's proportion), or train longer.",
        stacklevel=3,
    )
