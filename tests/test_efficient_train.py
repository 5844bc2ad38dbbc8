"""EfficientTrain: the FFT crop against numpy, the published tables, and the stage in force
in every epoch of a real `fit` (per-epoch iterators, `steps_per_epoch` + repeat, resume)."""

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers
from keras import ops
from keras_curriculum_recipes.models import small_cnn
from keras_versions import needs_keras

import keras_curriculum as kc
from keras_curriculum._keras_internals import TFDataEqualization
from keras_curriculum.efficient_train import EfficientTrain
from keras_curriculum.efficient_train import compute_clock_epochs
from keras_curriculum.efficient_train import compute_fraction
from keras_curriculum.efficient_train import paper_stages
from keras_curriculum.efficient_train import plot_efficient_train
from keras_curriculum.efficient_train import plus_stages
from keras_curriculum.efficient_train import stage_of_epoch
from keras_curriculum.efficient_train.frequency_crop import LowFrequencyCrop
from keras_curriculum.efficient_train.frequency_crop import low_frequency_crop

from checks import assert_curve
from checks import rebuilt
from layer_checks import check_layer

# ---------------------------------------------------------------------------------------------
# Independent references


def numpy_crop(x, bh, bw):
    """Centre crop of the fftshift-ed spectrum (float64), back to a bh x bw image, mean kept."""
    h, w = x.shape[-3], x.shape[-2]
    spectrum = np.fft.fftshift(np.fft.fft2(x.astype("float64"), axes=(-3, -2)), axes=(-3, -2))
    top, left = h // 2 - bh // 2, w // 2 - bw // 2
    band = spectrum[..., top : top + bh, left : left + bw, :]
    y = np.fft.ifft2(np.fft.ifftshift(band, axes=(-3, -2)), axes=(-3, -2)).real
    return y * (bh * bw) / (h * w)


def official_et_stage(epoch, epochs):
    """ET_training.py: stage i runs until --end_epoch int(epochs / 5 * (i + 1))."""
    for i in range(5):
        if epoch < int(epochs / 5 * (i + 1)):
            return i
    raise AssertionError("epoch beyond the run")


