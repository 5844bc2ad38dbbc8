"""The one module that touches private Keras: `keras.src` and underscore attributes.

Every other module of the package uses public Keras only and calls the functions here when it
needs more, so a Keras release that renames an internal breaks this file, at import, with a
message naming the supported versions, instead of a training run somewhere else.

What lives here:
- `calling_callback_list`, the list of callbacks of the `fit` that is setting a callback up
  (how the curricula put their epoch values into the logs before every other callback reads
  them, see `keras_curriculum.epoch_logs`);
- accessors for optimizer, model and layer internals (`learning_rate_object`,
  `iteration_variable`, `flatten_layers`, `nodes_by_depth`, `jax_metric_values`,
  `restored_epoch`...);
- `OptimizerPatches`, the single registry through which curricula change an optimizer's update.
  Each curriculum registers a `Patch` under its name; patches compose in the fixed order
  `PATCH_ORDER` (EfficientTrain's batching first, LeRaC last), so LeRaC sees the step that
  EfficientTrain's saturation maps the real counter to, and a learning-rate schedule is
  evaluated at the step both leave it;
- the few Keras classes the package subclasses or imports from `keras.src` (`DataLayer`,
  `DynamicBackend`, an `Equalization` whose histogram stays one op inside `tf.data`).
"""

import sys
from collections.abc import Callable
from typing import NamedTuple

import keras
from keras import backend
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

SUPPORTED_KERAS = ">=3.10,<4"

try:
    from keras.src.optimizers.base_optimizer import BaseOptimizer
    from keras.src.utils import backend_utils
    from keras.src.utils import jax_utils

    try:  # Keras >= 3.11 names the tf.data-safe base layer `DataLayer`.
        from keras.src.layers.preprocessing.data_layer import DataLayer
    except ImportError:  # Keras 3.10
        from keras.src.layers.preprocessing.tf_data_layer import TFDataLayer as DataLayer  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the installed Keras
    raise ImportError(
        f"keras_curriculum supports Keras {SUPPORTED_KERAS}; Keras {keras.__version__} lacks "
        f"an internal module it needs: {error}"
    ) from error

_REQUIRED = {
    BaseOptimizer: (
        "_get_current_learning_rate",
        "_apply_weight_decay",
        "_backend_update_step",
        "_get_variable_index",
        "update_step",
        "apply",
    ),
    keras.layers.Layer: ("_flatten_layers",),
    keras.layers.Equalization: ("_custom_histogram_fixed_width",),
    backend_utils: ("DynamicBackend", "in_tf_graph"),
    jax_utils: ("is_in_jax_tracing_scope",),
}
_missing = [
    f"{getattr(owner, '__name__', owner)}.{name}"
    for owner, names in _REQUIRED.items()
    for name in names
    if not hasattr(owner, name)
]
if _missing:  # pragma: no cover - depends on the installed Keras
    raise ImportError(
        f"keras_curriculum supports Keras {SUPPORTED_KERAS}; Keras {keras.__version__} lacks "
        f"internals it needs: {', '.join(_missing)}"
    )

DynamicBackend = backend_utils.DynamicBackend
in_tf_graph = backend_utils.in_tf_graph
is_in_jax_tracing_scope = jax_utils.is_in_jax_tracing_scope


# Model and layer internals ------------------------------------------------------------------


def flatten_layers(layer):
    """Every sub-layer of `layer`, recursively, nested models and layers of layers included."""
    return list(layer._flatten_layers(include_self=False, recursive=True))


def is_functional(model):
    """Whether `model` is a Functional model (a layer graph that can be re-run)."""
    return hasattr(model, "_run_through_graph")


def nodes_by_depth(model):
    """A Functional model's nodes by depth (Keras numbers depth from the outputs)."""
    return model._nodes_by_depth


def unsynced_model(callback):
    """A callback's model without the JAX state sync that `callback.model` performs.

    On JAX, reading `callback.model` copies every variable back from the trainer's state; a
    callback that only needs the optimizer's counter at an epoch boundary (already synced) or
    the metric buffer (`jax_metric_values`) avoids that copy.
    """
    return callback._model


