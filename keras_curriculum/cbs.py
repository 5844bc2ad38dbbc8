"""CBS: Curriculum by Smoothing (Sinha, Garg, Larochelle, NeurIPS 2020) for Keras 3.

Gaussian smoothing after every convolution blurs the feature maps early in training; sigma decays
over the epochs until the network trains as it would without it. Pieces: the sigma schedule (a
pure function of the epoch), `GaussianSmoothing` (in `keras_curriculum.smoothing`),
`add_smoothing` to insert it into an existing Functional or Sequential model, and the `SigmaDecay`
callback.
"""

import fnmatch
import math
import warnings

import keras

from keras_curriculum._validation import check_bool
from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_model
from keras_curriculum._validation import check_number
from keras_curriculum.smoothing import DEFAULT_BYPASS_TOLERANCE
from keras_curriculum.smoothing import GaussianSmoothing
from keras_curriculum.smoothing import bypass_sigma
from keras_curriculum.smoothing import check_kernel_size
from keras_curriculum.smoothing import check_sigma
from keras_curriculum.smoothing import check_tolerance
from keras_curriculum.smoothing import gaussian_kernel
from keras_curriculum.smoothing import is_identity
from keras_curriculum.smoothing import off_centre_mass

__all__ = [
    "GaussianSmoothing",
    "SigmaDecay",
    "add_smoothing",
    "bypass_epoch",
    "bypass_sigma",
    "gaussian_kernel",
    "is_identity",
    "off_centre_mass",
    "sigma_at_epoch",
    "smoothing_layers",
]

# Convolutions whose output is a 1-D or 2-D feature map, the shapes GaussianSmoothing handles.
_CONVOLUTIONS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
)


# Schedule math ---------------------------------------------------------------------------------


def check_decay(factor, every):
    """SigmaDecay's `factor` in (0, 1] and `every` >= 1, as (float, int)."""
    return (check_number("factor", factor, low=0.0, high=1.0, low_open=True),
            check_int("every", every, 1))


def sigma_at_epoch(initial_sigma, epoch, factor=0.9, every=5):
    """The CBS sigma of epoch `epoch` (counted from 0): sigma_0 * factor ** floor(epoch / every)."""
    initial_sigma = check_sigma(initial_sigma, "initial_sigma")
    factor, every = check_decay(factor, every)
    return initial_sigma * factor ** (check_int("epoch", epoch, 0) // every)


def bypass_epoch(initial_sigma, factor=0.9, every=5, kernel_size=3, rank=2,
                 tolerance=DEFAULT_BYPASS_TOLERANCE):
    """The first epoch at which the decayed kernel is the identity within `tolerance`.

    From this epoch on, `GaussianSmoothing` passes its input through. Returns `math.inf` if that
    never happens (`factor=1`, or `tolerance=None`).
    """
    initial_sigma = check_sigma(initial_sigma, "initial_sigma")
    factor, every = check_decay(factor, every)
    threshold = bypass_sigma(kernel_size, rank, tolerance)  # checks the other three
    if tolerance is None:
        return math.inf
    if initial_sigma <= threshold:
        return 0
    if factor >= 1:
        return math.inf

    def reached(decays):
        return sigma_at_epoch(initial_sigma, decays * every, factor, every) <= threshold

    decays = math.ceil(math.log(threshold / initial_sigma) / math.log(factor))
    # Rounding in the logarithms can put the estimate one decay off: settle it on the schedule.
    while decays > 0 and reached(decays - 1):
        decays -= 1
    while not reached(decays):
        decays += 1
    return decays * every


# Insertion into a model ------------------------------------------------------------------------


def _inner_layers(layer):
    # `_flatten_layers` is Keras' own recursive walk (it also enters subclassed layers that hold
    # sub-layers, which a walk over `Model.layers` would miss).
    return layer._flatten_layers(include_self=False, recursive=True)


def smoothing_layers(model):
    """Every `GaussianSmoothing` layer of `model`, nested models and layers included."""
    check_model("model", model)
    return [layer for layer in _inner_layers(model) if isinstance(layer, GaussianSmoothing)]


def _excluder(exclude, model):
    if exclude is None:
        return lambda layer: False
    if callable(exclude):
        return exclude
    patterns = [exclude] if isinstance(exclude, str) else exclude
    if not isinstance(patterns, (list, tuple)) or not all(isinstance(p, str) for p in patterns):
        raise TypeError(
            "`exclude` must be None, a callable taking a layer, or layer-name patterns "
            f"(fnmatch). Received: exclude={exclude!r}"
        )
    names = [layer.name for layer in _inner_layers(model)]
    # A pattern that matches nothing is a typo that would silently smooth what it meant to skip.
    unknown = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in names)]
    if unknown:
        raise ValueError(
            f"`exclude` must name layers of the model: {unknown} match no layer of "
            f"'{model.name}'. Received: exclude={exclude!r}"
        )
    return lambda layer: any(fnmatch.fnmatchcase(layer.name, p) for p in patterns)