def images(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


# ---------------------------------------------------------------------------------------------
# The crop


CROP_CASES = [
    ((2, 16, 16, 3), (8, 8)),  # even -> even
    ((2, 16, 16, 3), (9, 9)),  # even -> odd
    ((15, 17, 2), (7, 10)),  # odd image, unbatched, non-square crop
    ((2, 16, 12, 1), (9, 5)),  # non-square image
    ((1, 9, 9, 3), (1, 1)),  # DC only: the channel mean
]


@pytest.mark.parametrize("shape, size", CROP_CASES)
def test_crop_matches_numpy_fft_reference(shape, size):
    x = images(shape)
    y = ops.convert_to_numpy(low_frequency_crop(x, size))
    assert y.shape == shape[:-3] + size + shape[-1:]
    np.testing.assert_allclose(y, numpy_crop(x, *size), atol=2e-3)


@pytest.mark.parametrize("shape, size", CROP_CASES)
def test_crop_inside_tf_data_matches_numpy_fft_reference(shape, size):
    x = images(shape)
    ds = tf.data.Dataset.from_tensors(x).map(lambda t: low_frequency_crop(t, size))
    np.testing.assert_allclose(next(iter(ds)).numpy(), numpy_crop(x, *size), atol=2e-3)


def test_crop_preserves_channel_means():
    x = images((3, 20, 14, 3), seed=1)
    y = ops.convert_to_numpy(low_frequency_crop(x, (11, 6)))
    np.testing.assert_allclose(y.mean(axis=(1, 2)), x.mean(axis=(1, 2)), rtol=1e-5)


def test_crop_is_identity_at_full_size():
    x = images((2, 10, 7, 3))
    np.testing.assert_array_equal(ops.convert_to_numpy(low_frequency_crop(x, (10, 7))), x)


def test_crop_keeps_float16_and_makes_integers_float32():
    x = images((1, 8, 8, 3))
    half = low_frequency_crop(x.astype("float16"), 4)
    assert keras.backend.standardize_dtype(half.dtype) == "float16"
    np.testing.assert_allclose(ops.convert_to_numpy(half), numpy_crop(x, 4, 4), atol=0.5)
    ints = low_frequency_crop(x.astype("uint8"), 4)
    assert keras.backend.standardize_dtype(ints.dtype) == "float32"


def test_crop_channels_first_equals_channels_last():
    x = images((2, 12, 12, 3))
    first = low_frequency_crop(np.moveaxis(x, -1, 1), (5, 8), data_format="channels_first")
    np.testing.assert_allclose(
        np.moveaxis(ops.convert_to_numpy(first), 1, -1), numpy_crop(x, 5, 8), atol=2e-3
    )


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_low_frequency_crop_layer(data_format, tmp_path):
    # check_layer also rebuilds the layer from its config: the copies must crop the same axes.
    first = data_format == "channels_first"
    shape, out_shape = ((2, 3, 12, 10), (2, 3, 7, 6)) if first else ((2, 12, 10, 3), (2, 7, 6, 3))
    out = check_layer(
        LowFrequencyCrop((7, 6), data_format=data_format),
        shape,
        tmp_path=tmp_path,
        expected_output_shape=out_shape,
    )
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    if first:
        out, x = np.moveaxis(out, 1, -1), np.moveaxis(x, 1, -1)
    np.testing.assert_allclose(out, numpy_crop(x, 7, 6), atol=1e-4)


def test_low_frequency_crop_layer_runs_in_compiled_predict():
    x = images((4, 16, 16, 3))
    model = keras.Sequential([keras.Input((16, 16, 3)), LowFrequencyCrop(10)])
    y = model.predict(x, batch_size=2, verbose=0)
    np.testing.assert_allclose(y, numpy_crop(x, 10, 10), atol=2e-3)


def test_tf_data_equalization_equals_keras_equalization_in_tf_data():
    x = images((2, 8, 8, 3))
    ds = tf.data.Dataset.from_tensors(x)
    ours = next(iter(ds.map(TFDataEqualization(bins=32)))).numpy()
    np.testing.assert_array_equal(ours, next(iter(ds.map(layers.Equalization(bins=32)))).numpy())


# ---------------------------------------------------------------------------------------------
# Schedules


@pytest.mark.parametrize("epochs", [300, 100, 12, 7, 5, 3])
def test_paper_table_stage_per_epoch_matches_official_launcher(epochs):
    with warnings.catch_warnings():  # 3 epochs: stages of 0 epochs are dropped, with a warning
        warnings.simplefilter("ignore")
        stages = paper_stages(epochs, image_size=224)
    official = [official_et_stage(e, epochs) for e in range(epochs)]
    sizes, magnitudes = [160, 160, 160, 192, 224], [1, 3, 5, 7, 9]
    per_epoch = [stages[i] for i in stage_of_epoch(stages)]
    assert [s.size for s in per_epoch] == [(sizes[i], sizes[i]) for i in official]
    assert [s.magnitude for s in per_epoch] == [magnitudes[i] for i in official]
    assert len(stages) == len(set(official))


def test_paper_sizes_scale_with_image_size():
    assert [s.size for s in paper_stages(10, 32)] == [(23, 23)] * 3 + [(27, 27), (32, 32)]
    assert paper_stages(10, (64, 48))[0].size == (46, 34)


def test_paper_compute_fraction_is_the_1_53x_bound():
    expected = (3 * (160 / 224) ** 2 + (192 / 224) ** 2 + 1) / 5
    assert compute_fraction(paper_stages(300), 224) == pytest.approx(expected)
    assert 1 / expected == pytest.approx(1.531, abs=1e-3)


@pytest.mark.parametrize("budget", [200, 30, 3.5])
def test_plus_compute_clock_gives_each_stage_a_tenth_of_the_budget(budget):
    sizes = [96] * 2 + [160] * 4 + [224] * 4
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stages = plus_stages(budget, image_size=224)
    exact = [budget / 10 * (224 / b) ** 2 for b in sizes]  # the launcher's rp_epoch / 10
    ends = [math.floor(x + 0.5) for x in np.cumsum(exact)]
    lengths = np.diff([0] + ends).tolist()
    kept = [i for i, n in enumerate(lengths) if n > 0]  # 3.5: stages 2, 6, 7, 9 round to 0
    assert [s.size[0] for s in stages] == [sizes[i] for i in kept]
    assert [s.magnitude for s in stages] == kept
    assert [s.epochs for s in stages] == [lengths[i] for i in kept]
    assert len(caught) == int(len(kept) < 10)
    spent = [n * (b / 224) ** 2 for n, b in zip(lengths, sizes)]
    assert max(abs(c - budget / 10) for c in spent) <= 5.5 * (96 / 224) ** 2 + 1e-9
    if budget == 200:
        assert [s.epochs for s in stages][:2] == [109, 109]
        assert sum(s.epochs for s in stages) == 455


def test_plus_factory_resizes_and_covers_the_table():
    et = EfficientTrain.plus(budget_epochs=20, image_size=32)
    assert et.downsample == "resize"
    assert et.epochs == sum(compute_clock_epochs(20, [s.size for s in et.stages], 32))
    assert EfficientTrain.from_schedule("paper", 10, 32).epochs == 10


# ---------------------------------------------------------------------------------------------
# The stage in a real fit


class SizeProbe(layers.Layer):
    """Outputs the input height for every sample, so a metric reports what the step received."""

    def call(self, x):
        return ops.ones_like(x[:, 0, 0, :1]) * ops.cast(ops.shape(x)[1], "float32")


def probe_model():
    inputs = keras.Input((None, None, 3))
    features = layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3, padding="same")(inputs))
    outputs = layers.Concatenate()([layers.Dense(3)(features), SizeProbe()(inputs)])
    model = keras.Model(inputs, outputs)

    def loss(y, p):
        return keras.losses.sparse_categorical_crossentropy(y, p[:, :3], from_logits=True)

    def height(y, p):
        return p[:, 3]

    model.compile(keras.optimizers.SGD(0.01), loss=loss, metrics=[height])
    return model


