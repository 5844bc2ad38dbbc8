"""EfficientTrain++'s compute clock: the learning-rate schedule advances with compute, not steps.

In the official ET++ launcher (LeapLabTHU/EfficientTrain, _ET_pp_main_res50.py:44-61) stage i
of 10, at resolution B_i, is a run of `int(E * (224 / B_i)**2)` epochs of its own (E the
budget in 224 px epochs), stopped after `(i + 1) / 10` of it; the next stage resumes at the
same fraction of its own run (utils_buffer.py:535-541). Every stage therefore walks its
tenth of one warm-up + cosine schedule (main_buffer.py:403-406, utils_buffer.py:429-445)
while it spends a tenth of the compute: the schedule's position is compute spent, counted in
full-resolution steps. An epoch-based schedule over the same stage table would instead spend
48 % of itself in the two 96 px stages, which hold 20 % of the compute.

`compute_clock` maps an optimizer step to that position; `ComputeClockSchedule` wraps any
Keras learning-rate schedule (written for `budget_epochs * steps_per_epoch` full-resolution
steps) so that it is evaluated there.
"""

import keras
import numpy as np
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_number
from keras_curriculum._validation import check_sequence


def _check_table(stage_steps, stage_costs):
    steps = [check_int("stage_steps", s, 0) for s in check_sequence("stage_steps", stage_steps)]
    costs = [
        check_number("stage_costs", c, low=0.0, low_open=True)
        for c in check_sequence("stage_costs", stage_costs)
    ]
    if len(steps) != len(costs):
        raise ValueError(
            "`stage_steps` and `stage_costs` must have one value per stage. Received "
            f"{len(steps)} and {len(costs)} values."
        )
    if sum(steps) == 0:
        raise ValueError(f"`stage_steps` must hold at least one step. Received: {steps!r}")
    return np.array(steps, np.float64), np.array(costs, np.float64)


def stage_costs(sizes, image_size):
    """Clock units per step of each stage: (h * w) / (H * W); a None size is full resolution.

    Args:
        sizes: per stage an int, an `(h, w)` pair, or None.
        image_size: the full resolution, an int or an `(H, W)` pair.
    """

    def pair(size, name):
        if isinstance(size, (tuple, list)) and len(size) == 2:
            return check_int(name, size[0], 1), check_int(name, size[1], 1)
        side = check_int(name, size, 1)
        return side, side

    height, width = pair(image_size, "image_size")
    costs = []
    for size in check_sequence("sizes", sizes):
        h, w = (height, width) if size is None else pair(size, "sizes")
        costs.append(h * w / (height * width))
    return np.array(costs)


def compute_clock(step, stage_steps, stage_costs):
    """The schedule position (full-resolution steps) reached after `step` optimizer steps.

    Stage s runs `stage_steps[s]` optimizer steps, each advancing the clock by
    `stage_costs[s]`; a step past the last stage advances it by the last stage's cost.

    Args:
        step: int or array of ints >= 0.
        stage_steps: int >= 0 per stage (at least one step in all).
        stage_costs: float > 0 per stage: (h * w) / (H * W) of its images, times
            batch_s / batch_full if its batch differs from the full-resolution stages'.

    Returns:
        float64 array shaped like `step`.
    """
    steps, costs = _check_table(stage_steps, stage_costs)
    step = np.asarray(step, np.float64)
    if np.any(step < 0) or not np.all(np.isfinite(step)):
        raise ValueError(f"`step` must be finite and >= 0. Received: step={step!r}")
    ends = np.cumsum(steps)
    starts = ends - steps
    clock_starts = np.concatenate([[0.0], np.cumsum(steps * costs)[:-1]])
    stage = np.minimum(np.searchsorted(ends, step, side="right"), len(steps) - 1)
    return clock_starts[stage] + (step - starts[stage]) * costs[stage]


def clock_epoch(epoch, fraction, stage_epochs, stage_costs):
    """`compute_clock` counted in epochs: the position, in full-resolution epochs, after
    `epoch` whole epochs and `fraction` in [0, 1] of the next (same steps in every epoch)."""
    epoch = check_int("epoch", epoch, 0)
    fraction = check_number("fraction", fraction, 0.0, 1.0)
    return float(compute_clock(epoch + fraction, stage_epochs, stage_costs))


@keras.saving.register_keras_serializable(package="keras_curriculum")
class ComputeClockSchedule(LearningRateSchedule):
    """A learning-rate schedule read on EfficientTrain++'s compute clock.

    At optimizer step t, returns `schedule(compute_clock(t))`: `schedule` is written for the
    full-resolution run it replaces (`budget_epochs * steps_per_epoch` steps, e.g. a warm-up +
    cosine), and each low-resolution step moves it forward by the fraction of a full step's
    compute it costs, as in the official ET++ training. Every stage of the ET++ table then
    spends the same share of the schedule as of the compute. The warm-up is read on the same
    clock: the official runs warm up for 20 epochs of the first stage's own run
    (_ET_pp_main_res50.py:47-49), i.e. 20 (96 / 224)**2 = 3.7 full-resolution epochs.

    Args:
        schedule: a `keras.optimizers.schedules.LearningRateSchedule` (or any callable of a
            float step that the optimizer accepts; only schedules serialize).
        stage_steps: optimizer steps of each stage.
        stage_costs: clock units per step of each stage (see `compute_clock`).
        name: str.

    Example:

    ```python
    stages = kc.efficient_train.plus_stages(budget_epochs=200)
    base = keras.optimizers.schedules.CosineDecay(4e-3, 200 * steps_per_epoch, alpha=2.5e-4)
    schedule = ComputeClockSchedule.from_stages(base, stages, 224, steps_per_epoch)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.05)
    ```

    References:
        Wang et al., "EfficientTrain++: Generalized Curriculum Learning for Efficient Visual
        Backbone Training", TPAMI 2024.
    """

    def __init__(self, schedule, stage_steps, stage_costs, name="ComputeClockSchedule"):
        if not callable(schedule):
            raise TypeError(f"`schedule` must be a LearningRateSchedule. Received: {schedule!r}")
        steps, costs = _check_table(stage_steps, stage_costs)
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a str. Received: name={name!r}")
        self.schedule = schedule
        self.stage_steps = [int(s) for s in steps]
        self.stage_costs = [float(c) for c in costs]
        self.name = name
        self._ends = np.cumsum(steps)
        self._starts = self._ends - steps
        self._clock_starts = np.concatenate([[0.0], np.cumsum(steps * costs)[:-1]])

    @classmethod
    def from_stages(cls, schedule, stages, image_size, steps_per_epoch, **kwargs):
        """From an EfficientTrain table (objects with `.epochs` and `.size`), one batch size."""
        steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, 1)
        stages = check_sequence("stages", stages)
        return cls(
            schedule,
            [int(s.epochs) * steps_per_epoch for s in stages],
            stage_costs([s.size for s in stages], image_size),
            **kwargs,
        )

    def __call__(self, step):
        step = ops.cast(step, "float32")
        ends = ops.convert_to_tensor(self._ends.astype(np.float32))
        stage = ops.minimum(
            ops.sum(ops.cast(ops.greater_equal(step, ends), "int32")), len(self.stage_steps) - 1
        )

        def at_stage(values):
            return ops.take(ops.convert_to_tensor(np.asarray(values, np.float32)), stage)

        clock = at_stage(self._clock_starts) + (step - at_stage(self._starts)) * at_stage(
            self.stage_costs
        )
        return self.schedule(clock)

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "stage_steps": self.stage_steps,
            "stage_costs": self.stage_costs,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)
