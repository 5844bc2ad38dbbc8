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



def smoothing_layers(model):
    """Every `GaussianSmoothing` layer of `model`, nested models and layers included."""
    # Keras' own recursive walk: it also enters subclassed layers that hold sub-layers, which a
    # walk over `Model.layers` would miss.
    check_model("model", model)
    return [
        layer
        for layer in internals.flatten_layers(model)
        if isinstance(layer, GaussianSmoothing)
    ]


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
    names = [layer.name for layer in internals.flatten_layers(model)]
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


def _unsmoothed_nested_convolutions(model):
    """Convolutions inside nested models that `recursive=False` leaves without smoothing."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += [
                inner.name
                for inner in internals.flatten_layers(layer)
                if isinstance(inner, _CONVOLUTIONS)
            ]
    return found


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
    """Returns a copy of a Functional model with `GaussianSmoothing` after every convolution.

    The copy shares every layer, and so every weight, with `model`: training one trains the
    other. A `GaussianSmoothing` layer named `<conv name>_smoothing` follows the output of each
    1-D or 2-D convolution (`Conv`, `DepthwiseConv`, `SeparableConv`, `ConvTranspose`; a
    convolution with a fused activation is smoothed after the activation), the placement of the
    authors' ResNets (conv -> smoothing -> BN -> ReLU). A convolution called several times gets
    one smoothing layer. The copy is a plain `keras.Model` (Functional) with the same inputs,
    outputs and name, compiled like `model` if `model` was compiled; a Functional subclass such as
    a keras-hub backbone comes back as a plain Functional model without its extra attributes.

    Sequential and subclassed models cannot be rewritten: build them with `GaussianSmoothing`
    layers where you want them (`kc.SigmaDecay` finds them wherever they are).

    Args:
        model: a Functional `keras.Model`.
        sigma: float >= 0, the initial sigma of every inserted layer (paper: 1, audio 0.8).
        kernel_size: odd int >= 1 (paper: 3).
        exclude: None, layer-name patterns (`fnmatch`, e.g. `"*shortcut*"`) or a callable
            `layer -> bool`; matching convolutions are not smoothed.
        skip_pointwise: bool, leave 1x1 (pointwise) convolutions unsmoothed, as the authors do
            for the projection shortcuts of their ResNets.
        recursive: bool, also rewrite nested Functional models (e.g. a keras-hub backbone inside
            a classifier). Without it, a warning lists the nested convolutions left unsmoothed.
            Convolutions inside nested Sequential models are never smoothed.
        smooth_at_inference, bypass_tolerance: passed to every `GaussianSmoothing`.

    Returns:
        The new Functional model.

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
    functional = isinstance(model, keras.Model) and hasattr(model, "_run_through_graph")
    if not functional or isinstance(model, keras.Sequential):
        raise (ValueError if isinstance(model, keras.Model) else TypeError)(
            "`model` must be a Functional keras.Model (built with keras.Input and layer calls): "
            "`add_smoothing` rewrites Functional models only. Received: model of type "
            f"{type(model).__name__}. For a Sequential or subclassed model, put "
            "`kc.GaussianSmoothing(sigma, kernel_size)` after the convolutions yourself; "
            "`kc.SigmaDecay` finds those layers wherever they are."
        )
    check_sigma(sigma)
    check_kernel_size(kernel_size)
    check_tolerance(bypass_tolerance)
    skip_pointwise = check_bool("skip_pointwise", skip_pointwise)
    recursive = check_bool("recursive", recursive)
    check_bool("smooth_at_inference", smooth_at_inference)
    if not any(isinstance(layer, _CONVOLUTIONS)
               for layer in internals.flatten_layers(model)):
        raise ValueError(
            f"`model` must contain a 1-D or 2-D convolution for `add_smoothing` to smooth after. "
            f"Received: model '{model.name}' without one. Place `kc.GaussianSmoothing` layers "
            "yourself where the model should be smoothed."
        )
    excluded = _excluder(exclude, model)
    smoothing_of = {}

    def wants_smoothing(layer):
        if not isinstance(layer, _CONVOLUTIONS) or excluded(layer):
            return False
        return not (skip_pointwise and _is_pointwise(layer))

    def call_function(layer, *args, **kwargs):
        outputs = layer(*args, **kwargs)
        if not wants_smoothing(layer):
            return outputs
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
        return smoothing_of[id(layer)](outputs)

    if not recursive:
        left_out = _unsmoothed_nested_convolutions(model)
        if left_out:
            warnings.warn(
                f"add_smoothing: {len(left_out)} convolutions inside nested models are not "
                f"smoothed (e.g. {left_out[:3]}); pass recursive=True to smooth them.",
                stacklevel=2,
            )
    return keras.models.clone_model(
        model,
        clone_function=lambda layer: layer,  # share the original layers and their weights
        call_function=call_function,
        recursive=recursive,
    )
