"""Per-group learning rates inside an unchanged Keras optimizer, for LeRaC.

`RateScaling` registers LeRaC's patch on one optimizer (`_keras_internals.OptimizerPatches`):
the update of every trainable variable is the update the same optimizer would make with its
group's rate `base_rate(t) * scale_g(t)`, weight decay included. The scales are computed inside
the train step from the optimizer's step counter (as EfficientTrain's saturation maps it, when
both run), so they are exact under `jit_compile`, XLA, `steps_per_execution > 1`,
`tf.distribute` and JAX's functional state, and cost a few scalar ops per variable.
"""

from keras.optimizers.schedules import LearningRateSchedule

from keras_curriculum import _keras_internals as internals
from keras_curriculum._host import to_numpy
from keras_curriculum.lerac.schedules import held_schedule_step

OWNER = "lerac"


class RateScaling:
    """Installs per-group learning-rate multipliers on one optimizer instance.

    Args:
        optimizer: a built Keras optimizer (a `LossScaleOptimizer`'s inner one is used).
        group_of_index: list of int, the group of each variable the optimizer updates, in the
            optimizer's order.
        scales_fn: function of the step tensor returning the `(num_groups,)` multipliers.
        hold_steps: None, or the number of steps during which a `LearningRateSchedule` base rate
            is held at its step-0 value (then it runs shifted by `hold_steps`).
    """

    def __init__(self, optimizer, group_of_index, scales_fn, hold_steps=None):
        self.optimizer = internals.base_optimizer(optimizer)
        self.group_of_index = list(group_of_index)
        self.scales_fn = scales_fn
        self.hold_steps = hold_steps
        self.finished = False
        self.offset = 0  # steps of a replayed epoch the curriculum does not count (`align`)

    @staticmethod
    def installed_on(optimizer):
        """Whether LeRaC's patch is on `optimizer`."""
        return internals.OptimizerPatches.has(optimizer, OWNER)

    # Host-side views, for logs and plots -----------------------------------------------------

    def base_rate_at(self, step):
        """The optimizer's base rate at `step`, as the patched optimizer computes it."""
        schedule = internals.learning_rate_object(self.optimizer)
        if isinstance(schedule, LearningRateSchedule):
            if self.hold_steps is not None:
                step = held_schedule_step(int(step), self.hold_steps)
            return float(to_numpy(schedule(step)))
        return float(to_numpy(self.optimizer.learning_rate))

    def group_rates_at(self, step):
        """The learning rate of every group at `step` (numpy, host side)."""
        scales = to_numpy(self.scales_fn(int(step)))
        return self.base_rate_at(step) * scales.astype("float64")

    def _counter(self):
        """The optimizer's counter as earlier patches map it (EfficientTrain's saturation maps
        it to the fixed-batch run's step)."""
        step = internals.OptimizerPatches.of(self.optimizer).step_before(OWNER)
        return int(to_numpy(step))

    def current_step(self):
        """The step LeRaC's curriculum is at: the counter less the replayed steps."""
        return self._counter() - self.offset

    def align(self, epoch, steps_per_epoch):
        """Puts the curriculum at the start of `epoch`; True if that changed the patch.

        `BackupAndRestore(save_freq=N)` saves inside an epoch, and Keras resumes by running
        that epoch again from its first batch while the optimizer's counter holds the steps
        already trained in it: the counter is 0 < o < `steps_per_epoch` steps past the epoch's
        start. The curriculum then runs on the counter less o, so every (epoch, batch) of the
        resumed run gets the rates it has in the uninterrupted run. At an epoch boundary o is
        0 and nothing changes.
        """
        start = epoch * steps_per_epoch
        counter = self._counter()
        offset = counter - start if start < counter < start + steps_per_epoch else 0
        if offset == self.offset:
            return False
        self.offset = offset
        self.finished = False
        self.install()
        return True

    # Install / remove ------------------------------------------------------------------------

    def _hold(self):
        if self.hold_steps is None or not isinstance(
            internals.learning_rate_object(self.optimizer), LearningRateSchedule
        ):
            return None
        hold_steps, offset = self.hold_steps, self.offset
        return lambda step: held_schedule_step(step - offset, hold_steps)

    def install(self):
        scales_fn, offset = self.scales_fn, self.offset
        internals.OptimizerPatches.of(self.optimizer).set(
            OWNER,
            internals.Patch(
                schedule_map=self._hold(),
                group_rates=lambda rate, step: rate * scales_fn(step - offset),
                group_of_index=self.group_of_index,
            ),
        )

    def finish_curriculum(self):
        """Restores the optimizer's own update once every scale is 1 for good.

        Only the held base schedule (if any) stays. The optimizer then runs its own code path
        (torch's fused kernels included): bit-identical to training without LeRaC, at no cost.
        """
        registry = internals.OptimizerPatches.of(self.optimizer)
        hold = self._hold()
        if hold is None:
            registry.remove(OWNER)
        else:
            registry.set(OWNER, internals.Patch(schedule_map=hold))
        self.finished = True

    def remove(self):
        internals.OptimizerPatches.of(self.optimizer).remove(OWNER)
