"""CBS: kernel and schedule against the paper, the layer against numpy, insertion, decay, bypass."""

import math
import warnings

import keras
import numpy as np
import pytest
from keras import layers
from keras import ops
from keras_versions import needs_keras

import keras_curriculum as kc
from keras_curriculum.cbs import GaussianSmoothing
from keras_curriculum.cbs import SigmaDecay
from keras_curriculum.cbs import add_smoothing
from keras_curriculum.cbs import bypass_epoch
from keras_curriculum.cbs import bypass_sigma
from keras_curriculum.cbs import gaussian_kernel
from keras_curriculum.cbs import is_identity
from keras_curriculum.cbs import off_centre_mass
from keras_curriculum.cbs import sigma_at_epoch
from keras_curriculum.cbs import smoothing_layers
from keras_curriculum.lerac import LeRaC

from checks import assert_curve
from checks import assert_same_recorded
from checks import rebuilt
from layer_checks import check_layer
from tf_subprocess import only_in_tensorflow_pass
from tf_subprocess import run_two_replica_check

# ---------------------------------------------------------------------------------------------
# Independent numpy references (written from the paper's formula, not from the package)


def paper_kernel(sigma, k, rank):
    """exp(-|offset|^2 / (2 sigma^2)) on the k^rank integer grid, normalised to sum 1."""
    offsets = np.arange(k) - (k - 1) / 2
    grids = np.meshgrid(*([offsets] * rank), indexing="ij")
    squared = sum(g**2 for g in grids)
    if sigma == 0:
        kernel = (squared == 0).astype("float64")
    else:
        kernel = np.exp(-squared / (2.0 * sigma**2))
    return kernel / kernel.sum()


def numpy_smooth(x, sigma, k):
    """Depthwise correlation with zero 'same' padding along the axes between batch and channels."""
    rank = x.ndim - 2
    kernel = paper_kernel(sigma, k, rank)
    half = (k - 1) // 2
    padded = np.pad(x.astype("float64"), [(0, 0)] + [(half, half)] * rank + [(0, 0)])
    out = np.zeros(x.shape, "float64")
    for offset in np.ndindex(*kernel.shape):
        window = tuple(slice(o, o + n) for o, n in zip(offset, x.shape[1:-1]))
        out += kernel[offset] * padded[(slice(None),) + window + (slice(None),)]
    return out


def schedule_by_hand(sigma0, factor, every, epochs):
    values, sigma = [], sigma0
    for epoch in range(epochs):
        if epoch > 0 and epoch % every == 0:
            sigma *= factor
        values.append(sigma)
    return values


def tiny_convnet(input_shape=(8, 8, 2), classes=3):
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.ReLU(name="relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, layers.Dense(classes, name="head")(x), name="tiny")


def tiny_resnet(input_shape=(8, 8, 3)):
    """Stem, one identity block and one downsampling block with a 1x1 projection shortcut."""
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.ReLU(name="stem_relu")(layers.BatchNormalization(name="stem_bn")(x))
    for name, filters, stride in (("b1", 8, 1), ("b2", 16, 2)):
        y = layers.Conv2D(
            filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1"
        )(x)
        y = layers.ReLU(name=f"{name}_relu1")(layers.BatchNormalization(name=f"{name}_bn1")(y))
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
        y = layers.BatchNormalization(name=f"{name}_bn2")(y)
        shortcut = x
        if stride != 1:
            shortcut = layers.Conv2D(
                filters, 1, strides=stride, use_bias=False, name=f"{name}_shortcut_conv"
            )(x)
        x = layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, layers.Dense(3, name="head")(x), name="tiny_resnet")


def tiny_data(n=8, shape=(8, 8, 2), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n,) + shape).astype("float32"), rng.integers(0, classes, n)


def compiled(model, **kwargs):
    model.compile(
        optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy", **kwargs
    )
    return model


def np_weights(model):
    return {id(v): ops.convert_to_numpy(v).copy() for v in model.weights}


