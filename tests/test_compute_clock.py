"""EfficientTrain++'s compute-clock learning rate, against hand values and the official launcher.

`keras_curriculum/efficient_train/compute_clock.py` is loaded by path while
`keras_curriculum.efficient_train` is still a module.
"""

import math

import keras
import numpy as np
import pytest

from keras_curriculum.efficient_train import compute_clock as clock
from keras_curriculum.efficient_train import plus_stages

PLUS_RESOLUTIONS = [96] * 2 + [160] * 4 + [224] * 4


def official_plus_fractions(budget):
    """Share of the schedule each resolution walks in the official ET++ runs.

    Stage i runs its own schedule of rp_i = int(E (224 / B_i)^2) epochs from its start epoch
    to int(rp_i / 10 (i + 1)) (_ET_pp_main_res50.py:44-56); it starts where the previous
    stage stopped, converted by the squared resolution ratio and rounded
    (utils_buffer.py:538-541). The schedule's position is epoch / rp_i.
    """
    shares, previous = {}, None
    for index, size in enumerate(PLUS_RESOLUTIONS):
        run = int(budget * 224 * 224 / (size * size))
        end = int(run / 10 * (index + 1))
        start = 0 if previous is None else round(previous[0] * previous[1] ** 2 / size**2)
        shares[size] = shares.get(size, 0.0) + (end - start) / run
        previous = (end, size)
    return shares


def test_compute_clock_by_hand():
    # 2 steps at a quarter of the compute, then 3 full steps; step 6 continues the last stage.
    got = clock.compute_clock(np.arange(7), [2, 3], [0.25, 1.0])
    np.testing.assert_allclose(got, [0, 0.25, 0.5, 1.5, 2.5, 3.5, 4.5])
    assert clock.clock_epoch(1, 0.5, [2, 3], [0.25, 1.0]) == pytest.approx(0.375)


def test_stage_costs_are_pixel_ratios():
    np.testing.assert_allclose(
        clock.stage_costs([96, (160, 112), None], 224), [96**2 / 224**2, 160 * 112 / 224**2, 1.0]
    )
    np.testing.assert_allclose(clock.stage_costs([(32, 48)], (64, 96)), [0.25])


@pytest.mark.parametrize("budget", [200, 300])
def test_share_of_the_schedule_per_resolution_matches_the_official_launcher(budget):
    stages = plus_stages(budget, 224)
    epochs = [s.epochs for s in stages]
    costs = clock.stage_costs([s.size for s in stages], 224)
    bounds = np.concatenate([[0], np.cumsum(epochs)])
    positions = clock.compute_clock(bounds, epochs, costs) / clock.compute_clock(
        bounds[-1], epochs, costs
    )
    official = official_plus_fractions(budget)
    for size in (96, 160, 224):
        spent = sum(
            positions[i + 1] - positions[i] for i, r in enumerate(PLUS_RESOLUTIONS) if r == size
        )
        assert spent == pytest.approx(official[size], abs=0.003)
    assert official[96] == pytest.approx(0.2, abs=0.002)
    # The same table read by an epoch-based schedule spends about half of it at 96 px.
    assert sum(epochs[:2]) / sum(epochs) == pytest.approx(0.48, abs=0.01)


def test_wrapped_cosine_is_read_at_the_clock():
    base = keras.optimizers.schedules.CosineDecay(1.0, decay_steps=7)
    schedule = clock.ComputeClockSchedule(base, [4, 6], [0.25, 1.0])
    for step in range(12):
        position = min(0.25 * step if step < 4 else 1.0 + (step - 4), 7)
        expected = 0.5 * (1 + math.cos(math.pi * position / 7))
        assert float(schedule(step)) == pytest.approx(expected, abs=1e-6)


class _Identity(keras.optimizers.schedules.LearningRateSchedule):
    """Returns the step it is evaluated at: reads the clock through the public call."""

    def __call__(self, step):
        return keras.ops.cast(step, "float32")


def test_keras_ops_call_matches_the_numpy_clock():
    stages = plus_stages(200, 224)
    schedule = clock.ComputeClockSchedule.from_stages(_Identity(), stages, 224, steps_per_epoch=7)
    steps = [0, 1, 762, 763, 1525, 1526, 3000, 3184, 3185, 5000]
    expected = clock.compute_clock(steps, schedule.stage_steps, schedule.stage_costs)
    got = [float(schedule(s)) for s in steps]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_schedule_drives_an_optimizer_and_round_trips():
    base = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=20, alpha=0.01)
    schedule = clock.ComputeClockSchedule(base, [8, 10], [0.5, 1.0], name="clock")
    optimizer = keras.optimizers.SGD(schedule)
    optimizer.iterations.assign(9)
    assert float(optimizer.learning_rate) == pytest.approx(float(base(5.0)), rel=1e-6)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, clock.ComputeClockSchedule)
    assert restored.get_config()["stage_steps"] == [8, 10]
    assert restored.name == "clock"
    for step in (0, 3, 8, 17, 30):
        assert float(restored(step)) == pytest.approx(float(schedule(step)), rel=1e-7)


def test_table_arguments_are_checked():
    base = keras.optimizers.schedules.CosineDecay(0.1, 10)
    with pytest.raises(ValueError, match="one value per stage"):
        clock.ComputeClockSchedule(base, [1, 2], [1.0])
    with pytest.raises(ValueError, match="at least one step"):
        clock.ComputeClockSchedule(base, [0, 0], [1.0, 1.0])
    with pytest.raises(ValueError, match="`stage_costs` must be"):
        clock.ComputeClockSchedule(base, [1, 2], [1.0, 0.0])
    with pytest.raises(TypeError, match="`schedule` must be"):
        clock.ComputeClockSchedule(0.1, [1], [1.0])
    with pytest.raises(ValueError, match="`step` must be"):
        clock.compute_clock(-1, [1], [1.0])