class HeightsPerEpoch(keras.callbacks.Callback):
    """Recovers each batch's height from the running mean the metric reports."""

    def __init__(self, stop_after=None):
        super().__init__()
        self.heights, self.stop_after = {}, stop_after

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.previous, self.heights[epoch] = epoch, 0.0, []

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["height"])
        self.heights[self.epoch].append(round((batch + 1) * mean - batch * self.previous, 2))
        self.previous = mean

    def on_epoch_end(self, epoch, logs=None):
        if self.stop_after is not None and epoch == self.stop_after:
            raise RuntimeError("simulated interruption")


TABLE = [(2, 8, None), (1, 12, None), (2, None, None)]  # heights 8, 8, 12, 16, 16 on 16 px
EXPECTED = {0: 8, 1: 8, 2: 12, 3: 16, 4: 16}
X, Y = images((24, 16, 16, 3)), np.random.default_rng(0).integers(0, 3, 24)


@pytest.mark.parametrize(
    "mode, fit_kwargs, batches",
    [
        ("unbatched", {}, 3),
        ("batched", {}, 3),
        ("repeat", dict(steps_per_epoch=2), 2),  # one iterator for the whole run
        ("finite_longer_than_epoch", dict(steps_per_epoch=4), None),  # 6 batches, 4 per epoch
    ],
)
def test_stage_in_force_in_every_batch_matches_the_table(mode, fit_kwargs, batches):
    et = EfficientTrain(TABLE)
    source = tf.data.Dataset.from_tensor_slices((X, Y))
    if mode == "unbatched":
        train = et.apply(source, batch_size=8)
    elif mode == "batched":
        train = et.apply(source.batch(8))
    elif mode == "repeat":
        train = et.apply(source.batch(8).repeat())
    else:
        train = et.apply(source.batch(4))
    probe = HeightsPerEpoch()
    history = probe_model().fit(
        train, epochs=et.epochs, callbacks=[et, probe], verbose=0, **fit_kwargs
    )
    assert sorted(probe.heights) == list(EXPECTED)
    for epoch, heights in probe.heights.items():
        assert heights and set(heights) == {EXPECTED[epoch]}, (epoch, heights)
        if batches is not None:
            assert len(heights) == batches
    assert history.history["et_height"] == [EXPECTED[e] for e in range(5)]
    assert history.history["et_stage"] == [0, 0, 1, 2, 2]


