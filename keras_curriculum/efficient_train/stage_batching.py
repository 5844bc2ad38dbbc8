"""The optimizer side of EfficientTrain's per-stage batching (`saturate=`).

Between epochs, `StageBatching` puts the model's optimizer in the state a stage needs and undoes
it at the end of `fit`:

- "exact": Keras's `gradient_accumulation_steps` becomes the stage's A_s. It is read when the
  train step is traced, so the step is traced again (once per batching; the traced functions
  are kept and reused). `optimizer._iterations` counts micro-steps and Keras updates when
  `(iterations + 1) % A_s == 0`, so the counter is rewritten at the switch (always an update
  boundary, `batch_saturation.check_exact`) to u * A_s: `optimizer.iterations` stays the update
  count of the fixed-batch run.
- "scaled": the micro-batch grows, the accumulation stays, the rate is multiplied by the batch
  ratio (a float rate: its variable is scaled; a schedule: wrapped).

A `LearningRateSchedule` sees the micro-step the fixed-batch run would be at
(`StageStepSchedule`), so schedules run in epochs as without saturation.

State that lives in saved variables (the iteration counter, a float rate) is, between epochs, in
the units of the stage of the last finished epoch: a `BackupAndRestore` epoch checkpoint resumes
correctly. Python state (accumulation attribute, schedule wrapper, traced function) is set again
at the first epoch of every `fit`.
"""

import numbers

import keras
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from keras_curriculum import batch_saturation
from keras_curriculum._rate_scaling import RateScaling

_MARK = "_keras_curriculum_stage_batching"  # the user's settings, while the optimizer is changed


