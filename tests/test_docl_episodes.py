"""DoCL's scaled episode plan and its episode-tied cosine, checked by hand.

`keras_curriculum/docl/episodes.py` is loaded by path: `keras_curriculum.docl` is still a
module while the package is being split into subpackages.
"""

import math

import numpy as np
import pytest

from keras_curriculum.docl import CosineRestarts
from keras_curriculum.docl import episodes


def test_official_plan_at_300_epochs():
    plan = episodes.scaled_episodes(300)
    assert plan.warmup_epochs == 5
    assert plan.episode_epochs == (5, 5, 5, 10, 10, 20, 30, 50, 70, 90)
    assert plan.ends == (10, 15, 20, 30, 40, 60, 90, 140, 210, 300)


def test_plan_scaled_to_100_epochs_by_hand():
    # Boundaries / 3, rounded half up: 1.67 3.33 5 6.67 10 13.3 20 30 46.7 70 100.
    plan = episodes.scaled_episodes(100)
    assert plan.warmup_epochs == 2
    assert plan.ends == (3, 5, 7, 10, 13, 20, 30, 47, 70, 100)
    assert plan.episode_epochs == (1, 2, 2, 3, 3, 7, 10, 17, 23, 30)


def test_short_run_merges_the_episodes_too_short_to_keep():
    # 20 / 300 of the boundaries: 0.33 0.67 1 1.33 2 2.67 4 6 9.33 14 20 -> 0 1 1 1 2 3 4 6 9 14 20.
    plan = episodes.scaled_episodes(20)
    assert plan.warmup_epochs == 1
    assert plan.ends == (2, 3, 4, 6, 9, 14, 20)
    assert plan.episode_epochs == (1, 1, 1, 2, 3, 5, 6)
    # With a refresh epoch per episode, an episode needs 2 epochs: 2 and 4 are dropped.
    plan = episodes.scaled_episodes(20, refresh_epochs=1)
    assert plan.ends == (3, 6, 9, 14, 20)
    assert plan.episode_epochs == (1, 2, 2, 4, 5)


@pytest.mark.parametrize("refresh", [0, 1, 2])
def test_every_run_length_gives_a_valid_plan(refresh):
    official = np.array(episodes.OFFICIAL_EPISODE_ENDS[2:], float)
    for epochs in range(2 + refresh, 401):
        plan = episodes.scaled_episodes(epochs, refresh_epochs=refresh)
        total = plan.warmup_epochs + sum(plan.episode_epochs) + refresh * len(plan.episode_epochs)
        assert total == epochs == plan.ends[-1]
        assert plan.warmup_epochs >= 1 and min(plan.episode_epochs) >= 1
        assert all(b > a for a, b in zip((plan.warmup_epochs,) + plan.ends, plan.ends))
        # Every kept boundary sits within half an epoch of an official one, scaled.
        for boundary in plan.ends:
            assert np.min(np.abs(official * epochs / 300 - boundary)) <= 0.5


def test_plan_arguments_are_checked():
    with pytest.raises(ValueError, match="`epochs` must be"):
        episodes.scaled_episodes(1)
    with pytest.raises(ValueError, match="`epochs` must be"):
        episodes.scaled_episodes(2, refresh_epochs=1)
    with pytest.raises(TypeError, match="`epochs` must be"):
        episodes.scaled_episodes(20.0)
    with pytest.raises(ValueError, match="`refresh_epochs` must be"):
        episodes.scaled_episodes(20, refresh_epochs=-1)
    with pytest.raises(ValueError, match="`ends` must be strictly increasing"):
        episodes.scaled_episodes(20, ends=(1, 5, 10))
    with pytest.raises(ValueError, match="`ends` must be strictly increasing"):
        episodes.scaled_episodes(20, ends=(0, 5, 5, 10))


def test_cycle_steps_by_hand():
    # 6 epochs, refresh 1: boundaries 0 0 0 0 1 1 1 2 3 4 6 -> warm 1, episodes end at 3 and 6.
    plan = episodes.scaled_episodes(6, refresh_epochs=1)
    assert (plan.warmup_epochs, plan.episode_epochs, plan.ends) == (1, (1, 2), (3, 6))
    # Warm start 10 steps; episode 1: 8 sampled + 10 refresh; episode 2: 6 + 6 + 10.
    assert episodes.cycle_steps(plan, [10, 8, 10, 6, 6, 10]) == [10, 18, 22]
    with pytest.raises(ValueError, match="`epoch_steps` must list the steps of all 6"):
        episodes.cycle_steps(plan, [10, 8, 10])
    with pytest.raises(ValueError, match="`epoch_steps` must be"):
        episodes.cycle_steps(plan, [10, 8, 10, 6, 0, 10])
    with pytest.raises(TypeError, match="`schedule` must be an EpisodeSchedule"):
        episodes.cycle_steps((1, (1, 2), (3, 6)), [10, 8, 10, 6, 6, 10])


def test_episode_cosine_rates_at_each_episode_start_and_end():
    """`CosineRestarts` with max_decay = min_decay = 0.85 is the paper's per-episode cosine."""
    plan = episodes.scaled_episodes(20)
    epoch_steps = [12] * plan.warmup_epochs
    for episode, length in enumerate(plan.episode_epochs):
        epoch_steps += [12 - episode] * length  # subsets shrink episode by episode
    cycles = episodes.cycle_steps(plan, epoch_steps)
    assert len(cycles) == 1 + len(plan.episode_epochs) and sum(cycles) == sum(epoch_steps)
    high, low = 0.1, 1e-3
    schedule = CosineRestarts(cycles, high, low, max_decay=0.85, min_decay=0.85)
    start = 0
    for cycle, length in enumerate(cycles):
        top, bottom = high * 0.85**cycle, low * 0.85**cycle
        last = bottom + 0.5 * (top - bottom) * (1 + math.cos(math.pi * (length - 1) / length))
        assert float(schedule(start)) == pytest.approx(top, rel=1e-6)
        assert float(schedule(start + length - 1)) == pytest.approx(last, rel=1e-5)
        start += length
    # After the last cycle the rate rests at that cycle's target.
    assert float(schedule(start)) == pytest.approx(low * 0.85 ** (len(cycles) - 1), rel=1e-5)


def test_official_cycle_rates_by_hand():
    starts, ends = episodes.official_cycle_rates(6)
    # Episodes 1-4 raise the start rate by 1 / 0.9 (explore), 5-6 lower both (0.9, 0.8).
    expected_starts = [
        0.1 / 0.9,
        0.1 / 0.81,
        0.1 / 0.729,
        0.1 / 0.6561,
        0.1 / 0.6561 * 0.9,
        0.1 / 0.6561 * 0.81,
    ]
    np.testing.assert_allclose(starts, expected_starts, rtol=1e-12)
    np.testing.assert_allclose(ends, [5e-4] * 4 + [4e-4, 3.2e-4], rtol=1e-12)
    with pytest.raises(ValueError, match="`min_rate` must be"):
        episodes.official_cycle_rates(3, max_rate=0.1, min_rate=0.2)