def calling_callback_list(callback, max_frames=8):
    """The `callbacks` list of the `keras.callbacks.CallbackList` now calling `callback`, or None.

    Keras 3 gives a callback no reference to the other callbacks of its `fit`: the
    `CallbackList` that `fit` builds calls `set_model` on each of them, so the list is the `self`
    of a calling frame. Looked up by walking a few frames up from the caller, and accepted only
    if it holds `callback` itself. Returns the list object (`CallbackList.callbacks`, public),
    which the caller may insert into, or None when `callback` is not being set up by a
    `CallbackList` (a custom training loop).
    """
    frame = sys._getframe(1)
    for _ in range(max_frames):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.callbacks.CallbackList) and any(
            c is callback for c in getattr(owner, "callbacks", ())
        ):
            return owner.callbacks
        frame = frame.f_back
    return None


def restored_epoch(model):
    """The epoch `keras.callbacks.BackupAndRestore` restored for this `fit`, or None.

    `BackupAndRestore.on_train_begin` sets `model._initial_epoch`, which `fit` then starts
    from; a plain `fit(initial_epoch=...)` does not. Keras 3.15 never clears it, so compare it
    with the first epoch of the fit.
    """
    return getattr(model, "_initial_epoch", None)


def jax_metric_values(model, positions):
    """The live values of `model.metrics_variables[positions]` inside a JAX `fit`, or None.

    JAX threads state through the step; between syncs the live values are in the trainer's
    state (reading `model.metrics_variables` would return stale ones, and reading through
    `self.model` copies every variable back).
    """
    state = getattr(model, "_jax_state", None)
    if not state or model._jax_state_synced:
        return None
    return [state["metrics_variables"][i] for i in positions]


class TFDataEqualization(keras.layers.Equalization):
    """`keras.layers.Equalization` with a histogram that stays one op inside `tf.data`.

    Keras 3.15 picks its histogram by the global backend: on JAX it unrolls 256 comparisons per
    channel, which inside a `tf.data` graph (TF ops) takes 45 s to trace one RandAugment and
    ~100x longer to run. `bincount` is what Keras itself uses on TF.
    """

    def _custom_histogram_fixed_width(self, values, value_range, nbins):
        if self.backend.name != "tensorflow":
            return super()._custom_histogram_fixed_width(values, value_range, nbins)
        import tensorflow as tf

        low, high = (float(v) for v in value_range)
        scaled = (tf.cast(values, tf.float32) - low) * (nbins - 1) / (high - low)
        indices = tf.clip_by_value(tf.cast(scaled, tf.int32), 0, nbins - 1)
        return tf.math.bincount(tf.reshape(indices, [-1]), minlength=nbins, dtype=tf.int32)


# Optimizer internals ------------------------------------------------------------------------


def base_optimizer(optimizer):
    """The optimizer that owns the variables (`LossScaleOptimizer` wraps one)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def learning_rate_object(optimizer):
    """What the user gave as learning rate: a `LearningRateSchedule`, a variable or a callable."""
    return optimizer._learning_rate


def iteration_variable(optimizer):
    """The optimizer's step counter variable (micro-steps under gradient accumulation)."""
    return optimizer._iterations


def optimizer_variables_in_order(optimizer):
    """The trainable variables the optimizer updates, in its own (index) order."""
    return list(optimizer._trainable_variables)


def accumulated_gradients(optimizer):
    """The gradient accumulators of an optimizer with `gradient_accumulation_steps`."""
    return getattr(optimizer, "_accumulated_gradients", None) or ()


# The optimizer patch registry ---------------------------------------------------------------

# Inner to outer. EfficientTrain's saturation maps the real micro-step to the step of the
# fixed-batch run; LeRaC's curriculum runs on that step and holds the schedule after it.
PATCH_ORDER = ("efficient_train", "lerac")


class Patch(NamedTuple):
    """What one curriculum changes in an optimizer's update; every field is optional.

    step_map: step -> step, the counter every later patch and the schedule see.
    schedule_map: step -> step, applied (after every `step_map`) to the step at which a
        `LearningRateSchedule` is evaluated; it does not change what later patches see.
    rate_scale: number multiplying the base learning rate.
    group_rates: `(base_rate, step) -> (num_groups,)` tensor of per-group rates.
    group_of_index: with `group_rates`, the group of each optimizer variable, by index.
    order_apply: on TensorFlow, make the step counter wait for the gradients (see
        `_apply_after_gradients`).
    """

    step_map: Callable | None = None
    schedule_map: Callable | None = None
    rate_scale: float | None = None
    group_rates: Callable | None = None
    group_of_index: list | None = None
    order_apply: bool = False