def test_stage_after_backup_and_restore_resume(tmp_path):
    train_source = tf.data.Dataset.from_tensor_slices((X, Y)).batch(8).repeat()
    backup = str(tmp_path / "backup")
    model = probe_model()
    first = EfficientTrain(TABLE)
    with pytest.raises(RuntimeError, match="simulated"):
        model.fit(
            first.apply(train_source),
            epochs=5,
            steps_per_epoch=2,
            verbose=0,
            callbacks=[
                keras.callbacks.BackupAndRestore(backup),
                first,
                HeightsPerEpoch(stop_after=1),
            ],
        )
    # A new process would rebuild everything: fresh curriculum object, fresh pipeline.
    second, probe = EfficientTrain(TABLE), HeightsPerEpoch()
    model.fit(
        second.apply(train_source),
        epochs=5,
        steps_per_epoch=2,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(backup), second, probe],
    )
    assert sorted(probe.heights) == [2, 3, 4]
    for epoch, heights in probe.heights.items():
        assert heights == [EXPECTED[epoch]] * 2


def test_images_pass_through_outside_fit_and_follow_on_epoch_begin():
    et = EfficientTrain([(1, 8, 1), (1, None, 2)], augmenter=lambda m: layers.Rescaling(1 + m))
    train = et.apply(tf.data.Dataset.from_tensor_slices((X[:4], Y[:4])).batch(4))
    outside = next(iter(train))[0].numpy()
    np.testing.assert_array_equal(outside, X[:4])
    et.on_epoch_begin(0)
    first = next(iter(train))[0].numpy()
    np.testing.assert_allclose(first, numpy_crop(2 * X[:4], 8, 8), rtol=1e-4, atol=1e-2)
    et.on_epoch_begin(1)
    np.testing.assert_allclose(next(iter(train))[0].numpy(), 3 * X[:4], rtol=1e-6)


def test_default_augmentation_is_rand_augment_at_magnitude_over_ten():
    et = EfficientTrain([(1, None, 7)], value_range=(0, 1), num_ops=3, seed=3)
    layer = et.augmentation(7)
    assert isinstance(layer, layers.RandAugment)
    assert layer.factor == (0, pytest.approx(0.7))
    assert (layer.num_ops, tuple(layer.value_range)) == (3, (0, 1))
    train = et.apply(tf.data.Dataset.from_tensor_slices((X[:4] / 255, Y[:4])).batch(4))
    et.on_epoch_begin(0)
    augmented = next(iter(train))[0].numpy()
    assert augmented.shape == (4, 16, 16, 3) and not np.allclose(augmented, X[:4] / 255)


@pytest.mark.parametrize("factory", ["paper", "plus"])
def test_fit_runs_every_stage_of_a_variable_size_model(factory):
    if factory == "paper":
        et = EfficientTrain.paper(
            epochs=5, image_size=16, augmenter=lambda m: layers.Rescaling(1.0)
        )
    else:
        et = EfficientTrain.plus(
            budget_epochs=1,
            image_size=16,
            sizes=[8] * 5 + [16] * 5,
            augmenter=lambda m: layers.Rescaling(1.0),
        )
    model = small_cnn((None, None, 3), num_classes=3, width=4)
    model.compile("adam", "sparse_categorical_crossentropy")
    source = tf.data.Dataset.from_tensor_slices((X, Y))
    history = model.fit(
        et.apply(source, batch_size=12),
        epochs=et.epochs,
        verbose=0,
        validation_data=source.batch(12),
        callbacks=[et],
    )
    expected = [et.stage_at(e).size[0] for e in range(et.epochs)]
    assert history.history["et_height"] == expected and len(set(expected)) > 1
    assert len(history.history["val_loss"]) == et.epochs
    assert np.all(np.isfinite(history.history["loss"]))