class Probe(keras.callbacks.Callback):
    """Records, per epoch, the sigma weight at epoch end and the train function in use."""

    def __init__(self, layer):
        super().__init__()
        self.layer, self.sigmas, self.functions = layer, [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.functions.append(self.model.train_function)

    def on_epoch_end(self, epoch, logs=None):
        # On JAX the weight is written back from the train step's state at epoch end, so this
        # is the value the step actually used.
        self.sigmas.append(float(ops.convert_to_numpy(self.layer.sigma_variable)))


# ---------------------------------------------------------------------------------------------
# Kernel and schedule math


def test_kernel_matches_closed_form_at_sigma_1_k_3():
    kernel = ops.convert_to_numpy(gaussian_kernel(1.0, 3))
    # exp(-r^2/2) / Z with Z = (1 + 2 e^-0.5)^2, by hand: 0.2042 centre, 0.1238 edge, 0.0751 corner
    np.testing.assert_allclose(kernel[1, 1], 0.2042, atol=5e-5)
    np.testing.assert_allclose(kernel[[0, 1, 1, 2], [1, 0, 2, 1]], 0.1238, atol=5e-5)
    np.testing.assert_allclose(kernel[[0, 0, 2, 2], [0, 2, 0, 2]], 0.0751, atol=5e-5)


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("k", [1, 3, 5, 7])
@pytest.mark.parametrize("sigma", [0.0, 0.1, 0.5, 1.0, 2.5])
def test_kernel_matches_paper_formula(sigma, k, rank):
    kernel = ops.convert_to_numpy(gaussian_kernel(sigma, k, rank))
    assert kernel.shape == (k,) * rank
    np.testing.assert_allclose(kernel, paper_kernel(sigma, k, rank), atol=1e-6)


def test_off_centre_mass_and_bypass_threshold():
    for sigma in (0.0, 0.2, 0.3, 1.0):
        for rank in (1, 2):
            expected = 1.0 - paper_kernel(sigma, 3, rank)[(1,) * rank]
            assert off_centre_mass(sigma, 3, rank) == pytest.approx(expected, abs=1e-12)
    assert off_centre_mass(0.3, 3) == pytest.approx(0.0153, abs=1e-4)  # DESIGN: ~1.5 % at 0.3
    threshold = bypass_sigma(3, 2, tolerance=1e-3)
    assert 1.0 - paper_kernel(threshold, 3, 2)[1, 1] == pytest.approx(1e-3, rel=1e-6)
    assert is_identity(threshold, 3, 2, 1e-3) and not is_identity(threshold * 1.001, 3, 2, 1e-3)
    assert bypass_sigma(3, 1, 1e-3) > threshold  # the 1-D kernel is closer to identity
    assert is_identity(0.0, 3, 2, tolerance=0.0)
    assert not is_identity(1e-3, 3, 2, tolerance=None)


def test_sigma_schedule_matches_paper():
    expected = schedule_by_hand(1.0, 0.9, 5, 40)
    got = [sigma_at_epoch(1.0, e, 0.9, 5) for e in range(40)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[:6] == [1.0] * 5 + [0.9]
    assert sigma_at_epoch(0.8, 7, 0.5, 2) == pytest.approx(0.8 * 0.5**3)


def test_bypass_epoch_is_first_epoch_below_threshold():
    threshold = bypass_sigma(3, 2)
    epoch = bypass_epoch(1.0, 0.9, 5)
    assert epoch == 70  # 0.9**13 = 0.254 > 0.2455 >= 0.9**14 = 0.229
    assert sigma_at_epoch(1.0, epoch - 1, 0.9, 5) > threshold >= sigma_at_epoch(1.0, epoch, 0.9, 5)
    assert bypass_epoch(0.1, 0.9, 5) == 0
    assert bypass_epoch(1.0, 1.0, 5) == math.inf
    assert bypass_epoch(1.0, 0.9, 5, tolerance=None) == math.inf


# ---------------------------------------------------------------------------------------------
# The layer


@pytest.mark.parametrize(
    "shape,kwargs",
    [
        ((2, 6, 5, 3), {}),
        ((2, 7, 4), {"sigma": 0.8, "kernel_size": 5}),
        ((2, 6, 6, 2), {"sigma": 0.0, "bypass_tolerance": None, "smooth_at_inference": False}),
    ],
)
def test_layer_passes_common_layer_checks(shape, kwargs, tmp_path):
    check_layer(
        GaussianSmoothing(**kwargs),
        shape,
        tmp_path=tmp_path,
        num_trainable_weights=0,
        num_non_trainable_weights=1,
    )


@pytest.mark.parametrize(
    "name, value, others",
    [
        ("sigma", 0.6, {}),
        ("kernel_size", 5, {}),
        ("smooth_at_inference", False, {}),
        ("bypass_tolerance", None, {"sigma": 0.2}),  # the default 1e-3 bypasses sigma 0.2 (k = 3)
        ("data_format", "channels_first", {}),
    ],
)
def test_layer_rebuilt_from_its_config_smooths_the_same(name, value, others):
    x = np.random.default_rng(0).normal(size=(2, 3, 7, 6)).astype("float32")
    layer = GaussianSmoothing(**others, **{name: value})
    without = GaussianSmoothing(**others)  # the same layer with `name` at its default
    differs = False
    for training in (False, True):
        want = ops.convert_to_numpy(layer(x, training=training))
        for copy in rebuilt(layer):
            np.testing.assert_allclose(
                ops.convert_to_numpy(copy(x, training=training)), want, atol=1e-6
            )
        differs |= not np.allclose(ops.convert_to_numpy(without(x, training=training)), want)
    assert differs, f"`{name}` makes no difference on this input: the check would miss it"


@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("sigma", [0.6, 1.0, 2.0])
def test_2d_output_matches_numpy_convolution(k, sigma):
    x = np.random.default_rng(k).normal(size=(2, 9, 7, 3)).astype("float32")
    y = ops.convert_to_numpy(GaussianSmoothing(sigma, k)(x))
    assert y.shape == x.shape
    np.testing.assert_allclose(y, numpy_smooth(x, sigma, k), atol=2e-5)


@pytest.mark.parametrize("k", [3, 5, 7])
def test_1d_output_matches_numpy_convolution_along_steps(k):
    x = np.random.default_rng(k).normal(size=(2, 11, 4)).astype("float32")
    y = ops.convert_to_numpy(GaussianSmoothing(0.8, k)(x))
    assert y.shape == x.shape
    np.testing.assert_allclose(y, numpy_smooth(x, 0.8, k), atol=2e-5)


@pytest.mark.parametrize("k", [3, 5, 7])
def test_padding_is_zero_same_padding(k):
    x = np.ones((1, 9, 9, 1), "float32")
    y = ops.convert_to_numpy(GaussianSmoothing(1.0, k)(x))[0, :, :, 0]
    kernel, half = paper_kernel(1.0, k, 2), k // 2
    # Zero padding: the corner output sums only the in-bounds quarter of the kernel; the centre
    # of a 9x9 map sees the whole kernel (sum 1).
    assert y[0, 0] == pytest.approx(kernel[half:, half:].sum(), abs=1e-6)
    assert y[4, 4] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(y, y[::-1, ::-1], atol=1e-6)  # symmetric: no off-by-one shift


@needs_keras(
    "3.15",
    "TensorFlow's CPU depthwise convolution has no channels_first, which "
    "Keras transposes around from 3.15 on",
    backends=("tensorflow",),
)
def test_channels_first_matches_channels_last():
    x = np.random.default_rng(0).normal(size=(2, 6, 5, 3)).astype("float32")
    last = ops.convert_to_numpy(GaussianSmoothing(1.0, 5, data_format="channels_last")(x))
    first = GaussianSmoothing(1.0, 5, data_format="channels_first")(np.moveaxis(x, -1, 1))
    np.testing.assert_allclose(np.moveaxis(ops.convert_to_numpy(first), 1, -1), last, atol=1e-5)


def test_sigma_zero_is_exact_identity_even_when_convolving():
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 2)).astype("float32")
    layer = GaussianSmoothing(0.0, bypass_tolerance=None)
    assert not layer.passes_through
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)), x)