def _is_pointwise(layer):
    return all(size == 1 for size in layer.kernel_size)


def _is_rewritable(layer):
    """Sequential models (a layer list) and Functional ones (a layer graph; `_run_through_graph`
    marks them and their subclasses, e.g. keras-hub backbones) are what `add_smoothing` rewrites.
    """
    return isinstance(layer, keras.Sequential) or (
        isinstance(layer, keras.Model) and hasattr(layer, "_run_through_graph"))


def _survey(model, wants_smoothing, recursive):
    """Names of the convolutions to smooth: (reached, left in nested models, unreachable).

    Unreachable ones sit inside subclassed models or layers, whose `call` is Python code.
    """
    reached, nested, unreachable = [], [], []
    for layer in model.layers:
        if wants_smoothing(layer):
            reached.append(layer.name)
        elif _is_rewritable(layer):
            inner, _, inner_unreachable = _survey(layer, wants_smoothing, recursive=True)
            (reached if recursive else nested).extend(inner)
            unreachable += inner_unreachable
        else:
            unreachable += [inner.name for inner in _inner_layers(layer) if wants_smoothing(inner)]
    return reached, nested, unreachable


def _check_reach(model, reached, nested, unreachable, recursive):
    """Refuses a rewrite that would add no smoothing layer; warns about what it leaves out."""
    subclassed = (f"{len(unreachable)} convolutions inside subclassed models or layers (e.g. "
                  f"{unreachable[:3]}), whose `call` add_smoothing cannot rewrite")
    put_layers = "put `kc.GaussianSmoothing` after them in that `call` yourself"
    if recursive and unreachable:
        raise ValueError(
            f"`model` must hold every convolution to smooth in Functional or Sequential models "
            f"when recursive=True. Received: model '{model.name}' with {subclassed}. Either "
            f"{put_layers}, or skip them with `exclude`."
        )
    if not reached:
        if nested:
            reason = (f"its {len(nested)} convolutions to smooth all sit inside nested models "
                      f"(e.g. {nested[:3]}); pass recursive=True to smooth them")
        elif unreachable:
            reason = f"it has only {subclassed}; {put_layers}"
        else:
            reason = "`exclude` and `skip_pointwise` leave none of its convolutions to smooth"
        raise ValueError(
            "`model` must have a convolution that add_smoothing smooths, or SigmaDecay would "
            f"fail at `fit`. Received: model '{model.name}': {reason}."
        )
    if nested:
        warnings.warn(
            f"add_smoothing: {len(nested)} convolutions inside nested models are not smoothed "
            f"(e.g. {nested[:3]}); pass recursive=True to smooth them.",
            stacklevel=3,
        )
    if unreachable:
        warnings.warn(f"add_smoothing: {subclassed} are not smoothed; {put_layers}.",
                      stacklevel=3)


def _compiled_like(new_model, model):
    # As `clone_model` does: the same compile arguments (a fresh optimizer).
    if model.compiled:
        new_model.compile_from_config(model.get_compile_config())
    return new_model


def _smoothed_sequential(model, replace, smoothing_after):
    """The layer list of `model` with `smoothing_after(layer)` after each layer that has one."""
    layers = []
    for layer in model.layers:
        layers.append(replace(layer))
        smoothing = smoothing_after(layer)
        if smoothing is not None:
            layers.append(smoothing)
    try:
        # A built Sequential has an input layer: the copy starts with it, so it is built at once
        # with the same input spec; an unbuilt one stays unbuilt until its first call.
        inputs = list(model.inputs)
    except AttributeError:
        inputs = []
    return _compiled_like(
        keras.Sequential(inputs + layers, trainable=model.trainable, name=model.name), model)


