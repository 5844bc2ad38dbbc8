"""CBS sigma schedule: pure functions of the epoch (Sinha, Garg, Larochelle, NeurIPS 2020)."""

import math

from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_number
from keras_curriculum._validation import take_renamed
from keras_curriculum.cbs.smoothing import DEFAULT_BYPASS_TOLERANCE
from keras_curriculum.cbs.smoothing import bypass_sigma
from keras_curriculum.cbs.smoothing import check_sigma


def check_decay(factor, every):
    """SigmaDecay's `factor` in (0, 1] and `every` >= 1, as (float, int)."""
    return (check_number("factor", factor, low=0.0, high=1.0, low_open=True),
            check_int("every", every, 1))


def sigma_at_epoch(initial_sigma, epoch, factor=0.9, every=5):
    """The CBS sigma of epoch `epoch` (counted from 0): sigma_0 * factor ** floor(epoch / every)."""
    initial_sigma = check_sigma(initial_sigma, "initial_sigma")
    factor, every = check_decay(factor, every)
    return initial_sigma * factor ** (check_int("epoch", epoch, 0) // every)


def bypass_epoch(initial_sigma, factor=0.9, every=5, kernel_size=3, rank=2,
                 bypass_tolerance=DEFAULT_BYPASS_TOLERANCE, **deprecated):
    """The first epoch at which the decayed kernel is the identity within `bypass_tolerance`.

    From this epoch on, `GaussianSmoothing` passes its input through. Returns `math.inf` if that
    never happens (`factor=1`, or `bypass_tolerance=None`). `tolerance` is the deprecated name
    of `bypass_tolerance`.
    """
    bypass_tolerance = take_renamed(deprecated, {"tolerance": "bypass_tolerance"},
                                    "bypass_epoch").get("bypass_tolerance", bypass_tolerance)
    initial_sigma = check_sigma(initial_sigma, "initial_sigma")
    factor, every = check_decay(factor, every)
    threshold = bypass_sigma(kernel_size, rank, bypass_tolerance)  # checks the other three
    if bypass_tolerance is None:
        return math.inf
    if initial_sigma <= threshold:
        return 0
    if factor >= 1:
        return math.inf

    def reached(decays):
        return sigma_at_epoch(initial_sigma, decays * every, factor, every) <= threshold

    decays = math.ceil(math.log(threshold / initial_sigma) / math.log(factor))
    # Rounding in the logarithms can put the estimate one decay off: settle it on the schedule.
    while decays > 0 and reached(decays - 1):
        decays -= 1
    while not reached(decays):
        decays += 1
    return decays * every