def test_bypass_passes_input_through_within_tolerance():
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype("float32")
    sigma = 0.24  # off-centre mass 7.7e-4 < 1e-3
    bypassed = GaussianSmoothing(sigma)
    convolved = GaussianSmoothing(sigma, bypass_tolerance=None)
    out = ops.convert_to_numpy(bypassed(x))
    assert bypassed.passes_through
    np.testing.assert_array_equal(out, x)
    smoothed = ops.convert_to_numpy(convolved(x))
    difference = np.abs(smoothed - x).max()
    # The bound the tolerance is defined by: |smooth(x) - x| <= 2 * mass * max|x|.
    assert 0 < difference <= 2 * off_centre_mass(sigma, 3) * np.abs(x).max()


def test_inference_smoothing_can_be_turned_off():
    x = np.random.default_rng(0).normal(size=(1, 6, 6, 2)).astype("float32")
    default, train_only = GaussianSmoothing(1.0), GaussianSmoothing(1.0, smooth_at_inference=False)
    reference = numpy_smooth(x, 1.0, 3)
    np.testing.assert_allclose(
        ops.convert_to_numpy(default(x, training=False)), reference, atol=2e-5
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(train_only(x, training=False)), x)
    np.testing.assert_allclose(
        ops.convert_to_numpy(train_only(x, training=True)), reference, atol=2e-5
    )


