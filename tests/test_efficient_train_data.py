"""EfficientTrain's data side: the presets' augmentation switch, `apply`'s shuffle, and the
composition with DoCL (`et.apply(docl.apply(...))`), whose order ET must never change."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_curriculum_recipes.models import small_cnn

import keras_curriculum as kc
from keras_curriculum.efficient_train import PAPER_MAGNITUDES
from keras_curriculum.efficient_train import paper_stages
from keras_curriculum.efficient_train import plus_stages

N, SIZE = 24, 16
TABLE = [(2, 8, None), (1, 12, None), (2, None, None)]  # 8, 8, 12, 16, 16 px on 16 px images
HEIGHTS = [8, 8, 12, 16, 16]


def indexed_images(n=N, size=SIZE):
    """Images whose channel 0 is the constant i: a low-frequency crop keeps it (it keeps
    the mean of a constant exactly), so every batch says which examples it holds."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    x[..., 0] = np.arange(n, dtype="float32")[:, None, None]
    return x


def examples_of(images):
    return np.rint(np.asarray(images)[..., 0].mean(axis=(1, 2))).astype(int).tolist()


def epoch_order(et, train, epoch):
    """The examples of `train` in the order an iterator started in `epoch` yields them, and the
    height of each batch (the callback's `on_epoch_begin` is what `fit` calls)."""
    et.on_epoch_begin(epoch)
    order, heights = [], []
    for images, _ in train:
        order += examples_of(images)
        heights.append(int(images.shape[1]))
    return order, heights


# ---------------------------------------------------------------------------------------------
# The presets' augmentation


def test_presets_take_their_magnitudes_or_none():
    assert [s.magnitude for s in paper_stages(10, 28)] == list(PAPER_MAGNITUDES)
    assert [s.magnitude for s in paper_stages(10, 28, magnitudes=None)] == [None] * 5
    custom = paper_stages(10, 28, magnitudes=[0, 1, None, 2, 2])
    assert [s.magnitude for s in custom] == [0, 1, None, 2, 2]
    # The sizes and lengths do not depend on the augmentation.
    assert [s[:2] for s in custom] == [s[:2] for s in paper_stages(10, 28)]
    et = kc.EfficientTrain.paper(epochs=10, image_size=28, magnitudes=None)
    assert [s.magnitude for s in et.stages] == [None] * 5
    plus = kc.EfficientTrain.plus(budget_epochs=20, image_size=32, magnitudes=None)
    assert [s.magnitude for s in plus.stages] == [None] * 10
    assert [s.magnitude for s in plus_stages(20, 32)] == list(range(10))


@pytest.mark.parametrize(
    "magnitudes, error",
    [([1, 2], ValueError), ([1, 2, 3, 4, 11], ValueError), ("strong", TypeError), (5, TypeError)],
)
def test_bad_magnitudes_raise_naming_them(magnitudes, error):
    with pytest.raises(error, match="`magnitudes`"):
        kc.EfficientTrain.paper(epochs=5, image_size=28, magnitudes=magnitudes)


