"""DoCL's Algorithm 1 as a pure function of the epoch: warm start, episodes, refresh passes.

Two ways to say how long the episodes are:
- explicit counts (`episode_epochs` an int or a list of ints, the last repeated): episode m has
  that many sampling epochs, then (with `refresh`) one refresh pass;
- the official schedule scaled to the fit (`OFFICIAL`, the default of `DoCL`): the episode ends
  of the authors' code, 5 10 15 20 30 40 60 90 140 210 300 of 300 epochs ([0, 5) is the warm
  start), scaled to a fit of E epochs by `official_episodes`.
"""

import math
from typing import NamedTuple

from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_sequence
from keras_curriculum.durations import is_fraction
from keras_curriculum.durations import resolve_duration

PHASES = ("warmup", "sample", "refresh")
OFFICIAL = "official"
# Episode ends of the official DoCL code (tianyizhou/DoCL) over its 300 epochs; the first
# entry ends the warm start.
OFFICIAL_ENDS = (5, 10, 15, 20, 30, 40, 60, 90, 140, 210, 300)
OFFICIAL_EPOCHS = 300
# The paper's warm start as a fraction of the run (T0 = 5 of 300 epochs).
DEFAULT_WARMUP = OFFICIAL_ENDS[0] / OFFICIAL_EPOCHS


class EpochPlan(NamedTuple):
    phase: str  # "warmup", "sample" or "refresh"
    episode: int  # -1 during the warm start
    size: int  # examples trained in this epoch


class Episode(NamedTuple):
    index: int  # m: sets the subset size k_m
    sampling: int  # sampling epochs
    refresh: bool  # a refresh pass after them


def episode_length(episode, episode_epochs):
    if isinstance(episode_epochs, (list, tuple)):
        return int(episode_epochs[min(episode, len(episode_epochs) - 1)])
    return int(episode_epochs)


def subset_size(episode, num_examples, fraction_decay, min_fraction, initial_fraction=1.0):
    """Subset size k_m of episode m, at most n:
    max(min_fraction n, initial_fraction n fraction_decay^m)."""
    size = int(round(initial_fraction * num_examples * fraction_decay**episode))
    return min(num_examples, max(int(math.ceil(min_fraction * num_examples)), size))


def official_episodes(epochs, warmup_epochs, refresh=True):
    """The official episode ends scaled to a fit of `epochs` epochs, as a list of `Episode`.

    End e of 300 becomes round(e * epochs / 300) (at least `warmup_epochs`, the last exactly
    `epochs`). An episode keeps its index m in the official schedule, so its subset size is the
    one the paper uses at that point of the run. Where a fit is too short for every episode to
    get a whole epoch, the schedule is compressed: episodes that round to 0 epochs are dropped
    (the next one starts where they would have), an episode of one epoch samples in it without
    a refresh pass, a longer one ends with its refresh pass (counted in its length), and the
    last episode has no refresh pass (no episode follows to use the refreshed scores).
    Returns [] when the warm start fills the fit.
    """
    epochs = check_int("epochs", epochs, 1)
    warmup_epochs = check_int("warmup_epochs", warmup_epochs, 0)
    ends = [
        max(warmup_epochs, math.floor(end * epochs / OFFICIAL_EPOCHS + 0.5))
        for end in OFFICIAL_ENDS[1:]
    ]
    episodes, start = [], warmup_epochs
    for index, end in enumerate(ends):
        length = end - start
        if length <= 0:
            continue
        last = end == ends[-1]
        with_refresh = refresh and length >= 2 and not last
        episodes.append(Episode(index, length - int(with_refresh), with_refresh))
        start = end
    return episodes


def _episodes(episode_epochs, refresh):
    """The episodes in order, without end: a table of `Episode` repeats its last row."""
    if (
        isinstance(episode_epochs, (list, tuple))
        and episode_epochs
        and isinstance(episode_epochs[0], Episode)
    ):
        yield from episode_epochs
        last = episode_epochs[-1]
        while True:
            yield last
    index = 0
    while True:
        yield Episode(index, episode_length(index, episode_epochs), refresh)
        index += 1