def test_set_sigma_changes_the_kernel_and_reports_switches():
    x = np.random.default_rng(0).normal(size=(1, 6, 6, 2)).astype("float32")
    layer = GaussianSmoothing(1.0)
    layer(x)
    assert layer.set_sigma(0.5) is False
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x)), numpy_smooth(x, 0.5, 3), atol=2e-5)
    assert layer.set_sigma(0.1) is True and layer.passes_through
    assert layer.set_sigma(0.7) is True and not layer.passes_through
    assert layer.current_sigma == 0.7 and layer.sigma == 1.0


@pytest.mark.parametrize(
    "policy,compute", [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")]
)
def test_mixed_precision_computes_in_compute_dtype(policy, compute):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = compiled(add_smoothing(tiny_convnet()))
        layer = smoothing_layers(model)[0]
        assert layer.compute_dtype == compute and layer.sigma_variable.dtype == "float32"
        x, y = tiny_data()
        conv, features = keras.Model(model.input, [layer.input, layer.output])(x)
        assert keras.backend.standardize_dtype(features.dtype) == compute
        reference = numpy_smooth(ops.convert_to_numpy(ops.cast(conv, "float32")), 1.0, 3)
        np.testing.assert_allclose(
            ops.convert_to_numpy(ops.cast(features, "float32")),
            reference,
            atol=0.02 * np.abs(reference).max(),
        )
        history = model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[SigmaDecay(0.5, 1)])
        assert np.all(np.isfinite(history.history["loss"]))
    finally:
        keras.config.set_dtype_policy(previous)


# ---------------------------------------------------------------------------------------------
# add_smoothing


def test_add_smoothing_on_residual_network_counts_placement_and_sharing():
    model = tiny_resnet()
    smoothed = add_smoothing(model)
    inserted = smoothing_layers(smoothed)
    three_by_three = [
        l for l in model.layers if isinstance(l, layers.Conv2D) and l.kernel_size == (3, 3)
    ]
    assert len(three_by_three) == 5
    assert sorted(l.name for l in inserted) == sorted(f"{c.name}_smoothing" for c in three_by_three)
    for layer in inserted:  # conv -> smoothing -> BN
        conv = smoothed.get_layer(layer.name[: -len("_smoothing")])
        assert layer.input._keras_history.operation is conv
        assert isinstance(layer._outbound_nodes[0].operation, layers.BatchNormalization)
    # The original layers (and so their variables) are in the new model, plus one sigma each.
    assert {id(v) for v in model.weights} <= {id(v) for v in smoothed.weights}
    assert len(smoothed.weights) == len(model.weights) + len(inserted)
    assert all(smoothed.get_layer(l.name) is l for l in model.layers[1:])