def add_smoothing(
    model,
    sigma=1.0,
    kernel_size=3,
    exclude=None,
    skip_pointwise=True,
    recursive=False,
    smooth_at_inference=True,
    bypass_tolerance=DEFAULT_BYPASS_TOLERANCE,
):
    """Returns a copy of a Functional or Sequential model with `GaussianSmoothing` after every
    convolution.

    The copy shares every layer, and so every weight, with `model`: training one trains the
    other. A `GaussianSmoothing` layer named `<conv name>_smoothing`, with the convolution's
    `data_format` and dtype policy, follows the output of each 1-D or 2-D convolution (`Conv`,
    `DepthwiseConv`, `SeparableConv`, `ConvTranspose`; a convolution with a fused activation is
    smoothed after the activation), the placement of the authors' ResNets (conv -> smoothing ->
    BN -> ReLU). A convolution used several times gets one smoothing layer.

    A Functional model comes back as a plain `keras.Model` (Functional) with the same inputs,
    outputs and name; a Functional subclass such as a keras-hub backbone loses its class and
    extra attributes. A Sequential model comes back as a `keras.Sequential` whose layer list has
    the smoothing layers after the convolutions, with the same input (built at once if `model`
    was built) and name. Either is compiled like `model` if `model` was compiled.

    What cannot be rewritten: a subclassed model (its `call` is Python code), passed directly,
    raises a ValueError; put `kc.GaussianSmoothing` after its convolutions in `call` yourself
    (`kc.SigmaDecay` finds those layers wherever they are). Convolutions inside subclassed models
    or layers nested in `model` are not smoothed: with `recursive=False` a warning names them,
    with `recursive=True` a ValueError does (skip them with `exclude` to go on).

    Args:
        model: a Functional or Sequential `keras.Model`.
        sigma: float >= 0, the initial sigma of every inserted layer (paper: 1, audio 0.8).
        kernel_size: odd int >= 1 (paper: 3).
        exclude: None, layer-name patterns (`fnmatch`, e.g. `"*shortcut*"`) or a callable
            `layer -> bool`; matching convolutions are not smoothed.
        skip_pointwise: bool, leave 1x1 (pointwise) convolutions unsmoothed, as the authors do
            for the projection shortcuts of their ResNets.
        recursive: bool, also rewrite the Functional and Sequential models nested in `model`
            (e.g. a keras-hub backbone inside a classifier), at any depth. Without it, nested
            models are kept as they are and a warning lists the convolutions left unsmoothed.
        smooth_at_inference, bypass_tolerance: passed to every `GaussianSmoothing`.

    Returns:
        The new model, of the kind of `model` (Functional or Sequential).

    Raises:
        ValueError: if `model` is subclassed, has no convolution, or no smoothing layer would
            be added (all convolutions excluded, or all inside nested models with
            `recursive=False`), or, with `recursive=True`, a convolution to smooth sits inside
            a subclassed model or layer.

    Example:

    ```python
    backbone = recipes.models.resnet18()
    model = kc.add_smoothing(backbone, sigma=1.0, kernel_size=3)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=200, callbacks=[kc.SigmaDecay(factor=0.9, every=5)])
    ```

    References:
        Sinha, Garg, Larochelle. "Curriculum By Smoothing", NeurIPS 2020.
    """
    if not _is_rewritable(model):
        raise (ValueError if isinstance(model, keras.Model) else TypeError)(
            "`model` must be a Functional or Sequential keras.Model: `add_smoothing` rewrites "
            "their layer graph or list, while a subclassed model's `call` is Python code it "
            f"cannot change. Received: model of type {type(model).__name__}. Put "
            "`kc.GaussianSmoothing(sigma, kernel_size)` after the convolutions yourself; "
            "`kc.SigmaDecay` finds those layers wherever they are."
        )
    check_sigma(sigma)
    check_kernel_size(kernel_size)
    check_tolerance(bypass_tolerance)
    skip_pointwise = check_bool("skip_pointwise", skip_pointwise)
    recursive = check_bool("recursive", recursive)
    check_bool("smooth_at_inference", smooth_at_inference)
    if not any(isinstance(layer, _CONVOLUTIONS) for layer in _inner_layers(model)):
        raise ValueError(
            f"`model` must contain a 1-D or 2-D convolution for `add_smoothing` to smooth after. "
            f"Received: model '{model.name}' without one. Place `kc.GaussianSmoothing` layers "
            "yourself where the model should be smoothed."
        )
    excluded = _excluder(exclude, model)

    def wants_smoothing(layer):
        if not isinstance(layer, _CONVOLUTIONS) or excluded(layer):
            return False
        return not (skip_pointwise and _is_pointwise(layer))

    _check_reach(model, *_survey(model, wants_smoothing, recursive), recursive)
    smoothing_of, rewritten = {}, {}

    def smoothing_after(layer):
        if not wants_smoothing(layer):
            return None
        if id(layer) not in smoothing_of:
            smoothing_of[id(layer)] = GaussianSmoothing(
                sigma=sigma,
                kernel_size=kernel_size,
                smooth_at_inference=smooth_at_inference,
                bypass_tolerance=bypass_tolerance,
                data_format=layer.data_format,
                # The smoothing joins the convolution's precision (mixed-precision policies).
                dtype=layer.dtype_policy,
                name=f"{layer.name}_smoothing",
            )
        return smoothing_of[id(layer)]

    def call_function(layer, *args, **kwargs):
        outputs = layer(*args, **kwargs)
        smoothing = smoothing_after(layer)
        return outputs if smoothing is None else smoothing(outputs)

    def replace(layer):
        # Original layers are shared (and so their weights); nested models are rewritten, once
        # each, when `recursive`.
        return rewrite(layer) if recursive and _is_rewritable(layer) else layer

    def rewrite(model):
        if id(model) not in rewritten:
            if isinstance(model, keras.Sequential):
                rewritten[id(model)] = _smoothed_sequential(model, replace, smoothing_after)
            else:
                rewritten[id(model)] = keras.models.clone_model(
                    model, clone_function=replace, call_function=call_function)
        return rewritten[id(model)]

    return rewrite(model)