def test_paper_without_magnitudes_only_crops():
    x = indexed_images()
    et = kc.EfficientTrain.paper(epochs=5, image_size=SIZE, magnitudes=None)
    train = et.apply(
        tf.data.Dataset.from_tensor_slices((x, np.zeros(N))), batch_size=N, shuffle=False
    )
    et.on_epoch_begin(0)
    images = next(iter(train))[0].numpy()
    size = et.stage_at(0).size
    np.testing.assert_allclose(images, kc.low_frequency_crop(x, size), rtol=1e-5, atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Shuffle


def unbatched(x=None):
    x = indexed_images() if x is None else x
    return tf.data.Dataset.from_tensor_slices((x, np.arange(len(x)) % 3))


def test_apply_shuffles_before_batching_a_new_order_each_epoch():
    et = kc.EfficientTrain(TABLE, seed=7)
    train = et.apply(unbatched(), batch_size=8)
    orders = {}
    for epoch in range(5):
        orders[epoch], heights = epoch_order(et, train, epoch)
        assert sorted(orders[epoch]) == list(range(N))  # every example once per epoch
        assert heights == [HEIGHTS[epoch]] * 3  # the shuffle keeps the epoch's stage
    assert len({tuple(order) for order in orders.values()}) == 5
    assert orders[0] != list(range(N))
    # Seeded by the epoch: the same epoch gives the same order (a resumed run), and so does a
    # new object with the same seed.
    assert epoch_order(et, train, 2)[0] == orders[2]
    again = kc.EfficientTrain(TABLE, seed=7)
    assert epoch_order(again, again.apply(unbatched(), batch_size=8), 3)[0] == orders[3]


def test_shuffled_labels_stay_with_their_images():
    et = kc.EfficientTrain(TABLE, seed=1)
    x = indexed_images()
    train = et.apply(tf.data.Dataset.from_tensor_slices((x, np.arange(N))), batch_size=8)
    et.on_epoch_begin(4)
    for images, labels in train:
        assert examples_of(images) == labels.numpy().tolist()


def test_shuffle_false_and_batched_datasets_keep_their_order():
    et = kc.EfficientTrain(TABLE)
    kept = et.apply(unbatched(), batch_size=8, shuffle=False)
    assert epoch_order(et, kept, 1)[0] == list(range(N))
    batched = kc.EfficientTrain(TABLE)
    train = batched.apply(unbatched().batch(8))
    assert epoch_order(batched, train, 1)[0] == list(range(N))


def test_shuffle_buffer_size_is_accepted():
    et = kc.EfficientTrain(TABLE, seed=0)
    order, _ = epoch_order(et, et.apply(unbatched(), batch_size=8, shuffle=4), 0)
    assert sorted(order) == list(range(N)) and order != list(range(N))
    # A buffer of 4 moves an example at most 3 places earlier than its position.
    assert all(position >= example - 3 for position, example in enumerate(order))


@pytest.mark.parametrize(
    "shuffle, error, match",
    [
        (1, ValueError, "`shuffle` must be an integer >= 2"),
        ("yes", TypeError, "`shuffle`"),
    ],
)
def test_bad_shuffle_raises(shuffle, error, match):
    with pytest.raises(error, match=match):
        kc.EfficientTrain(TABLE).apply(unbatched(), batch_size=8, shuffle=shuffle)


def test_explicit_shuffle_of_a_batched_dataset_is_refused():
    with pytest.raises(ValueError, match="shuffled before batching"):
        kc.EfficientTrain(TABLE).apply(unbatched().batch(8), shuffle=True)


# ---------------------------------------------------------------------------------------------
# With DoCL


def docl_model():
    model = small_cnn((None, None, 3), num_classes=3, width=4)
    return model


class BatchRecorder(keras.callbacks.Callback):
    """Per epoch: the examples DoCL drew (its order, read at `on_epoch_begin` after DoCL's)."""

    def __init__(self, docl):
        super().__init__()
        self.docl, self.drawn = docl, {}

        self.training = False  # JAX and PyTorch read a batch to build the metrics before

    def on_train_begin(self, logs=None):
        self.training = True

    def on_epoch_begin(self, epoch, logs=None):
        self.drawn[epoch] = self.docl._order.current_order().tolist()


def test_efficient_train_over_docl_crops_each_stage_and_keeps_docl_sampling():
    x, y = indexed_images(), np.arange(N) % 3
    docl = kc.DoCL(
        warmup_epochs=1,
        episode_epochs=1,
        initial_fraction=0.5,
        fraction_decay=0.5,
        min_fraction=0.25,
        seed=3,
    )
    et = kc.EfficientTrain(TABLE, seed=0)
    seen = []  # (examples, height) of every batch the train step receives, in order
    recorder = BatchRecorder(docl)

    def record(images, labels):
        if recorder.training:
            seen.append((examples_of(images.numpy()), int(images.shape[1])))
        return labels

    def tap(images, labels):
        labels = tf.py_function(record, [images, labels], labels.dtype)
        return images, tf.ensure_shape(labels, [None])

    train = et.apply(docl.apply((x, y), batch_size=8)).map(tap)  # map after ET: allowed
    model = docl_model()
    model.compile(
        keras.optimizers.SGD(0.05),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[docl.metric()],
    )
    history = model.fit(train, epochs=et.epochs, verbose=0, callbacks=[docl, et, recorder])
    assert history.history["et_height"] == HEIGHTS
    sizes = [record["size"] for record in docl.history]
    # Warm-up, sample, refresh, sample (shrunk), refresh: k = 0.5 n, then 0.25 n.
    assert sizes == [24, 12, 24, 6, 24]
    position = 0
    for epoch, size in enumerate(sizes):
        batches = seen[position : position + -(-size // 8)]
        position += len(batches)
        # Exactly DoCL's draw, in DoCL's order, at the epoch's EfficientTrain size.
        assert sum((examples for examples, _ in batches), []) == recorder.drawn[epoch]
        assert {height for _, height in batches} == {HEIGHTS[epoch]}
    assert position == len(seen)
    assert np.isfinite(docl.scores).all()


def test_docl_batches_are_neither_shuffled_nor_rebatched():
    x, y = indexed_images(), np.arange(N) % 3
    docl = kc.DoCL(seed=0)
    batches = docl.apply((x, y), batch_size=8)
    with pytest.raises(ValueError, match="DoCL's batches"):
        kc.EfficientTrain(TABLE).apply(batches, shuffle=True)
    with pytest.raises(ValueError, match="`saturate` must be None or 'auto' on DoCL's"):
        kc.EfficientTrain(TABLE, saturate="scaled").apply(batches)
    et = kc.EfficientTrain(TABLE, saturate="auto")
    et.apply(batches)
    assert "DoCL's batches are kept" in et._source


@pytest.mark.parametrize("order", ["docl_over_et", "changed_docl_batches"])
def test_other_compositions_with_docl_fail_before_the_first_step(order):
    x, y = indexed_images(), np.arange(N) % 3
    docl = kc.DoCL(warmup_epochs=1, episode_epochs=1, seed=0)
    et = kc.EfficientTrain(TABLE)
    if order == "docl_over_et":
        train = docl.apply(
            et.apply(unbatched(x), batch_size=8, shuffle=False).unbatch(), batch_size=8
        )
    else:
        train = et.apply(docl.apply((x, y), batch_size=8).map(lambda a, b: (a, b)))
    model = docl_model()
    model.compile(
        keras.optimizers.SGD(0.05),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[docl.metric()],
    )
    with pytest.raises(ValueError, match=r"et\.apply\(docl\.apply\(data, batch_size=\.\.\.\)\)"):
        model.fit(train, epochs=et.epochs, verbose=0, callbacks=[docl, et])
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations.value)) == 0