def base_optimizer(optimizer):
    """The optimizer that owns the variables (`LossScaleOptimizer` wraps one)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def user_settings(optimizer):
    """`(accumulation, learning_rate)` as the user configured them, even mid-change."""
    mark = getattr(optimizer, _MARK, None)
    if mark is not None:
        return mark
    return optimizer.gradient_accumulation_steps or 1, optimizer._learning_rate


@keras.saving.register_keras_serializable(package="keras_curriculum")
class StageStepSchedule(LearningRateSchedule):
    """`schedule(step * step_scale + step_shift) * rate_scale`: a schedule seen from a stage.

    Args:
        schedule: the user's `LearningRateSchedule`.
        step_scale: number > 0, base micro-steps per micro-step of the stage.
        step_shift: number, added to the scaled step.
        rate_scale: number > 0, multiplies the rate ("scaled" mode's linear rule).
    """

    def __init__(self, schedule, step_scale=1, step_shift=0, rate_scale=1.0):
        self.schedule = schedule
        self.step_scale = step_scale
        self.step_shift = step_shift
        self.rate_scale = rate_scale

    def __call__(self, step):
        if _integral(self.step_scale) and _integral(self.step_shift):
            step = step * int(self.step_scale) + int(self.step_shift)
        else:
            step = ops.cast(step, "float32") * float(self.step_scale) + float(self.step_shift)
        rate = self.schedule(step)
        return rate if self.rate_scale == 1 else rate * self.rate_scale

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "step_scale": self.step_scale,
            "step_shift": self.step_shift,
            "rate_scale": self.rate_scale,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)


def _integral(value):
    return isinstance(value, numbers.Integral) or float(value).is_integer()


class StageBatching:
    """Applies each stage's `StageBatch` to `model`'s optimizer; `finish()` restores it.

    Args:
        model: the compiled model.
        mode: "exact" or "scaled".
        plan: `StageBatch` per stage (accumulation and rate scale are read here).
        stage_of_epoch: int array, the stage of every epoch.
        steps_of_epoch: real micro-steps of every epoch ("scaled" schedules).
        base_steps: micro-steps of a fixed-batch epoch.
        functions: dict kept across fits, traced train functions by batching, so that a
            later `fit` of the same model compiles nothing again.
    """

    def __init__(self, model, mode, plan, stage_of_epoch, steps_of_epoch, base_steps,
                 functions=None):
        self.model = model
        self.optimizer = base_optimizer(model.optimizer)
        self.mode = mode
        self.plan = plan
        self.stage_of_epoch = stage_of_epoch
        self.steps_of_epoch = steps_of_epoch
        self.base_steps = base_steps
        self.accumulation, self.rate = user_settings(self.optimizer)
        self._functions = {} if functions is None else functions
        self._current = None  # (accumulation, rate scale) held in the saved variables
        self._traced = None  # key of model.train_function
        self._start_iteration = None

    # Stage configurations -------------------------------------------------------------------

    def _config(self, epoch):
        """`(accumulation, step_scale, step_shift, rate_scale)` in force in `epoch` (-1: none)."""
        if epoch < 0:
            return (self.accumulation, 1, 0, 1.0)
        stage = self.plan[self.stage_of_epoch[epoch]]
        if self.mode == "exact":
            k, c = batch_saturation.exact_step_map(self.accumulation, stage.accumulation)
            return (stage.accumulation, k, c, 1.0)
        k, c = batch_saturation.scaled_step_map(
            self.steps_of_epoch, self.base_steps, self._start_iteration, epoch
        )
        return (stage.accumulation, k, c, float(stage.learning_rate_scale))

    def _function_key(self, config):
        steps, k, c, scale = config
        if not isinstance(self.rate, LearningRateSchedule):
            return (steps,)
        return (steps, float(k), float(c), scale)

    # Fit hooks ------------------------------------------------------------------------------

    def begin(self, epoch):
        """First epoch of a `fit`: reads the saved state (that of epoch - 1) and enters `epoch`."""
        optimizer = self.optimizer
        if self.mode == "exact" and RateScaling.attribute in vars(optimizer):
            # LeRaC's rates are a function of the optimizer's counter, which "exact" rewrites.
            raise ValueError(
                "`saturate='exact'` cannot run with `LeRaC` in the same fit: both drive the "
                "optimizer's iteration counter. Pass `saturate='scaled'` or `saturate=None`."
            )
        iteration = int(ops.convert_to_numpy(optimizer._iterations))
        if self.mode == "scaled":
            self._start_iteration = iteration - int(sum(self.steps_of_epoch[:epoch]))
        previous = self._config(epoch - 1)
        if self.mode == "exact" and epoch == 0 and iteration % self.accumulation:
            raise ValueError(
                "`saturate='exact'`: the optimizer is in the middle of an accumulated update "
                f"(iteration {iteration}, gradient_accumulation_steps={self.accumulation}); "
                "start from an update boundary."
            )
        self._current = (previous[0], previous[3])
        interrupted = _MARK in vars(optimizer)  # an earlier fit stopped inside a stage
        object.__setattr__(optimizer, _MARK, (self.accumulation, self.rate))
        # Unless a fit was interrupted, the function `fit` made was traced with the user's
        # settings: it is the one left at the end of the last fit, or the cache is stale.
        user = self._function_key(self._config(-1))
        if interrupted or self._functions.get(user) is not self.model.train_function:
            self._functions.clear()
        if not interrupted:
            self._functions[user] = self.model.train_function
        self._traced = None if interrupted else user
        self._order_counter_after_data()
        self._install(previous, force=True)
        self.enter(epoch)

    def enter(self, epoch):
        self._install(self._config(epoch))

    def finish(self):
        self._install(self._config(-1))
        for name in (_MARK, "apply"):
            if name in vars(self.optimizer):
                object.__delattr__(self.optimizer, name)

    def _order_counter_after_data(self):
        """On TensorFlow, makes the iteration count of a step wait for its gradients.

        An epoch that ends before the count Keras expects ends with one more call of the train
        function on an exhausted iterator. That call fails in `get_next`, but the optimizer's
        `iterations.assign_add(1)` does not depend on the data and may already have run
        (observed with Keras 3.15, one extra count per saturated epoch).
        """
        if keras.backend.backend() != "tensorflow" or "apply" in vars(self.optimizer):
            return
        import tensorflow as tf

        apply = self.optimizer.apply

        def apply_after_gradients(grads, trainable_variables=None):
            with tf.control_dependencies([g for g in grads if g is not None]):
                return apply(grads, trainable_variables)

        object.__setattr__(self.optimizer, "apply", apply_after_gradients)

    # Changing the optimizer -----------------------------------------------------------------

    def _install(self, config, force=False):
        optimizer = self.optimizer
        steps, k, c, scale = config
        old_steps, old_scale = self._current
        if steps != old_steps:
            iteration = int(ops.convert_to_numpy(optimizer._iterations))
            new, factor = batch_saturation.convert_iteration(
                iteration, self.accumulation, old_steps, steps
            )
            optimizer._iterations.assign(new)
            if factor != 1:
                for accumulator in getattr(optimizer, "_accumulated_gradients", None) or ():
                    accumulator.assign(accumulator * factor)
        if steps != old_steps or force:
            optimizer.gradient_accumulation_steps = steps if steps > 1 else None
        if isinstance(self.rate, LearningRateSchedule):
            rate = self.rate
            if (k, c, scale) != (1, 0, 1.0):
                rate = StageStepSchedule(self.rate, k, c, scale)
            object.__setattr__(optimizer, "_learning_rate", rate)
        elif scale != old_scale and isinstance(self.rate, keras.Variable):
            self.rate.assign(self.rate * (scale / old_scale))
        self._current = (steps, scale)
        self._set_train_function(self._function_key(config))

    def _set_train_function(self, key):
        if key == self._traced:
            return
        function = self._functions.get(key)
        if function is None:
            self.model.make_train_function(force=True)
            function = self._functions[key] = self.model.train_function
        self.model.train_function = function
        self._traced = key
