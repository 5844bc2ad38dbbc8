"""DoCL's episode plan scaled to any run length, and the per-episode cosine cycles.

Pure numpy: what the recipes pass to `DoCL(warmup_epochs=..., episode_epochs=[...])` and to
`CosineRestarts(cycle_steps, ...)`.

The official code (tianyizhou/DoCL, docl.py:45) splits its 300 epochs at
0 5 10 15 20 30 40 60 90 140 210 300: [0, 5) is the warm start, then 10 episodes of
5 5 5 10 10 20 30 50 70 90 epochs, each one cosine cycle of the learning rate.
"""

from typing import NamedTuple

import numpy as np

from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_number
from keras_curriculum._validation import check_sequence

OFFICIAL_EPISODE_ENDS = (0, 5, 10, 15, 20, 30, 40, 60, 90, 140, 210, 300)


class EpisodeSchedule(NamedTuple):
    """A warm start, then episodes.

    warmup_epochs: epochs of the warm start (>= 1).
    episode_epochs: sampling epochs of each episode (>= 1 each), as `kc.DoCL` takes them.
    ends: the epoch (exclusive) at which each episode ends, its refresh epochs included;
        `ends[-1]` is the run length.
    """

    warmup_epochs: int
    episode_epochs: tuple
    ends: tuple


def _check_ends(ends):
    ends = [check_int("ends", e, 0) for e in check_sequence("ends", ends)]
    if len(ends) < 3 or ends[0] != 0 or any(b <= a for a, b in zip(ends, ends[1:])):
        raise ValueError(
            "`ends` must be strictly increasing epochs starting at 0, with at least a warm "
            f"start and one episode (3 values). Received: ends={ends!r}"
        )
    return ends


def scaled_episodes(epochs, ends=OFFICIAL_EPISODE_ENDS, refresh_epochs=0):
    """The episode plan `ends` (official: out of 300 epochs) scaled to a run of `epochs`.

    Every boundary is scaled by `epochs / ends[-1]` and rounded half up, on the cumulative
    epochs, so the run is exactly `epochs` long and each boundary is within half an epoch of
    its proportional place. An episode must hold at least `1 + refresh_epochs` epochs (one
    sampling epoch and its refresh passes): a boundary that would leave a shorter episode,
    before or after it, is dropped and its epochs join the next episode. A short run
    therefore gets fewer, longer episodes, never an empty one; the warm start keeps at least
    one epoch. For example `scaled_episodes(20)` gives a 1-epoch warm start and episodes of
    1 1 1 2 3 5 6 epochs (the first three official episodes fall below one epoch each and
    merge), `scaled_episodes(300)` the official plan.

    Args:
        epochs: int, the run length, at least `2 + refresh_epochs` (a warm-start epoch and
            one episode).
        ends: strictly increasing epoch boundaries starting at 0: the warm start ends at
            `ends[1]`, episode i at `ends[i + 1]`.
        refresh_epochs: int >= 0, full passes that close each episode (`kc.DoCL` runs 1 when
            `refresh=True`); they count in the episode's epochs and are left out of
            `episode_epochs`.

    Returns:
        `EpisodeSchedule(warmup_epochs, episode_epochs, ends)`.
    """
    ends = _check_ends(ends)
    refresh_epochs = check_int("refresh_epochs", refresh_epochs, 0)
    shortest = 1 + refresh_epochs
    epochs = check_int("epochs", epochs, 1 + shortest)
    scale = epochs / ends[-1]
    targets = [int(np.floor(e * scale + 0.5)) for e in ends[1:]]
    warmup = min(max(1, targets[0]), epochs - shortest)
    kept = [warmup]
    for boundary in targets[1:-1]:
        if boundary - kept[-1] >= shortest and epochs - boundary >= shortest:
            kept.append(boundary)
    kept.append(epochs)
    lengths = np.diff(kept)
    return EpisodeSchedule(
        warmup, tuple(int(n) - refresh_epochs for n in lengths), tuple(int(b) for b in kept[1:])
    )


def cycle_steps(schedule, epoch_steps):
    """Optimizer steps of each cosine cycle: one for the warm start, one per episode.

    An episode's cycle covers its sampling epochs and its refresh epochs, as in the official
    code, where each episode's cosine runs over its sampled batches plus one full pass
    (docl.py:446). Pass the result to `CosineRestarts(cycle_steps, max_learning_rate,
    min_learning_rate, max_decay=f, min_decay=f)`: cycle c then starts at
    `max_learning_rate * f**c` and ends at `min_learning_rate * f**c` (the paper's f = 0.85;
    the warm start is cycle 0).

    Args:
        schedule: an `EpisodeSchedule`.
        epoch_steps: sequence of int >= 1, the optimizer steps of every epoch of the run
            (`schedule.ends[-1]` values; sampling epochs have fewer steps as k shrinks).

    Returns:
        list of int, `1 + len(schedule.episode_epochs)` cycle lengths summing to all steps.
    """
    if not isinstance(schedule, EpisodeSchedule):
        raise TypeError(f"`schedule` must be an EpisodeSchedule. Received: schedule={schedule!r}")
    steps = [check_int("epoch_steps", s, 1) for s in check_sequence("epoch_steps", epoch_steps)]
    if len(steps) != schedule.ends[-1]:
        raise ValueError(
            f"`epoch_steps` must list the steps of all {schedule.ends[-1]} epochs of the "
            f"schedule. Received {len(steps)} values."
        )
    bounds = [0, schedule.warmup_epochs, *schedule.ends]
    totals = np.cumsum([0] + steps)
    return [int(totals[b] - totals[a]) for a, b in zip(bounds, bounds[1:])]


def official_cycle_rates(
    num_episodes, max_rate=0.1, min_rate=5e-4, max_decay=0.9, min_decay=0.8, explore_episodes=5
):
    """Start and end rate of each episode's cosine in the official code (not the paper's).

    At the start of episode m (from 1) the official code divides the start rate by
    `max_decay` while m < `explore_episodes`, then multiplies the start rate by `max_decay`
    and the end rate by `min_decay` (docl.py:405-411; defaults docl.py:57-63). Its warm start
    instead rises linearly from `min_rate` towards `max_rate` (docl.py:500, 1565-1567).

    Returns:
        `(starts, ends)`: float64 arrays of length `num_episodes`.
    """
    num_episodes = check_int("num_episodes", num_episodes, 1)
    max_rate = check_number("max_rate", max_rate, low=0.0, low_open=True)
    min_rate = check_number("min_rate", min_rate, 0.0, max_rate)
    max_decay = check_number("max_decay", max_decay, low=0.0, low_open=True)
    min_decay = check_number("min_decay", min_decay, low=0.0, low_open=True)
    explore_episodes = check_int("explore_episodes", explore_episodes, 0)
    starts, ends = [], []
    high, low = max_rate, min_rate
    for episode in range(1, num_episodes + 1):
        if episode < explore_episodes:
            high /= max_decay
        else:
            high *= max_decay
            low *= min_decay
        starts.append(high)
        ends.append(low)
    return np.array(starts), np.array(ends)
