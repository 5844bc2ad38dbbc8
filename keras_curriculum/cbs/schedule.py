"""CBS sigma schedule: pure functions of the epoch (Sinha, Garg, Larochelle, NeurIPS 2020)."""

import math

from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_number
from keras_curriculum._validation import take_renamed
from keras_curriculum.cbs.smoothing import DEFAULT_BYPASS_TOLERANCE
from keras_curriculum.cbs.smoothing import bypass_sigma
from keras_curriculum.cbs.smoothing import check_sigma
from keras_curriculum.durations import check_duration
from keras_curriculum.durations import is_fraction

# The paper's curve (Sinha et al., Table 1 and the 200-epoch CIFAR runs: sigma x 0.9 every 5
# epochs) as a fraction of the fit: 5 / 200.
DEFAULT_FACTOR = 0.9
DEFAULT_EVERY = 5 / 200


def check_decay(factor, every):
    """SigmaDecay's `factor` in (0, 1] and `every`, an int >= 1 or a fraction of the fit."""
    return (
        check_number("factor", factor, low=0.0, high=1.0, low_open=True),
        check_duration("every", every),
    )


def decay_period(every, epochs=None):
    """The decay period u in epochs: `every` itself (an int), or `every * epochs` for a
    fraction of a fit of `epochs` epochs (a float, not rounded: u = 0.025 * 8 = 0.2 epochs)."""
    if not is_fraction(every):
        return every
    if epochs is None:
        raise ValueError(
            f"`every` is a fraction of the fit ({every}): pass the fit's `epochs`. "
            f"Received: every={every}, epochs=None"
        )
    return every * check_int("epochs", epochs, 1)


def sigma_at_epoch(initial_sigma, epoch, factor=0.9, every=5, epochs=None):
    """The CBS sigma of epoch `epoch` (counted from 0).

    An int `every` is the paper's staircase, sigma_0 * factor ** floor(epoch / every). A
    fraction of the fit gives the same curve applied at every epoch,
    sigma_0 * factor ** (epoch / (every * epochs)): with every = 5/200 it is the paper's
    0.9 every 5 of 200 epochs, sigma_0 * 0.9 ** (40 epoch / epochs), in a fit of any length.
    """
    initial_sigma = check_sigma(initial_sigma, "initial_sigma")
    factor, every = check_decay(factor, every)
    epoch = check_int("epoch", epoch, 0)
    if is_fraction(every):
        return initial_sigma * factor ** (epoch / decay_period(every, epochs))
    return initial_sigma * factor ** (epoch // every)


def bypass_epoch(
    initial_sigma,
    factor=0.9,
    every=5,
    kernel_size=3,
    rank=2,
    bypass_tolerance=DEFAULT_BYPASS_TOLERANCE,
    epochs=None,
    **deprecated,
):
    """The first epoch at which the decayed kernel is the identity within `bypass_tolerance`.

    From this epoch on, `GaussianSmoothing` passes its input through. Returns `math.inf` if that
    never happens (`factor=1`, or `bypass_tolerance=None`). `every` as in `sigma_at_epoch`
    (`epochs` is needed for a fraction). `tolerance` is the deprecated name of
    `bypass_tolerance`.
    """
    bypass_tolerance = take_renamed(
        deprecated, {"tolerance": "bypass_tolerance"}, "bypass_epoch"
    ).get("bypass_tolerance", bypass_tolerance)
    initial_sigma = check_sigma(initial_sigma, "initial_sigma")
    factor, every = check_decay(factor, every)
    threshold = bypass_sigma(kernel_size, rank, bypass_tolerance)  # checks the other three
    if bypass_tolerance is None:
        return math.inf
    if initial_sigma <= threshold:
        return 0
    if factor >= 1:
        return math.inf

    period = decay_period(every, epochs)

    def reached(epoch):
        return sigma_at_epoch(initial_sigma, epoch, factor, every, epochs) <= threshold

    decays = math.ceil(math.log(threshold / initial_sigma) / math.log(factor))
    epoch = math.ceil(decays * period)
    # Rounding in the logarithms can put the estimate one decay off: settle it on the schedule.
    while epoch > 0 and reached(epoch - 1):
        epoch -= 1
    while not reached(epoch):
        epoch += 1
    return epoch
