"""CBS on the models a Keras user writes: Sequential models, nested and subclassed parts, masks."""

import warnings

import keras
import numpy as np
import pytest
from keras import layers
from keras import ops
from test_cbs import numpy_smooth

import keras_curriculum as kc

from layer_checks import check_layer

# The warning Keras gives when a layer drops the mask it received.
_DROPS_MASK = ".*does not support masking"


def numpy_masked_smooth(x, mask, sigma, k):
    """Masked positions enter the convolution as zeros and keep their own values."""
    keep = mask[..., None]
    return np.where(keep, numpy_smooth(np.where(keep, x, 0.0), sigma, k), x)


def names(model):
    return [layer.name for layer in model.layers]


def sequential_cnn():
    return keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            layers.Conv2D(4, 3, padding="same", name="conv"),
            layers.BatchNormalization(name="bn"),
            layers.Conv2D(4, 1, name="pointwise"),
            layers.Conv2D(4, 3, padding="same", activation="relu", name="last_conv"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(3, name="head"),
        ],
        name="seq",
    )


def conv_block(name):
    """A small Functional model with one 3x3 convolution, to nest in other models."""
    inputs = keras.Input((8, 8, 2))
    return keras.Model(
        inputs, layers.Conv2D(2, 3, padding="same", name=f"{name}_conv")(inputs), name=name
    )


