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
  ratio inside the step (the saved learning rate is never changed, so a resume cannot apply the
  factor twice).

A `LearningRateSchedule`, and LeRaC when it runs too, see the micro-step the fixed-batch run
would be at: the stage's step map is EfficientTrain's patch in the optimizer patch registry
(`_keras_internals.OptimizerPatches`), which composes it with LeRaC's in a fixed order.

The iteration counter lives in saved variables and is, between epochs, in the units of the stage
of the last finished epoch: a `BackupAndRestore` epoch checkpoint resumes correctly. Python
state (accumulation attribute, patch, traced function) is set again at the first epoch of every
`fit`.
"""

import numbers

import keras
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from keras_curriculum import _keras_internals as internals
from keras_curriculum._host import to_numpy
from keras_curriculum.efficient_train import saturation as batch_saturation

OWNER = "efficient_train"
_MARK = "_keras_curriculum_stage_batching"  # the user's settings, while the optimizer is changed


def user_settings(optimizer):
    """`(accumulation, learning_rate)` as the user configured them, even mid-change."""
    mark = getattr(optimizer, _MARK, None)
    if mark is not None:
        return mark
    return optimizer.gradient_accumulation_steps or 1, internals.learning_rate_object(optimizer)


def step_map(step_scale, step_shift):
    """`step -> step * step_scale + step_shift`, integer when both are whole numbers."""
    if _integral(step_scale) and _integral(step_shift):
        scale, shift = int(step_scale), int(step_shift)
        return lambda step: step * scale + shift
    scale, shift = float(step_scale), float(step_shift)
    return lambda step: ops.cast(step, "float32") * scale + shift


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

    def __init__(
        self, model, mode, plan, stage_of_epoch, steps_of_epoch, base_steps, functions=None
    ):
        self.model = model
        self.optimizer = internals.base_optimizer(model.optimizer)
        self.mode = mode
        self.plan = plan
        self.stage_of_epoch = stage_of_epoch
        self.steps_of_epoch = steps_of_epoch
        self.base_steps = base_steps
        self.accumulation, self.rate = user_settings(self.optimizer)
        self._functions = {} if functions is None else functions
        self._current = None  # the accumulation the saved iteration counter is counted in
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
        # The patch's step map and rate scale are constants of the traced step.
        steps, k, c, scale = config
        others = internals.OptimizerPatches.of(self.optimizer).revision_of_others(OWNER)
        if not self._step_matters():
            return (steps, scale, others)
        return (steps, float(k), float(c), scale, others)

    # Fit hooks ------------------------------------------------------------------------------

    def begin(self, epoch):
        """First epoch of a `fit`: reads the saved state (that of epoch - 1) and enters `epoch`."""
        optimizer = self.optimizer
        if self.mode == "exact" and internals.OptimizerPatches.has(optimizer, "lerac"):
            # LeRaC's rates are a function of the optimizer's counter, which "exact" rewrites.
            raise ValueError(
                "`saturate='exact'` cannot run with `LeRaC` in the same fit: both drive the "
                "optimizer's iteration counter. Pass `saturate='scaled'` or `saturate=None`."
            )
        iteration = int(to_numpy(internals.iteration_variable(optimizer)))
        if self.mode == "scaled":
            self._start_iteration = iteration - int(sum(self.steps_of_epoch[:epoch]))
        previous = self._config(epoch - 1)
        if self.mode == "exact" and epoch == 0 and iteration % self.accumulation:
            raise ValueError(
                "`saturate='exact'`: the optimizer is in the middle of an accumulated update "
                f"(iteration {iteration}, gradient_accumulation_steps={self.accumulation}); "
                "start from an update boundary."
            )
        self._current = previous[0]
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
        self._install(previous, force=True)
        self.enter(epoch)

    def enter(self, epoch):
        self._install(self._config(epoch))

    def finish(self):
        self._install(self._config(-1))
        if keras.backend.backend() == "jax":
            # JAX shares one trace between live wrappers of the step function with the same
            # input shapes, whatever the optimizer's patch: the stages' functions must not
            # outlive the fit, or a later plain fit at a stage's shapes would run its step.
            user = self._functions.get(self._traced)
            self._functions = {self._traced: user} if user is not None else {}
        internals.OptimizerPatches.of(self.optimizer).remove(OWNER)
        if _MARK in vars(self.optimizer):
            object.__delattr__(self.optimizer, _MARK)

    # Changing the optimizer -----------------------------------------------------------------

    def _install(self, config, force=False):
        optimizer = self.optimizer
        steps, k, c, scale = config
        old_steps = self._current
        if steps != old_steps:
            counter = internals.iteration_variable(optimizer)
            new, factor = batch_saturation.convert_iteration(
                int(to_numpy(counter)), self.accumulation, old_steps, steps
            )
            counter.assign(new)
            if factor != 1:
                for accumulator in internals.accumulated_gradients(optimizer):
                    accumulator.assign(accumulator * factor)
        if steps != old_steps or force:
            optimizer.gradient_accumulation_steps = steps if steps > 1 else None
        maps_step = (k, c) != (1, 0) and self._step_matters()
        internals.OptimizerPatches.of(optimizer).set(
            OWNER,
            internals.Patch(
                step_map=step_map(k, c) if maps_step else None,
                rate_scale=scale if scale != 1 else None,
                order_apply=True,
            ),
        )
        self._current = steps
        self._set_train_function(self._function_key(config))

    def _step_matters(self):
        """Whether anything reads the step: a schedule, or LeRaC's curriculum."""
        return isinstance(self.rate, LearningRateSchedule) or internals.OptimizerPatches.has(
            self.optimizer, "lerac"
        )

    def _set_train_function(self, key):
        if key == self._traced:
            return
        function = self._functions.get(key)
        if function is None:
            self.model.make_train_function(force=True)
            function = self._functions[key] = self.model.train_function
        self.model.train_function = function
        self._traced = key