@keras.saving.register_keras_serializable(package="keras_curriculum_tests")
def brighten(magnitude):
    """A serializable augmenter: images times (1 + magnitude)."""
    return layers.Rescaling(1.0 + magnitude)


def _batch_per_epoch(et, dataset):
    train = et.apply(dataset)
    batches = []
    for epoch in range(et.epochs):
        et.on_epoch_begin(epoch)
        batches.append(next(iter(train))[0].numpy())
    return batches


def test_rebuilt_from_its_config_with_an_augmenter_gives_the_same_batches():
    dataset = tf.data.Dataset.from_tensor_slices((X[:4], Y[:4])).batch(4)
    et = EfficientTrain(
        [(1, 8, 1), (1, 12, 4), (1, None, None)],
        image_size=16,
        downsample="resize",
        augmenter=brighten,
        saturate=None,
        seed=2,
    )
    want = _batch_per_epoch(et, dataset)
    # By hand: the augmenter scales by 1 + m before the (Lanczos, antialiased) resize; the
    # full-size stage is as is.
    for got, factor, size in [(want[0], 2, 8), (want[1], 5, 12)]:
        resized = tf.image.resize(factor * X[:4], (size, size), "lanczos3", antialias=True)
        np.testing.assert_allclose(got, resized.numpy(), rtol=1e-4, atol=1e-2)
    np.testing.assert_array_equal(want[2], X[:4])
    for copy in rebuilt(et):
        assert [copy.stage_at(e) for e in range(3)] == [et.stage_at(e) for e in range(3)]
        for got, expected in zip(_batch_per_epoch(copy, dataset), want):
            np.testing.assert_array_equal(got, expected)


@needs_keras(
    "3.15",
    "Keras 3.10's RandAugment orders its operations with Python's unseeded random.shuffle, so "
    "no seed reproduces its draws (3.15, the newest tested, draws them from its seed)",
)
def test_rebuilt_from_its_config_draws_the_same_rand_augment():
    dataset = tf.data.Dataset.from_tensor_slices((X[:4] / 255, Y[:4])).batch(4)
    et = EfficientTrain([(1, None, 7)], value_range=(0, 1), num_ops=3, seed=3)
    (want,) = _batch_per_epoch(et, dataset)
    assert not np.allclose(want, X[:4] / 255)
    for copy in rebuilt(et):
        (got,) = _batch_per_epoch(copy, dataset)
        np.testing.assert_array_equal(got, want)
    other = EfficientTrain([(1, None, 7)], value_range=(0, 1), num_ops=3, seed=4)
    assert not np.allclose(_batch_per_epoch(other, dataset)[0], want)  # the seed is carried


def test_schedule_plot_draws_resolution_augmentation_and_compute(tmp_path, saved_plots):
    et = EfficientTrain([(2, 4, 2), (1, 6, 5), (1, None, None)], image_size=8)
    paths = [str(tmp_path / f"{name}.png") for name in ("function", "method", "kc_plot")]
    assert plot_efficient_train(et, paths[0]) == paths[0]
    assert et.plot(paths[1]) == paths[1]
    assert kc.plot(et, paths[2]) == paths[2]
    assert [plot.path for plot in saved_plots] == paths
    # Compute per epoch (B / 8)^2: 0.25, 0.25, 0.5625, 1; over the 4 epochs 2.0625 / 4.
    for plot in saved_plots:
        assert plot.title == "EfficientTrain schedule (4 epochs, compute 0.516x)"
        epochs = range(4)
        assert_curve(plot.curve("resolution B / H"), epochs, [0.5, 0.5, 0.75, 1.0])
        assert_curve(plot.curve("RandAugment factor m / 10"), epochs, [0.2, 0.2, 0.5, np.nan])
        assert_curve(plot.curve("compute per epoch (B / H)^2"), epochs, [0.25, 0.25, 0.5625, 1])