def epoch_plan(
    epoch,
    num_examples,
    warmup_epochs=5,
    episode_epochs=10,
    fraction_decay=0.9,
    min_fraction=0.2,
    initial_fraction=1.0,
    refresh=True,
):
    """What DoCL's Algorithm 1 does in `epoch` (from 0): a pure function of the epoch index.

    Epochs `0 .. warmup_epochs - 1` train on all data. Then come episodes: episode m has
    `episode_length(m)` sampling epochs of k_m examples each, followed (with `refresh`) by one
    full pass in uniform random order that refreshes every score. `episode_epochs` may also be
    a list of `Episode` (from `official_episodes`), which fixes each episode's index, sampling
    epochs and refresh pass.
    """
    # A NaN or infinite epoch would never leave the episode loop below.
    epoch = check_int("epoch", epoch, 0)
    if epoch < warmup_epochs:
        return EpochPlan("warmup", -1, num_examples)
    if isinstance(episode_epochs, (list, tuple)) and not episode_epochs:
        # The warm start fills the fit: any later epoch (outside it) trains on all data too.
        return EpochPlan("warmup", -1, num_examples)
    remaining = epoch - warmup_epochs
    for episode in _episodes(episode_epochs, refresh):
        total = episode.sampling + int(episode.refresh)
        if remaining < total:
            break
        remaining -= total
    if remaining >= episode.sampling:
        return EpochPlan("refresh", episode.index, num_examples)
    size = subset_size(episode.index, num_examples, fraction_decay, min_fraction, initial_fraction)
    return EpochPlan("sample", episode.index, size)


def check_episode_epochs(episode_epochs):
    """`"official"`, an int >= 1, or a non-empty list of them."""
    if isinstance(episode_epochs, str):
        if episode_epochs != OFFICIAL:
            raise ValueError(
                f"`episode_epochs` must be {OFFICIAL!r}, an int >= 1 or a list of them. "
                f"Received: episode_epochs={episode_epochs!r}"
            )
        return episode_epochs
    if isinstance(episode_epochs, (list, tuple)):
        return [
            check_int("episode_epochs", length, 1)
            for length in check_sequence("episode_epochs", episode_epochs)
        ]
    return check_int("episode_epochs", episode_epochs, 1)


def is_relative(warmup_epochs, episode_epochs):
    """Whether the plan depends on the fit's number of epochs."""
    return is_fraction(warmup_epochs) or episode_epochs == OFFICIAL


def resolve_plan(warmup_epochs, episode_epochs, epochs=None, refresh=True):
    """`(warmup_epochs, episode_epochs)` for `epoch_plan`, in epochs of a fit of `epochs`.

    A fractional warm start becomes round(fraction * epochs), at least 1 (the first scores
    come from it); `"official"` becomes `official_episodes(epochs, warmup)`. Counts pass as
    they are; `epochs` is needed only when something is relative to the fit.
    """
    if is_relative(warmup_epochs, episode_epochs) and epochs is None:
        raise ValueError(
            f"DoCL(warmup_epochs={warmup_epochs!r}, episode_epochs={episode_epochs!r}) is "
            "planned relative to the fit: pass `epochs` (the epochs `fit` will run)."
        )
    if is_fraction(warmup_epochs):
        warmup_epochs = resolve_duration(warmup_epochs, epochs)
    if episode_epochs == OFFICIAL:
        episode_epochs = official_episodes(epochs, warmup_epochs, refresh)
    return warmup_epochs, episode_epochs


def episode_steps(plans, steps):
    """The optimizer steps of each episode (the warm start first) of a fit whose epochs have
    `plans` (`EpochPlan`s) and `steps` (steps per epoch): the cycles of DoCL's cosine."""
    cycles = {}
    for plan, count in zip(plans, steps):
        cycles[plan.episode] = cycles.get(plan.episode, 0) + count
    return [max(cycles[key], 1) for key in sorted(cycles)]