class ConvCell(keras.layers.Layer):
    """A subclassed layer holding a convolution: its `call` is Python code."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(2, 3, padding="same", name="cell_conv")

    def call(self, x):
        return self.conv(x)


class ConvNet(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(2, 3, padding="same", name="subclassed_conv")

    def call(self, x):
        return self.conv(x)


def tiny_images(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8, 8, 2)).astype("float32"), rng.integers(0, 3, n)


# ---------------------------------------------------------------------------------------------
# Sequential models


def test_sequential_gives_sequential_with_smoothing_after_each_eligible_convolution():
    model = sequential_cnn()
    smoothed = kc.add_smoothing(model)
    assert type(smoothed) is keras.Sequential and smoothed.name == "seq"
    assert names(smoothed) == [
        "conv",
        "conv_smoothing",
        "bn",
        "pointwise",
        "last_conv",
        "last_conv_smoothing",
        "gap",
        "head",
    ]
    # The original layers, and so their weights, plus one sigma per smoothing layer.
    assert all(smoothed.get_layer(layer.name) is layer for layer in model.layers)
    assert {id(v) for v in model.weights} <= {id(v) for v in smoothed.weights}
    assert len(smoothed.weights) == len(model.weights) + 2
    # Built at once on the same input.
    assert smoothed.built and smoothed.input_shape == model.input_shape == (None, 8, 8, 2)
    assert names(kc.add_smoothing(model, exclude="last*", skip_pointwise=False)) == [
        "conv",
        "conv_smoothing",
        "bn",
        "pointwise",
        "pointwise_smoothing",
        "last_conv",
        "gap",
        "head",
    ]


def test_sequential_output_matches_numpy_smoothing_after_the_convolution():
    model = keras.Sequential(
        [
            keras.Input((12, 4)),
            layers.Conv1D(6, 3, padding="same", name="conv1d"),
            layers.Conv1D(2, 1, name="pointwise"),
        ]
    )
    smoothed = kc.add_smoothing(model, sigma=0.8)
    x = np.random.default_rng(0).normal(size=(2, 12, 4)).astype("float32")
    conv = ops.convert_to_numpy(model.get_layer("conv1d")(x))
    expected = model.get_layer("pointwise")(numpy_smooth(conv, 0.8, 3).astype("float32"))
    np.testing.assert_allclose(
        ops.convert_to_numpy(smoothed(x)), ops.convert_to_numpy(expected), atol=1e-4
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(kc.add_smoothing(model, sigma=0.0)(x)),
        ops.convert_to_numpy(model(x)),
        atol=1e-6,
    )


def test_compiled_sequential_comes_back_compiled_and_trains_the_shared_weights_with_decay():
    model = sequential_cnn()
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    smoothed = kc.add_smoothing(model)
    assert smoothed.compiled
    assert smoothed.get_compile_config() == model.get_compile_config()
    x, y = tiny_images()
    before = ops.convert_to_numpy(model.get_layer("conv").kernel).copy()
    history = smoothed.fit(
        x, y, batch_size=4, epochs=2, verbose=0, callbacks=[kc.SigmaDecay(factor=0.5, every=1)]
    )
    assert history.history["cbs_sigma"] == [1.0, 0.5]
    assert not np.allclose(ops.convert_to_numpy(model.get_layer("conv").kernel), before)
    assert not kc.add_smoothing(sequential_cnn()).compiled


def test_unbuilt_sequential_stays_unbuilt_and_copies_format_and_dtype_policy():
    model = keras.Sequential(
        [
            layers.Conv2D(
                3,
                3,
                padding="same",
                data_format="channels_first",
                dtype="mixed_bfloat16",
                name="first",
            ),
            layers.Conv2D(3, 3, padding="same", name="second"),
        ]
    )
    smoothed = kc.add_smoothing(model)
    assert not smoothed.built
    first, second = smoothed.layers[1], smoothed.layers[3]
    assert (first.name, first.data_format, first.dtype_policy.name) == (
        "first_smoothing",
        "channels_first",
        "mixed_bfloat16",
    )
    assert (second.name, second.data_format) == ("second_smoothing", "channels_last")

    plain = keras.Sequential([layers.Conv1D(3, 3, padding="same", name="c"), layers.Dense(2)])
    smoothed = kc.add_smoothing(plain)
    x = np.random.default_rng(0).normal(size=(2, 9, 4)).astype("float32")
    assert tuple(smoothed(x).shape) == (2, 9, 2) and smoothed.built
    conv = ops.convert_to_numpy(plain.get_layer("c")(x))
    np.testing.assert_allclose(
        ops.convert_to_numpy(smoothed(x)),
        ops.convert_to_numpy(plain.layers[1](numpy_smooth(conv, 1.0, 3).astype("float32"))),
        atol=1e-4,
    )


def test_convolution_used_twice_gets_one_shared_smoothing_layer():
    conv = layers.Conv1D(3, 3, padding="same", name="twice")
    smoothed = kc.add_smoothing(keras.Sequential([keras.Input((6, 3)), conv, conv]))
    assert names(smoothed) == ["twice", "twice_smoothing", "twice", "twice_smoothing"]
    assert smoothed.layers[1] is smoothed.layers[3]
    assert len(kc.smoothing_layers(smoothed)) == 1


def test_smoothed_sequential_saves_and_reloads(tmp_path):
    smoothed = kc.add_smoothing(sequential_cnn())
    kc.smoothing_layers(smoothed)[0].set_sigma(0.6)
    path = str(tmp_path / "seq.keras")
    smoothed.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is keras.Sequential and names(reloaded) == names(smoothed)
    x, _ = tiny_images(4)
    np.testing.assert_allclose(
        ops.convert_to_numpy(reloaded(x)), ops.convert_to_numpy(smoothed(x)), atol=1e-5
    )


# ---------------------------------------------------------------------------------------------
# Nested and subclassed parts


def test_nested_models_are_rewritten_only_with_recursive():
    block = keras.Sequential(
        [keras.Input((8, 8, 2)), layers.Conv2D(2, 3, padding="same", name="seq_conv")], name="blk"
    )
    inputs = keras.Input((8, 8, 2))
    x = layers.Conv2D(2, 3, padding="same", name="top_conv")(inputs)
    functional = keras.Model(inputs, conv_block("inner")(block(x)))
    with pytest.warns(UserWarning, match="2 convolutions inside nested models.*recursive=True"):
        flat = kc.add_smoothing(functional)
    assert [l.name for l in kc.smoothing_layers(flat)] == ["top_conv_smoothing"]
    deep = kc.add_smoothing(functional, recursive=True)
    assert sorted(l.name for l in kc.smoothing_layers(deep)) == [
        "inner_conv_smoothing",
        "seq_conv_smoothing",
        "top_conv_smoothing",
    ]
    assert names(deep.get_layer("blk")) == ["seq_conv", "seq_conv_smoothing"]
    assert {id(v) for v in functional.weights} <= {id(v) for v in deep.weights}

    sequential = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            layers.Conv2D(2, 3, padding="same", name="top"),
            conv_block("nested"),
        ]
    )
    with pytest.warns(UserWarning, match="1 convolutions inside nested models"):
        assert names(kc.add_smoothing(sequential)) == ["top", "top_smoothing", "nested"]
    deep = kc.add_smoothing(sequential, recursive=True)
    assert names(deep) == ["top", "top_smoothing", "nested"]
    assert [l.name for l in kc.smoothing_layers(deep.layers[2])] == ["nested_conv_smoothing"]
    assert sorted(l.name for l in kc.smoothing_layers(deep)) == [
        "nested_conv_smoothing",
        "top_smoothing",
    ]
    x, _ = tiny_images(2)
    np.testing.assert_allclose(
        ops.convert_to_numpy(kc.add_smoothing(sequential, sigma=0.0, recursive=True)(x)),
        ops.convert_to_numpy(sequential(x)),
        atol=1e-6,
    )


def test_subclassed_model_is_refused_with_the_reason():
    with pytest.raises(
        ValueError,
        match="`model` must be a Functional or Sequential.*subclassed"
        ".*Received: model of type ConvNet",
    ):
        kc.add_smoothing(ConvNet())


def test_convolutions_inside_subclassed_parts_are_named_never_silently_left():
    inputs = keras.Input((8, 8, 2))
    x = layers.Conv2D(2, 3, padding="same", name="top_conv")(inputs)
    model = keras.Model(inputs, ConvNet(name="net")(ConvCell(name="cell")(x)))
    with pytest.warns(UserWarning, match="2 convolutions inside subclassed models or layers"):
        assert len(kc.smoothing_layers(kc.add_smoothing(model))) == 1
    with pytest.raises(ValueError, match="recursive=True.*subclassed.*cell_conv"):
        kc.add_smoothing(model, recursive=True)
    excluded = kc.add_smoothing(model, recursive=True, exclude=["cell_conv", "subclassed_conv"])
    assert [l.name for l in kc.smoothing_layers(excluded)] == ["top_conv_smoothing"]


# ---------------------------------------------------------------------------------------------
# A model with no convolution add_smoothing would smooth


def test_convolutions_only_in_nested_models_are_refused_with_the_recursive_hint():
    inputs = keras.Input((8, 8, 2))
    classifier = keras.Model(inputs, layers.Dense(3)(layers.Flatten()(conv_block("bb")(inputs))))
    with pytest.raises(
        ValueError, match="`model` must have a convolution.*nested models.*recursive=True"
    ):
        kc.add_smoothing(classifier)
    assert [l.name for l in kc.smoothing_layers(kc.add_smoothing(classifier, recursive=True))] == [
        "bb_conv_smoothing"
    ]
    sequential = keras.Sequential([keras.Input((8, 8, 2)), conv_block("bb2"), layers.Flatten()])
    with pytest.raises(ValueError, match="recursive=True"):
        kc.add_smoothing(sequential)


def test_everything_excluded_is_refused():
    with pytest.raises(ValueError, match="`model` must have a convolution.*`exclude`"):
        kc.add_smoothing(sequential_cnn(), exclude=["conv", "last_conv"])
    inputs = keras.Input((8, 8, 2))
    pointwise_only = keras.Model(inputs, layers.Conv2D(2, 1)(inputs))
    with pytest.raises(ValueError, match="`skip_pointwise`"):
        kc.add_smoothing(pointwise_only)


# ---------------------------------------------------------------------------------------------
# Masks


def test_layer_supports_masking_and_passes_the_mask_on():
    layer = kc.GaussianSmoothing()
    mask = np.array([[True, True, False]])
    assert layer.supports_masking
    assert layer.compute_mask(np.zeros((1, 3, 2), "float32"), mask) is mask


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("side", ["post", "pre"])
def test_padded_sequence_equals_unpadded_at_real_positions(k, side):
    rng = np.random.default_rng(k)
    lengths, steps = [7, 4, 2], 7
    sequences = [rng.normal(size=(n, 3)).astype("float32") for n in lengths]
    # The padding holds large values: they must contribute nothing.
    padded = rng.normal(10.0, 5.0, size=(len(lengths), steps, 3)).astype("float32")
    mask = np.zeros((len(lengths), steps), bool)
    for i, sequence in enumerate(sequences):
        where = slice(0, len(sequence)) if side == "post" else slice(steps - len(sequence), steps)
        padded[i, where], mask[i, where] = sequence, True
    layer = kc.GaussianSmoothing(1.0, k)
    out = ops.convert_to_numpy(layer(padded, mask=mask))
    for i, sequence in enumerate(sequences):
        alone = ops.convert_to_numpy(layer(sequence[None]))[0]
        np.testing.assert_allclose(out[i][mask[i]], alone, atol=1e-5)
        np.testing.assert_allclose(alone, numpy_smooth(sequence[None], 1.0, k)[0], atol=1e-5)
    np.testing.assert_array_equal(out[~mask], padded[~mask])  # masked positions as they came


@pytest.mark.parametrize("shape", [(2, 9, 3), (2, 6, 5, 3)])
def test_masks_with_gaps_treat_masked_positions_as_zeros(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype("float32")
    mask = rng.random(shape[:-1]) > 0.4
    out = ops.convert_to_numpy(kc.GaussianSmoothing(0.9, 3)(x, mask=mask))
    np.testing.assert_allclose(out, numpy_masked_smooth(x, mask, 0.9, 3), atol=2e-5)


def test_masked_channels_first_matches_channels_last():
    rng = np.random.default_rng(1)
    x, mask = rng.normal(size=(2, 9, 3)).astype("float32"), rng.random((2, 9)) > 0.3
    last = ops.convert_to_numpy(kc.GaussianSmoothing(1.0)(x, mask=mask))
    first = kc.GaussianSmoothing(1.0, data_format="channels_first")(
        np.moveaxis(x, -1, 1), mask=mask
    )
    np.testing.assert_allclose(np.moveaxis(ops.convert_to_numpy(first), 1, -1), last, atol=1e-5)


def test_mask_of_the_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match=r"`mask` must have the shape.*\(2, 9\).*Received"):
        kc.GaussianSmoothing()(np.zeros((2, 9, 3), "float32"), mask=np.ones((2, 9, 3), bool))


def token_model(head, sigma=1.0):
    """Embedding(mask_zero) -> GaussianSmoothing -> a head that reads the mask."""
    inputs = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 4, mask_zero=True, name="embedding")(inputs)
    x = kc.GaussianSmoothing(sigma, name="smoothing")(x)
    return keras.Model(inputs, layers.Dense(2, name="out")(head(x)))


def padded_tokens(side="post"):
    """A batch of token sequences padded with 0, and the sequences unpadded."""
    sequences = [[3, 7, 1, 9, 4, 2], [5, 8, 6], [11]]
    steps = max(len(s) for s in sequences) + 2
    padded = np.zeros((len(sequences), steps), "int32")
    for i, sequence in enumerate(sequences):
        if side == "post":
            padded[i, : len(sequence)] = sequence
        else:
            padded[i, steps - len(sequence) :] = sequence
    return padded, [np.array([s], "int32") for s in sequences]


def assert_padding_changes_nothing(model, side="post"):
    padded, sequences = padded_tokens(side)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=_DROPS_MASK)
        out = ops.convert_to_numpy(model(padded))
        for i, sequence in enumerate(sequences):
            np.testing.assert_allclose(out[i], ops.convert_to_numpy(model(sequence))[0], atol=1e-5)


@pytest.mark.parametrize("head", ["lstm", "pooling"])
@pytest.mark.parametrize("side", ["post", "pre"])
def test_embedding_mask_reaches_the_next_layers(head, side):
    make = {
        "lstm": lambda: layers.LSTM(3, name="lstm"),
        "pooling": lambda: layers.GlobalAveragePooling1D(name="pool"),
    }[head]
    assert_padding_changes_nothing(token_model(make()), side)


def test_bypassed_layer_passes_input_and_mask_through():
    model = token_model(layers.GlobalAveragePooling1D(), sigma=1.0)
    layer = model.get_layer("smoothing")
    layer.set_sigma(0.1)
    assert layer.passes_through
    assert_padding_changes_nothing(model)
    padded, _ = padded_tokens()
    embedded = model.get_layer("embedding")(padded)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(layer(embedded)), ops.convert_to_numpy(embedded)
    )


def test_masked_model_trains_with_decay_and_round_trips(tmp_path):
    check_layer(
        kc.GaussianSmoothing(0.8, 5), (2, 7, 4), tmp_path=tmp_path, num_non_trainable_weights=1
    )
    model = token_model(layers.GlobalAveragePooling1D())
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    padded, _ = padded_tokens()
    history = model.fit(
        padded,
        np.array([0, 1, 0]),
        epochs=2,
        verbose=0,
        callbacks=[kc.SigmaDecay(factor=0.5, every=1)],
    )
    assert np.all(np.isfinite(history.history["loss"]))
    path = str(tmp_path / "tokens.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.get_layer("smoothing").current_sigma == pytest.approx(0.5)
    assert_padding_changes_nothing(reloaded)