_PATCHED = (
    "_get_current_learning_rate",
    "update_step",
    "_backend_update_step",
    "_apply_weight_decay",
    "apply",
)
_REGISTRY = "_keras_curriculum_patches"


class OptimizerPatches:
    """The patches of one optimizer instance, installed as instance attributes in one place.

    `OptimizerPatches.of(optimizer)` returns the registry (created on first use); `set(owner,
    patch)` and `remove(owner)` re-install the composed overrides. With no patch left, the
    optimizer's own class methods are back and it runs bit-identically to an unpatched one.
    The registry is a plain instance attribute: it is not tracked, saved or serialized.
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.patches = {}
        self.revisions = {owner: 0 for owner in PATCH_ORDER}

    @classmethod
    def of(cls, optimizer):
        optimizer = base_optimizer(optimizer)
        registry = vars(optimizer).get(_REGISTRY)
        if registry is None:
            registry = cls(optimizer)
            object.__setattr__(optimizer, _REGISTRY, registry)
        return registry

    @staticmethod
    def has(optimizer, owner):
        """Whether `owner` has a patch on `optimizer` (creates no registry)."""
        registry = vars(base_optimizer(optimizer)).get(_REGISTRY)
        return registry is not None and owner in registry.patches

    def get(self, owner):
        return self.patches.get(owner)

    def set(self, owner, patch):
        if owner not in PATCH_ORDER:
            raise ValueError(f"`owner` must be one of {PATCH_ORDER}. Received: owner={owner!r}")
        self.patches[owner] = patch
        self.revisions[owner] += 1
        self._install()

    def remove(self, owner):
        if self.patches.pop(owner, None) is not None:
            self.revisions[owner] += 1
        self._install()

    def revision_of_others(self, owner):
        """Changes whenever another owner's patch changes: a key for traced functions that
        `owner` caches, since every patch is a constant of the traced step."""
        return tuple(self.revisions[o] for o in PATCH_ORDER if o != owner)

    # Composition ---------------------------------------------------------------------------

    def _ordered(self):
        return [(o, self.patches[o]) for o in PATCH_ORDER if o in self.patches]

    def step_before(self, owner):
        """The counter `owner` sees: the real one through the step maps of earlier patches."""
        step = self.optimizer._iterations
        for name, patch in self._ordered():
            if name == owner:
                break
            if patch.step_map is not None:
                step = patch.step_map(step)
        return step

    def _schedule_step(self):
        step = self.optimizer._iterations
        ordered = self._ordered()
        for _, patch in ordered:
            if patch.step_map is not None:
                step = patch.step_map(step)
        for _, patch in ordered:
            if patch.schedule_map is not None:
                step = patch.schedule_map(step)
        return step

    def base_rate(self):
        """The base learning rate in the train step with every patch applied."""
        optimizer = self.optimizer
        schedule = optimizer._learning_rate
        if isinstance(schedule, LearningRateSchedule):
            rate = schedule(self._schedule_step())
        else:
            rate = type(optimizer)._get_current_learning_rate(optimizer)
        for _, patch in self._ordered():
            if patch.rate_scale is not None and patch.rate_scale != 1:
                rate = rate * patch.rate_scale
        return rate

    def _grouping(self):
        for owner, patch in self._ordered():
            if patch.group_rates is not None:
                return owner, patch
        return None, None

    def _install(self):
        optimizer = self.optimizer
        for name in _PATCHED:
            if name in vars(optimizer):
                object.__delattr__(optimizer, name)
        ordered = self._ordered()
        if not ordered:  # the registry stays: its revisions must keep counting up
            return
        changes_rate = any(
            p.step_map or p.schedule_map or p.rate_scale not in (None, 1) for _, p in ordered
        )
        if changes_rate:
            object.__setattr__(optimizer, "_get_current_learning_rate", self.base_rate)
        if any(p.order_apply for _, p in ordered) and backend.backend() == "tensorflow":
            object.__setattr__(optimizer, "apply", _apply_after_gradients(optimizer))
        owner, grouping = self._grouping()
        if grouping is not None:
            _install_group_rates(optimizer, self, owner, grouping)


def _apply_after_gradients(optimizer):
    """`optimizer.apply` whose step-count increment waits for the gradients (TensorFlow).

    An epoch that ends before the count Keras expects ends with one more call of the train
    function on an exhausted iterator. That call fails in `get_next`, but the optimizer's
    `iterations.assign_add(1)` does not depend on the data and may already have run
    (observed with Keras 3.15, one extra count per early-ending epoch).
    """
    import tensorflow as tf

    apply = type(optimizer).apply.__get__(optimizer)

    def apply_after_gradients(grads, trainable_variables=None):
        with tf.control_dependencies([g for g in grads if g is not None]):
            return apply(grads, trainable_variables)

    return apply_after_gradients


def _install_group_rates(optimizer, registry, owner, patch):
    """Per-variable rates: each variable's update is the optimizer's own at its group's rate.

    - Scaling gradients equals scaling the rate for plain SGD only; Adam-family optimizers are
      nearly invariant to gradient scale, so the *rate* handed to `update_step` is scaled.
    - Keras applies decoupled weight decay before `update_step` with the *global* rate; the
      optimizer's own `_apply_weight_decay` runs once per group while the current rate reads as
      that group's, so each optimizer keeps its own decay rule (Muon's two coefficients, TF's
      distributed update) and a rate scale of 1 is bit-identical.
    - `_backend_update_step` receives the group-rate vector in place of the scalar rate (the TF
      backend routes it through `tf.distribute` like the scalar); `update_step` picks the
      variable's entry. On TF `update_step` sees raw `tf.Variable`s: `_get_variable_index`
      handles both.
    - torch: the built-in optimizers are swapped for fused versions whose
      `_parallel_update_step` never calls `update_step`, so the generic update runs instead.
    """
    group_of_index = list(patch.group_of_index)
    own_update = type(optimizer).update_step.__get__(optimizer)
    own_decay = type(optimizer)._apply_weight_decay.__get__(optimizer)
    own_vector_update = _unfused_backend_update_step(optimizer)
    current_rate = optimizer._get_current_learning_rate
    # The registry's override, if any, else the optimizer's own method.
    restore = vars(optimizer).get("_get_current_learning_rate") or current_rate

    def rates(learning_rate):
        return patch.group_rates(ops.cast(learning_rate, "float32"), registry.step_before(owner))

    def group_of(variable):
        return group_of_index[optimizer._get_variable_index(variable)]

    def grouped_weight_decay(variables):
        members = {}
        for variable in variables:
            members.setdefault(group_of(variable), []).append(variable)
        for group in sorted(members):
            # The rate is recomputed wherever the decay code asks for it (inside TF's
            # cross-replica update too), never captured from another replica's graph.
            object.__setattr__(
                optimizer,
                "_get_current_learning_rate",
                lambda group=group: rates(current_rate())[group],
            )
            try:
                own_decay(members[group])
            finally:
                # Set back, never deleted: under tf.distribute every replica thread runs this
                # and meets the others in the decay's merge call, so two of them restore it.
                object.__setattr__(optimizer, "_get_current_learning_rate", restore)

    def vector_update(grads, trainable_variables, learning_rate):
        own_vector_update(grads, trainable_variables, rates(learning_rate))

    def variable_update(gradient, variable, learning_rate):
        own_update(gradient, variable, learning_rate[group_of(variable)])

    object.__setattr__(optimizer, "_apply_weight_decay", grouped_weight_decay)
    object.__setattr__(optimizer, "_backend_update_step", vector_update)
    object.__setattr__(optimizer, "update_step", variable_update)


def _unfused_backend_update_step(optimizer):
    """The optimizer's `_backend_update_step`, outside the torch fused classes on torch."""
    if backend.backend() != "torch":
        return type(optimizer)._backend_update_step.__get__(optimizer)
    from keras.src.backend.torch.optimizers.torch_parallel_optimizer import TorchParallelOptimizer

    for cls in type(optimizer).__mro__:
        if issubclass(cls, TorchParallelOptimizer) or "_backend_update_step" not in vars(cls):
            continue
        return vars(cls)["_backend_update_step"].__get__(optimizer)
    raise AssertionError("BaseOptimizer defines _backend_update_step")