def test_add_smoothing_shares_weights_in_training_and_equals_original_at_sigma_0():
    model = tiny_resnet()
    x, y = tiny_data(shape=(8, 8, 3))
    np.testing.assert_array_equal(
        ops.convert_to_numpy(add_smoothing(model, sigma=0.0)(x)), ops.convert_to_numpy(model(x))
    )
    smoothed = compiled(add_smoothing(model, sigma=1.0))
    assert not np.allclose(ops.convert_to_numpy(smoothed(x)), ops.convert_to_numpy(model(x)))
    before = ops.convert_to_numpy(model.get_layer("stem_conv").kernel).copy()
    smoothed.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert not np.allclose(ops.convert_to_numpy(model.get_layer("stem_conv").kernel), before)


def test_add_smoothing_exclusions_and_pointwise():
    model = tiny_resnet()
    assert len(smoothing_layers(add_smoothing(model, skip_pointwise=False))) == 6
    assert len(smoothing_layers(add_smoothing(model, exclude="b2_*"))) == 3
    assert len(smoothing_layers(add_smoothing(model, exclude=["stem*", "*conv2"]))) == 2
    only_stem = add_smoothing(model, exclude=lambda layer: layer.name != "stem_conv")
    assert [l.name for l in smoothing_layers(only_stem)] == ["stem_conv_smoothing"]


def test_add_smoothing_passes_layer_arguments():
    model = tiny_resnet()
    inserted = smoothing_layers(
        add_smoothing(
            model, sigma=0.8, kernel_size=5, smooth_at_inference=False, bypass_tolerance=None
        )
    )
    assert {
        (l.sigma, l.kernel_size, l.smooth_at_inference, l.bypass_tolerance) for l in inserted
    } == {(0.8, 5, False, None)}


def test_add_smoothing_on_sequence_model_smooths_along_time():
    inputs = keras.Input((12, 4))
    x = layers.Conv1D(6, 3, padding="same", name="conv1d")(inputs)
    model = keras.Model(inputs, layers.Conv1D(2, 1, name="pointwise")(x))
    smoothed = add_smoothing(model, sigma=1.0)
    assert [l.name for l in smoothing_layers(smoothed)] == ["conv1d_smoothing"]
    x = np.random.default_rng(0).normal(size=(2, 12, 4)).astype("float32")
    conv = ops.convert_to_numpy(model.get_layer("conv1d")(x))
    pointwise = model.get_layer("pointwise")
    np.testing.assert_allclose(
        ops.convert_to_numpy(smoothed(x)),
        ops.convert_to_numpy(pointwise(numpy_smooth(conv, 1.0, 3))),
        atol=1e-4,
    )


def _small_keras_hub_backbone():
    import keras_hub

    # The smallest ResNetBackbone keras-hub accepts (its first stage must have 64 filters).
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16],
        stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
        image_shape=(16, 16, 3),
    )


def test_add_smoothing_on_nested_keras_hub_backbone(tmp_path):
    backbone = _small_keras_hub_backbone()
    convs = [l for l in backbone.layers if isinstance(l, layers.Conv2D)]
    spatial = [l for l in convs if l.kernel_size != (1, 1)]
    assert len(spatial) == 5 and len(convs) == 6
    inputs = keras.Input((16, 16, 3))
    features = layers.GlobalAveragePooling2D()(backbone(inputs))
    classifier = keras.Model(inputs, layers.Dense(3)(features))

    with pytest.raises(ValueError, match="5 convolutions to smooth all sit inside nested models"):
        add_smoothing(classifier)
    smoothed = add_smoothing(classifier, recursive=True)
    assert sorted(l.name for l in smoothing_layers(smoothed)) == sorted(
        f"{c.name}_smoothing" for c in spatial
    )
    assert {id(v) for v in classifier.weights} <= {id(v) for v in smoothed.weights}

    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a top-level backbone has nothing nested: no warning
        direct = add_smoothing(backbone, sigma=0.0)
    assert len(smoothing_layers(direct)) == 5
    np.testing.assert_allclose(
        ops.convert_to_numpy(direct(x)), ops.convert_to_numpy(backbone(x)), atol=1e-6
    )
    # The rewritten model is a plain Functional model that saves and reloads.
    for layer in smoothing_layers(smoothed):
        layer.set_sigma(0.6)
    path = str(tmp_path / "hub.keras")
    smoothed.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        ops.convert_to_numpy(reloaded(x)), ops.convert_to_numpy(smoothed(x)), atol=1e-5
    )
    assert [l.current_sigma for l in smoothing_layers(reloaded)] == [pytest.approx(0.6)] * 5