# Callback --------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="keras_curriculum")
class SigmaDecay(keras.callbacks.Callback):
    """Decays the sigma of every `GaussianSmoothing` layer of the model, epoch by epoch.

    At the beginning of every epoch e (counted from 0), this callback sets each smoothing
    layer's sigma to

        sigma_e = sigma_0 * factor ** floor(e / every)

    where sigma_0 is the `sigma` the layer was built with. The value depends on the epoch index
    only, so a run resumed by `keras.callbacks.BackupAndRestore` (or `fit(initial_epoch=...)`)
    continues exactly where it stopped. When sigma crosses a layer's bypass point (its kernel
    becomes the identity within `bypass_tolerance`), the callback retraces the model's compiled
    train/test/predict functions once, and from then on smoothing costs nothing.

    At the end of every epoch, `logs` (and so `History`, `TensorBoard` placed after this callback,
    `CSVLogger`) receives `cbs_sigma`, the largest current sigma, and `cbs_active_layers`, the
    number of smoothing layers still convolving.

    Args:
        factor: float in (0, 1], the decay factor d (paper: 0.9). 1 keeps sigma constant.
        every: int >= 1, epochs between decays u (paper: 2 to 5).

    Example:

    ```python
    model = kc.add_smoothing(resnet, sigma=1.0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=200, callbacks=[kc.SigmaDecay(factor=0.9, every=5)])
    ```

    References:
        Sinha, Garg, Larochelle. "Curriculum By Smoothing", NeurIPS 2020.
    """

    def __init__(self, factor=0.9, every=5):
        super().__init__()
        self.factor, self.every = check_decay(factor, every)
        self._layers = []

    def sigma_at(self, layer, epoch):
        """The sigma `layer` gets at the start of `epoch`."""
        return sigma_at_epoch(layer.sigma, epoch, self.factor, self.every)

    def on_train_begin(self, logs=None):
        self._layers = smoothing_layers(self.model)
        if not self._layers:
            raise ValueError(
                f"SigmaDecay found no GaussianSmoothing layer in `model` '{self.model.name}'. "
                "Insert them with `kc.add_smoothing(model)` or add `kc.GaussianSmoothing` "
                "layers to the model."
            )

    def on_epoch_begin(self, epoch, logs=None):
        switched = [layer.set_sigma(self.sigma_at(layer, epoch)) for layer in self._layers]
        if any(switched):
            self._retrace()

    def _retrace(self):
        # Whether a layer convolves is a Python-level decision taken while tracing, so the
        # compiled functions must be rebuilt to see the switch. This costs one retrace per run;
        # the alternative, an on-device `ops.cond` on sigma in every layer, costs a conditional
        # per layer per step for the whole run (benchmarks/cbs.py times both variants).
        self.model.make_train_function(force=True)
        self.model.make_test_function(force=True)
        self.model.make_predict_function(force=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not self._layers:
            return
        logs["cbs_sigma"] = max(layer.current_sigma for layer in self._layers)
        logs["cbs_active_layers"] = sum(not layer.passes_through for layer in self._layers)

    def get_config(self):
        return {"factor": self.factor, "every": self.every}
