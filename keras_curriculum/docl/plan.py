"""DoCL's Algorithm 1 as a pure function of the epoch: warm start, episodes, refresh passes."""

import math
from typing import NamedTuple

from keras_curriculum._validation import check_int

PHASES = ("warmup", "sample", "refresh")


class EpochPlan(NamedTuple):
    phase: str  # "warmup", "sample" or "refresh"
    episode: int  # -1 during the warm start
    size: int  # examples trained in this epoch


def episode_length(episode, episode_epochs):
    if isinstance(episode_epochs, (list, tuple)):
        return int(episode_epochs[min(episode, len(episode_epochs) - 1)])
    return int(episode_epochs)


def subset_size(episode, num_examples, fraction_decay, min_fraction, initial_fraction=1.0):
    """Subset size k_m of episode m, at most n:
    max(min_fraction n, initial_fraction n fraction_decay^m)."""
    size = int(round(initial_fraction * num_examples * fraction_decay**episode))
    return min(num_examples, max(int(math.ceil(min_fraction * num_examples)), size))


def epoch_plan(epoch, num_examples, warmup_epochs=5, episode_epochs=10, fraction_decay=0.9,
               min_fraction=0.2, initial_fraction=1.0, refresh=True):
    """What DoCL's Algorithm 1 does in `epoch` (from 0): a pure function of the epoch index.

    Epochs `0 .. warmup_epochs - 1` train on all data. Then come episodes: episode m has
    `episode_length(m)` sampling epochs of k_m examples each, followed (with `refresh`) by one
    full pass in uniform random order that refreshes every score.
    """
    # A NaN or infinite epoch would never leave the episode loop below.
    epoch = check_int("epoch", epoch, 0)
    if epoch < warmup_epochs:
        return EpochPlan("warmup", -1, num_examples)
    remaining, episode = epoch - warmup_epochs, 0
    while True:
        length = episode_length(episode, episode_epochs)
        total = length + int(refresh)
        if remaining < total:
            break
        remaining -= total
        episode += 1
    if remaining >= length:
        return EpochPlan("refresh", episode, num_examples)
    size = subset_size(episode, num_examples, fraction_decay, min_fraction, initial_fraction)
    return EpochPlan("sample", episode, size)