def test_saved_model_keeps_current_sigma_and_bypass(tmp_path):
    model = add_smoothing(tiny_convnet())
    layer = smoothing_layers(model)[0]
    layer.set_sigma(0.05)
    path = str(tmp_path / "bypassed.keras")
    model.save(path)
    reloaded_layer = smoothing_layers(keras.saving.load_model(path))[0]
    assert reloaded_layer.sigma == 1.0  # the config keeps sigma_0, the weight the current value
    assert reloaded_layer.current_sigma == pytest.approx(0.05)
    assert reloaded_layer.passes_through


# ---------------------------------------------------------------------------------------------
# SigmaDecay


def test_decay_sequence_across_epochs_reaches_the_train_step():
    model = compiled(add_smoothing(tiny_convnet()))
    x, y = tiny_data()
    probe = Probe(smoothing_layers(model)[0])
    history = model.fit(
        x, y, batch_size=4, epochs=7, verbose=0, callbacks=[SigmaDecay(factor=0.5, every=2), probe]
    )
    expected = schedule_by_hand(1.0, 0.5, 2, 7)  # 1, 1, .5, .5, .25, .25, .125
    np.testing.assert_allclose(history.history["cbs_sigma"], expected, rtol=1e-6)
    np.testing.assert_allclose(probe.sigmas, expected, rtol=1e-6)
    # 0.125 is past the bypass point (0.2455), 0.25 is not.
    assert history.history["cbs_active_layers"] == [1] * 6 + [0]


def test_decay_resumes_exactly_after_backup_and_restore(tmp_path):
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 3:
                raise RuntimeError("interrupted")

    x, y = tiny_data()
    backup = str(tmp_path / "backup")
    model = compiled(add_smoothing(tiny_convnet()))
    sigmas = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: sigmas.append((epoch, logs["cbs_sigma"]))
    )
    callbacks = [SigmaDecay(0.9, 2), record, keras.callbacks.BackupAndRestore(backup)]
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(x, y, batch_size=4, epochs=7, verbose=0, callbacks=callbacks + [Interrupt()])
    # A new process would rebuild the model and the callbacks: do the same here.
    model = compiled(add_smoothing(tiny_convnet()))
    callbacks = [SigmaDecay(0.9, 2), record, keras.callbacks.BackupAndRestore(backup)]
    model.fit(x, y, batch_size=4, epochs=7, verbose=0, callbacks=callbacks)
    expected = schedule_by_hand(1.0, 0.9, 2, 7)
    assert [epoch for epoch, _ in sigmas] == [0, 1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose([s for _, s in sigmas], expected, rtol=1e-6)
    assert smoothing_layers(model)[0].current_sigma == pytest.approx(expected[-1])


def test_bypass_retraces_once_and_removes_smoothing_from_the_step(monkeypatch):
    calls = []
    original = GaussianSmoothing.smooth
    monkeypatch.setattr(
        GaussianSmoothing,
        "smooth",
        lambda self, inputs: calls.append(epoch_now[0]) or original(self, inputs),
    )
    epoch_now = [None]
    base = tiny_convnet()
    model = compiled(add_smoothing(base))
    x, y = tiny_data()
    probe = Probe(smoothing_layers(model)[0])
    tracker = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: epoch_now.__setitem__(0, epoch)
    )
    calls.clear()  # building the Functional graph called it symbolically
    model.fit(
        x, y, batch_size=4, epochs=6, verbose=0, callbacks=[SigmaDecay(0.5, 1), probe, tracker]
    )
    # sigma = 1, .5, .25, .125 (bypassed from epoch 3 on): the train function is rebuilt once,
    # and the convolution is neither traced nor run after that.
    assert [f is probe.functions[0] for f in probe.functions] == [True] * 3 + [False] * 3
    assert probe.functions[3] is probe.functions[5]
    in_epochs = [epoch for epoch in calls if epoch is not None]  # None: symbolic build in fit
    assert in_epochs and max(in_epochs) < 3
    # With smoothing bypassed the model computes exactly what the original (weight-sharing) does.
    np.testing.assert_array_equal(model.predict(x, verbose=0), base.predict(x, verbose=0))


