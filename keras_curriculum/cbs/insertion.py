"""CBS: inserting `GaussianSmoothing` after the convolutions of an existing model."""

import fnmatch
import warnings

import keras

from keras_curriculum import _keras_internals as internals
from keras_curriculum._validation import check_bool
from keras_curriculum._validation import check_model
from keras_curriculum.cbs.smoothing import DEFAULT_BYPASS_TOLERANCE
from keras_curriculum.cbs.smoothing import GaussianSmoothing
from keras_curriculum.cbs.smoothing import check_kernel_size
from keras_curriculum.cbs.smoothing import check_sigma
from keras_curriculum.cbs.smoothing import check_tolerance

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


def _inner_layers(layer):
    # Keras' own recursive walk (it also enters subclassed layers that hold
    # sub-layers, which a walk over `Model.layers` would miss).
    return internals.flatten_layers(layer)


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
    """Sequential models (a layer list) and Functional ones (a layer graph, with their
    subclasses such as keras-hub backbones) are what `add_smoothing` rewrites."""
    return isinstance(layer, keras.Sequential) or (
        isinstance(layer, keras.Model) and internals.is_functional(layer)
    )


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
    subclassed = (
        f"{len(unreachable)} convolutions inside subclassed models or layers (e.g. "
        f"{unreachable[:3]}), whose `call` add_smoothing cannot rewrite"
    )
    put_layers = "put `kc.GaussianSmoothing` after them in that `call` yourself"
    if recursive and unreachable:
        raise ValueError(
            f"`model` must hold every convolution to smooth in Functional or Sequential models "
            f"when recursive=True. Received: model '{model.name}' with {subclassed}. Either "
            f"{put_layers}, or skip them with `exclude`."
        )
    if not reached:
        if nested:
            reason = (
                f"its {len(nested)} convolutions to smooth all sit inside nested models "
                f"(e.g. {nested[:3]}); pass recursive=True to smooth them"
            )
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
        warnings.warn(f"add_smoothing: {subclassed} are not smoothed; {put_layers}.", stacklevel=3)


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
        keras.Sequential(inputs + layers, trainable=model.trainable, name=model.name), model
    )


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
    backbone = keras_curriculum_recipes.models.resnet18()
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
                    model, clone_function=replace, call_function=call_function
                )
        return rewritten[id(model)]

    return rewrite(model)
