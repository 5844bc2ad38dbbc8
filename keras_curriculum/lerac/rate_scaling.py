"""Per-variable learning rates inside an unchanged Keras optimizer.

`RateScaling` patches one optimizer instance so that the update of every trainable variable is
the update the same optimizer would make with that variable's group rate
`base_rate(t) * scale_g(t)`, weight decay included. Everything is computed inside the train step
from the optimizer's own iteration counter, so it is exact under `jit_compile`, XLA,
`steps_per_execution > 1`, `tf.distribute` and JAX's functional state, and costs a few scalar ops
per variable. Why it is done this way and not otherwise:

- Scaling gradients equals scaling the rate for plain SGD only; Adam-family optimizers are
  nearly invariant to gradient scale. So the *rate* handed to `update_step` is scaled.
- Keras applies decoupled weight decay before `update_step` with the *global* rate; a
  per-variable rate must scale the decay too (as PyTorch parameter groups do). The optimizer's own
  `_apply_weight_decay` runs once per group while `learning_rate` reads as that group's rate, so
  each optimizer keeps its own decay rule (Muon's two coefficients, each backend's formula, TF's
  distributed update) and a scale of 1 gives bit-identical results.
- `_backend_update_step` receives the group-rate vector in place of the scalar rate (the TF
  backend routes it through `tf.distribute` exactly like the scalar) and `update_step` picks the
  variable's entry. On TF `update_step` sees raw `tf.Variable`s: variables are looked up with
  `optimizer._get_variable_index`, which handles both.
- torch: the built-in optimizers are swapped for fused versions whose `_parallel_update_step`
  never calls `update_step` and may keep per-step state (Nadam's `u_product`), so LeRaC runs the
  optimizer's generic (unfused) update there: exact, slower on a GPU.
"""

import numpy as np
from keras import backend
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from keras_curriculum.schedules import held_schedule_step

_PATCHED = ("update_step", "_backend_update_step", "_apply_weight_decay", "_get_current_learning_rate")


class RateScaling:
    """Installs per-group learning-rate multipliers on one optimizer instance.

    Args:
        optimizer: a built Keras optimizer (not a `LossScaleOptimizer`: pass its inner one).
        group_of_index: list of int, the group of each of `optimizer._trainable_variables`.
        scales_fn: function of the iteration tensor returning the `(num_groups,)` multipliers.
        hold_steps: None, or the number of steps during which a `LearningRateSchedule` base rate
            is held at its step-0 value (then it runs shifted by `hold_steps`).
    """

    attribute = "_keras_curriculum_rate_scaling"

    def __init__(self, optimizer, group_of_index, scales_fn, hold_steps=None):
        self.optimizer = optimizer
        self.group_of_index = list(group_of_index)
        self.scales_fn = scales_fn
        self.hold_steps = hold_steps
        self.finished = False

    # Host-side views, for logs and plots -----------------------------------------------------

    def base_rate_at(self, step):
        """The optimizer's base rate at `step`, as the patched optimizer computes it."""
        schedule = self.optimizer._learning_rate
        if isinstance(schedule, LearningRateSchedule):
            if self.hold_steps is not None:
                step = held_schedule_step(np.int64(step), self.hold_steps)
            return float(ops.convert_to_numpy(schedule(step)))
        return float(ops.convert_to_numpy(self.optimizer.learning_rate))

    def group_rates_at(self, step):
        """The learning rate of every group at `step` (numpy, host side)."""
        scales = ops.convert_to_numpy(self.scales_fn(np.int64(step)))
        return self.base_rate_at(step) * scales.astype("float64")

    # Install / remove ------------------------------------------------------------------------

    def install(self):
        optimizer = self.optimizer
        current = getattr(optimizer, self.attribute, None)
        if current is not None:
            current.remove(force=True)
        patched = {
            "_apply_weight_decay": self._grouped_weight_decay,
            "_backend_update_step": self._vector_update,
            "update_step": self._variable_update,
        }
        self._base_rate = optimizer._get_current_learning_rate
        if self.hold_steps is not None and isinstance(
            optimizer._learning_rate, LearningRateSchedule
        ):
            patched["_get_current_learning_rate"] = self._base_rate = self._held_rate
        self._originals = {name: getattr(optimizer, name) for name in patched}
        if backend.backend() == "torch":
            self._originals["_backend_update_step"] = _unfused_backend_update_step(optimizer)
        for name, function in patched.items():
            object.__setattr__(optimizer, name, function)
        object.__setattr__(optimizer, self.attribute, self)

    def finish_curriculum(self):
        """Restores the optimizer's own update once every scale is 1 for good.

        Only the held base schedule (if any) stays. The optimizer then runs its own code path
        (torch's fused kernels included): bit-identical to training without LeRaC, at no cost.
        """
        optimizer = self.optimizer
        for name in ("update_step", "_backend_update_step", "_apply_weight_decay"):
            if name in vars(optimizer):
                object.__delattr__(optimizer, name)
        self.finished = True

    def remove(self, force=False):
        optimizer = self.optimizer
        if getattr(optimizer, self.attribute, None) is not self and not force:
            return
        for name in _PATCHED:
            if name in vars(optimizer):
                object.__delattr__(optimizer, name)
        if self.attribute in vars(optimizer):
            object.__delattr__(optimizer, self.attribute)

    # What runs inside the train step ---------------------------------------------------------

    def _held_rate(self, *args):
        optimizer = self.optimizer
        return optimizer._learning_rate(held_schedule_step(optimizer._iterations, self.hold_steps))

    def _group_rates(self, learning_rate):
        scales = self.scales_fn(self.optimizer._iterations)
        return ops.cast(learning_rate, "float32") * scales

    def _group_of(self, variable):
        return self.group_of_index[self.optimizer._get_variable_index(variable)]

    def _grouped_weight_decay(self, variables):
        optimizer = self.optimizer
        members = {}
        for variable in variables:
            members.setdefault(self._group_of(variable), []).append(variable)
        for group in sorted(members):
            # The rate is recomputed wherever the decay code asks for it (inside TF's
            # cross-replica update too), never captured from another replica's graph.
            object.__setattr__(
                optimizer,
                "_get_current_learning_rate",
                lambda group=group: self._group_rates(self._base_rate())[group],
            )
            try:
                self._originals["_apply_weight_decay"](members[group])
            finally:
                object.__setattr__(optimizer, "_get_current_learning_rate", self._base_rate)
        if "_get_current_learning_rate" not in self._originals:
            object.__delattr__(optimizer, "_get_current_learning_rate")

    def _vector_update(self, grads, trainable_variables, learning_rate):
        self._originals["_backend_update_step"](
            grads, trainable_variables, self._group_rates(learning_rate)
        )

    def _variable_update(self, gradient, variable, learning_rate):
        self._originals["update_step"](gradient, variable, learning_rate[self._group_of(variable)])


def _unfused_backend_update_step(optimizer):
    """The first `_backend_update_step` in the optimizer's MRO outside the torch fused classes."""
    from keras.src.backend.torch.optimizers.torch_parallel_optimizer import (
        TorchParallelOptimizer,
    )

    for cls in type(optimizer).__mro__:
        if issubclass(cls, TorchParallelOptimizer) or "_backend_update_step" not in vars(cls):
            continue
        return vars(cls)["_backend_update_step"].__get__(optimizer)
    raise AssertionError("BaseOptimizer defines _backend_update_step")