def test_logs_reach_loggers(tmp_path):
    # CSVLogger, like TensorBoard placed after SigmaDecay, writes the epoch logs it receives.
    model = compiled(add_smoothing(tiny_convnet()))
    x, y = tiny_data()
    path = tmp_path / "log.csv"
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=4,
        verbose=0,
        callbacks=[SigmaDecay(0.5, 1), keras.callbacks.CSVLogger(str(path))],
    )
    rows = [line.split(",") for line in path.read_text().split()]
    sigma, active = rows[0].index("cbs_sigma"), rows[0].index("cbs_active_layers")
    assert [float(row[sigma]) for row in rows[1:]] == [1.0, 0.5, 0.25, 0.125]
    assert [int(row[active]) for row in rows[1:]] == [1, 1, 1, 0]


@pytest.mark.parametrize(
    "every, sigmas, identity_from",
    [
        # Staircase: 1, 1, 0.5, 0.5, ...: sigma halves every 2 epochs. Kernel 3, rank 2 is the
        # identity below sigma 0.2455 (see above): epochs 4-5 (0.25) still smooth, 6 (0.125) not.
        (2, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.0625, 0.0625], 6),
        # A fifth of the 10-epoch fit: the same halving every 2 epochs, on the paper's smooth curve
        # 0.5 ** (e / 2), applied each epoch: 0.5 ** 2.5 = 0.177 < 0.2455 first at epoch 5.
        (0.2, [0.5 ** (e / 2) for e in range(10)], 5),
    ],
)
def test_plot_draws_sigma_per_epoch_and_marks_the_bypass(
    every, sigmas, identity_from, tmp_path, saved_plots
):
    decay = SigmaDecay(factor=0.5, every=every)
    decay.plot(str(tmp_path / "method.png"), epochs=10)
    kc.plot(decay, str(tmp_path / "kc_plot.png"), epochs=10)
    assert len(saved_plots) == 2
    for plot in saved_plots:
        assert plot.title == "CBS: sigma x 0.5 every 2 epochs"
        assert (plot.xlabel, plot.ylabel) == ("epoch", "sigma")
        (curve,) = plot.curves
        assert curve.label == f"sigma (identity from epoch {identity_from})"
        assert_curve(curve, range(10), sigmas)
    # A layer built with sigma 2 and a 5-tap 1-D kernel: 2 * 0.5^(e // 2), never the identity
    # within 4 epochs (bypass_sigma(5, 1) = 0.256).
    SigmaDecay(factor=0.5, every=2).plot(
        str(tmp_path / "other.png"), epochs=4, initial_sigma=2.0, kernel_size=5, rank=1
    )
    (curve,) = saved_plots[-1].curves
    assert curve.label == "sigma"
    assert_curve(curve, range(4), [2.0, 2.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "every, want",
    [
        (3, [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2]),
        # A quarter of the 8-epoch fit: halving every 2 epochs on the smooth curve 0.8 * 0.5^(e/2).
        (0.25, [0.8 * 0.5 ** (e / 2) for e in range(8)]),
    ],
)
def test_decay_rebuilt_from_its_config_sets_the_same_sigmas(every, want):
    model = add_smoothing(tiny_convnet(), sigma=0.8)
    (layer,) = smoothing_layers(model)
    decay = SigmaDecay(factor=0.5, every=every)
    for callback in [decay] + rebuilt(decay):
        callback.set_model(model)
        callback.set_params({"epochs": 8})
        callback.on_train_begin()
        sigmas = []
        for epoch in range(8):
            callback.on_epoch_begin(epoch)
            sigmas.append(layer.current_sigma)
        np.testing.assert_allclose(sigmas, want, rtol=1e-6)


def test_factor_one_keeps_sigma():
    decay = SigmaDecay(factor=1, every=3)
    model = compiled(add_smoothing(tiny_convnet(), sigma=0.7))
    x, y = tiny_data()
    history = model.fit(x, y, batch_size=4, epochs=4, verbose=0, callbacks=[decay])
    assert history.history["cbs_sigma"] == [pytest.approx(0.7)] * 4


# ---------------------------------------------------------------------------------------------
# Compilation, distribution, composition


@pytest.mark.no_torch  # torch's jit_compile is torch.compile: minutes on CPU for no extra check
def test_jit_compile_with_decay_and_bypass():
    model = compiled(add_smoothing(tiny_convnet()), jit_compile=True)
    reference = compiled(add_smoothing(tiny_convnet()), jit_compile=False)
    reference.set_weights(model.get_weights())
    x, y = tiny_data()
    histories = [
        m.fit(
            x, y, batch_size=4, epochs=4, shuffle=False, verbose=0, callbacks=[SigmaDecay(0.5, 1)]
        ).history
        for m in (model, reference)
    ]
    assert histories[0]["cbs_active_layers"] == [1, 1, 1, 0]
    assert_same_recorded(histories[0]["loss"], histories[1]["loss"], rtol=1e-4)


def test_composes_with_lerac_in_one_fit():
    model = compiled(add_smoothing(tiny_convnet()))
    x, y = tiny_data()
    head = model.get_layer("head").kernel
    kernels = []
    watch = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: kernels.append(ops.convert_to_numpy(head).copy()),
        on_train_end=lambda logs: kernels.append(ops.convert_to_numpy(head).copy()),
    )
    history = model.fit(
        x,
        y,
        batch_size=4,
        epochs=3,
        verbose=0,
        callbacks=[SigmaDecay(0.1, 1), LeRaC(duration=3, min_learning_rate=1e-9), watch],
    )
    assert history.history["cbs_active_layers"] == [1, 0, 0]
    assert "lerac_lr_last" in history.history
    # The bypass retrace at epoch 1 kept LeRaC's per-layer rates: the head (deepest group, rate
    # 0.05 * (1e-9/0.05)**(2/3) ~ 3.7e-7 in epoch 1) barely moves.
    step = np.abs(kernels[2] - kernels[1]).max()
    assert step < 1e-5 and history.history["lerac_lr_last"][1] < 1e-6


_MIRRORED_SCRIPT = r"""
import numpy as np, keras
import test_cbs as t
from keras_curriculum.cbs import SigmaDecay, add_smoothing, smoothing_layers
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = t.compiled(add_smoothing(t.tiny_convnet()))
x, y = t.tiny_data()
probe = t.Probe(smoothing_layers(model)[0])
history = model.fit(x, y, batch_size=4, epochs=5, verbose=0, callbacks=[SigmaDecay(0.5, 1), probe])
np.testing.assert_allclose(probe.sigmas, [1, .5, .25, .125, .0625], rtol=1e-6)
assert history.history["cbs_active_layers"] == [1, 1, 1, 0, 0], history.history
assert np.all(np.isfinite(history.history["loss"]))
print("replicas", strategy.num_replicas_in_sync, "OK")
"""


@pytest.mark.no_torch
@only_in_tensorflow_pass
def test_mirrored_strategy_decays_and_bypasses():
    run_two_replica_check(_MIRRORED_SCRIPT)
