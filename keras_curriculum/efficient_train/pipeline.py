"""EfficientTrain's `tf.data` stage: every batch augmented and down-sampled for its epoch.

Functions of the `EfficientTrain` object they serve (its stage table, its epoch and batch-size
variables); `EfficientTrain.apply` calls `build`.
"""

from typing import NamedTuple

import keras
import numpy as np

from keras_curriculum import _keras_internals as internals
from keras_curriculum import processes
from keras_curriculum._tf_data import position_owner
from keras_curriculum._tf_data import zip_with_fixed_cardinality
from keras_curriculum._validation import check_bool
from keras_curriculum._validation import check_int
from keras_curriculum.efficient_train import saturation as batch_saturation
from keras_curriculum.efficient_train.frequency_crop import low_frequency_crop

UNKNOWN_STEPS = 2**62  # an epoch with no known length never ends inside one iterator
SHUFFLE_BUFFER = 10_000  # examples held by `shuffle=True`: the whole of a small dataset
_SEED_STRIDE = 1_000_003  # per-epoch shuffle seeds: seed * stride + epoch

IN_EVALUATION = (
    "EfficientTrain: the dataset from `et.apply` is training data, augmented and down-sampled "
    "for the current stage, and `fit` is evaluating on it (`validation_data`): validation "
    "would run at the stage's resolution. Prepare validation data with "
    "`et.evaluation_data(dataset, batch_size)` (full size, no augmentation)."
)


class Source(NamedTuple):
    """What saturation needs to know of the training data: global batch, examples per pass."""

    batch_size: int
    examples: int
    batches: int
    drop_remainder: bool


def rand_augment(value_range, num_ops, factor, seed):
    layer = keras.layers.RandAugment(
        value_range=value_range, num_ops=num_ops, factor=factor, seed=seed
    )
    layer.equalization = internals.TFDataEqualization(
        value_range=value_range, data_format=layer.data_format
    )
    return layer


def build(et, dataset, batch_size=None, drop_remainder=False, shuffle=None):
    """`EfficientTrain.apply`: see its docstring."""
    import tensorflow as tf

    drop_remainder = check_bool("drop_remainder", drop_remainder)
    batched, (height, width) = check_dataset(et, dataset, batch_size)
    owner = position_owner(dataset)
    buffer = shuffle_buffer(shuffle, batched, owner, int(dataset.cardinality()))
    full = (height, width)
    sizes = [full if s.size is None else s.size for s in et.stages]
    for size in sizes:
        if size[0] > height or size[1] > width:
            raise ValueError(
                f"`stages` sizes must not exceed the image size {full}. "
                f"Received a stage of size {size}"
            )
    et._dataset_size, et._order_owner = full, owner
    et._applied += 1
    if et._epoch is None:
        et._epoch = tf.Variable(-1, dtype=tf.int64, trainable=False)
        et._steps = tf.Variable(UNKNOWN_STEPS, dtype=tf.int64, trainable=False)
        # 1 while `fit` validates: training batches read then would be the stage's.
        et._evaluating = tf.Variable(0, dtype=tf.int64, trainable=False)
    batches = int(dataset.cardinality())
    if batches >= 0 and not batched:
        batches = batch_saturation.epoch_steps(batches, batch_size, drop_remainder)
    et._source = saturation_source(et, dataset, batched, batch_size, drop_remainder, batches, owner)
    saturating = isinstance(et._source, Source)
    et._split_for = processes.process_count()
    if et._split_for > 1 and owner is None and not saturating:
        # Saturated stages' batches are checked when `fit` plans them (batch_plan).
        check_whole_batches(dataset, batched, batch_size, drop_remainder)
    if saturating:
        batches = et._source.batches
        base_batches = [et._source.batch_size] * (len(et.stages) + 1)
        if et._batch_var is None:
            et._batch_var = tf.Variable(base_batches, dtype=tf.int64, trainable=False)
        et._batch_var.assign(base_batches)
    # Branch n (one past the last stage) is "not in fit": full size, no augmentation.
    magnitudes = sorted({s.magnitude for s in et.stages if s.magnitude is not None})
    augmenters = [make_augmenter(et, m) for m in magnitudes]
    augmenters.append(lambda images: tf.cast(images, tf.float32))
    aug_of_stage = [
        len(magnitudes) if s.magnitude is None else magnitudes.index(s.magnitude) for s in et.stages
    ] + [len(magnitudes)]
    distinct = sorted(set(sizes) | {full})
    size_of_stage = [distinct.index(s) for s in sizes] + [distinct.index(full)]
    downsamplers = [make_downsampler(et, s, full) for s in distinct]

    table = tf.constant(et._table, tf.int32)
    aug_of_stage = tf.constant(aug_of_stage, tf.int32)
    size_of_stage = tf.constant(size_of_stage, tf.int32)
    epoch_var, steps_var, outside = et._epoch, et._steps, len(et.stages)
    evaluating = et._evaluating
    batch_var, shuffle_seed = et._batch_var, et._shuffle_seed

    def switch(index, functions, images):
        return tf.switch_case(index, [lambda f=f: f(images) for f in functions])

    def augment(stage, element):
        images = switch(tf.gather(aug_of_stage, stage), augmenters, element[0])
        return (stage, (images,) + tuple(element[1:]))

    def downsample(stage, element):
        images = switch(tf.gather(size_of_stage, stage), downsamplers, element[0])
        return (images,) + tuple(element[1:])

    def one_iterator(_):
        # Read when the iterator pulls its first batch, after `on_epoch_begin` of the epoch
        # it starts in; later batches are placed by their index, not by the variable, so
        # prefetching cannot shift them into the wrong epoch.
        # Refusing clears the flag first: the `fit` this error aborts never reaches the
        # `on_test_end` that would, and the next fit may read a batch before any callback runs
        # (JAX builds an unbuilt model from one).
        evaluated = tf.cond(
            tf.equal(evaluating.read_value(), 0),
            lambda: tf.constant(0, tf.int64),
            lambda: tf.identity(evaluating.assign(0, read_value=True)) + 1,
        )
        check = tf.debugging.Assert(tf.equal(evaluated, 0), [IN_EVALUATION])
        with tf.control_dependencies([check]):
            start, steps = epoch_var.read_value(), steps_var.read_value()

        def stage_of(batch_index):
            epoch = tf.clip_by_value(start + batch_index // steps, 0, len(et._table) - 1)
            return tf.where(start < 0, outside, tf.gather(table, epoch))

        parallel = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        source = dataset
        if buffer is not None:
            # Before `enumerate`, which places each example in its stage, and seeded by the
            # epoch the iterator starts in: a new order every epoch, the same after a resume.
            seed = tf.cast(shuffle_seed, tf.int64) * _SEED_STRIDE + start
            # TensorFlow compares (graph seed, op seed) with `==` and fails on a tensor op
            # seed when the graph seed is 0 (`set_random_seed(0)`); the order is fixed by
            # `seed` alone, so this function's graph drops the inherited graph seed.
            tf.compat.v1.get_default_graph().seed = None
            source = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=False)
        ds = source.enumerate()
        if batched and not saturating:
            ds = ds.map(lambda i, el: augment(stage_of(i), el), **parallel)
            return ds.map(lambda stage, el: downsample(stage, el), **parallel)
        # With saturation an iterator is one epoch (`on_train_begin` checks it): its batch
        # size is its stage's, and fewer, larger batches end the epoch early.
        size = tf.gather(batch_var, stage_of(0)) if saturating else batch_size
        if batched:  # re-batched at the stage's size, each example keeping its stage
            ds = (
                ds.map(lambda i, el: (tf.fill(tf.shape(el[0])[:1], stage_of(i)), el), **parallel)
                .unbatch()
                .batch(size, drop_remainder=drop_remainder)
            )
            ds = ds.map(lambda stage, el: augment(stage[0], el), **parallel)
            return ds.map(lambda stage, el: downsample(stage, el), **parallel)
        ds = ds.map(lambda i, el: augment(stage_of(i // batch_size), el), **parallel)
        ds = ds.batch(size, drop_remainder=drop_remainder)
        return ds.map(lambda stage, el: downsample(stage[0], el), **parallel)

    out = tf.data.Dataset.from_tensors(0).flat_map(one_iterator)
    if saturating or owner is not None:
        # A saturated epoch, or a DoCL subset epoch, ends before the full-size count `fit`
        # expects: report that count (steps, progress bar) and let shorter epochs end early.
        out = zip_with_fixed_cardinality(out, batches)
    elif batches >= 0 or batches == tf.data.INFINITE_CARDINALITY:
        # `flat_map` forgets the length; `fit` needs it for its epoch ends and progress bar.
        out = out.apply(tf.data.experimental.assert_cardinality(batches))
    if owner is None:  # DoCL's batches are already this process's part
        # Cut after augmenting, so each row is augmented as on one process (reproducible
        # across process counts), at the cost of every host preparing the whole global batch.
        out = processes.local_part(out)
    return out.prefetch(tf.data.AUTOTUNE)


def check_whole_batches(dataset, batched, batch_size, drop_remainder):
    """ValueError, on several processes, for a batch that cannot reach every process."""
    if batched:
        batch_size = dataset.element_spec[0].shape[0]
        whole = batch_size is not None
    else:
        examples = int(dataset.cardinality())
        whole = drop_remainder or (examples >= 0 and examples % batch_size == 0)
    if not whole:
        raise ValueError(
            "On several processes each global batch is split across them, and a final partial "
            "batch would reach only some and hang the others: pass `drop_remainder=True` (for "
            "a batched dataset, batch it with `drop_remainder=True`)."
        )
    processes.check_global_batch(batch_size)


def shuffle_buffer(shuffle, batched, owner, examples):
    """The shuffle buffer `apply(shuffle=...)` asks for on this dataset, or None (no shuffle)."""
    if shuffle is None:  # the default: shuffle what is batched here
        if batched:
            return None
        shuffle = True
    if isinstance(shuffle, (bool, np.bool_)):
        if not shuffle:
            return None
        buffer = min(examples, SHUFFLE_BUFFER) if examples > 0 else SHUFFLE_BUFFER
    else:
        buffer = check_int("shuffle", shuffle, 2)
    if owner is not None:
        raise ValueError(
            f"`shuffle` must be None or False for {type(owner).__name__}'s batches: it draws "
            "each epoch's examples and order and identifies them by position. "
            f"Received: shuffle={shuffle!r}"
        )
    if batched:
        raise ValueError(
            "`shuffle` must be None or False for a batched `dataset`: examples are shuffled "
            "before batching. Pass the unbatched dataset with `batch_size=`, or shuffle before "
            f"batching it. Received: shuffle={shuffle!r}"
        )
    return buffer


def evaluation(et, dataset, batch_size=None, drop_remainder=False):
    """`dataset` at full size, without augmentation, batched as `build` batches it."""
    import tensorflow as tf

    drop_remainder = check_bool("drop_remainder", drop_remainder)
    batched, _ = check_dataset(et, dataset, batch_size)
    if processes.process_count() > 1:
        check_whole_batches(dataset, batched, batch_size, drop_remainder)
    if not batched:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    # float32 like the training batches, so the model sees one input dtype.
    as_float = dataset.map(
        lambda images, *rest: (tf.cast(images, tf.float32),) + rest,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return processes.local_part(as_float).prefetch(tf.data.AUTOTUNE)


def saturation_source(et, dataset, batched, batch_size, drop_remainder, batches, owner=None):
    """The source's `Source` counts if saturation can run on it, else the reason why not.

    "auto" takes only what costs nothing to know (an unbatched dataset of known length, or
    batches of static size); "exact" and "scaled" read a dataset of unknown length or batch
    size once to count it.
    """
    import tensorflow as tf

    if et.saturate is None:
        return "saturate=None"
    if owner is not None:
        if et.saturate != "auto":
            raise ValueError(
                f"`saturate` must be None or 'auto' on {type(owner).__name__}'s batches, which "
                "must not be rebatched (DoCL identifies examples by position). "
                f"Received: saturate={et.saturate!r}"
            )
        return f"{type(owner).__name__}'s batches are kept as they are"
    if batches == tf.data.INFINITE_CARDINALITY:
        reason = "the dataset is infinite (`.repeat()`), and an epoch must be one pass"
    else:
        static = dataset.element_spec[0].shape[0] if batched else batch_size
        if batches >= 0 and static is not None:
            examples = batches * static if batched else int(dataset.cardinality())
            return Source(int(static), int(examples), int(batches), drop_remainder)
        reason = (
            "the dataset's length or batch size is unknown: pass the unbatched "
            "dataset with `batch_size=`, or batch with `drop_remainder=True`"
        )
        if et.saturate != "auto":
            return count_source(dataset, batched, batch_size, drop_remainder)
    if et.saturate != "auto":
        raise ValueError(f"`saturate={et.saturate!r}` cannot run: {reason}.")
    return reason


def count_source(dataset, batched, batch_size, drop_remainder):
    import tensorflow as tf

    if not batched:
        examples = int(dataset.reduce(np.int64(0), lambda count, *_: count + 1))
        return Source(
            batch_size,
            examples,
            batch_saturation.epoch_steps(examples, batch_size, drop_remainder),
            drop_remainder,
        )
    sizes = dataset.map(lambda *el: tf.cast(tf.shape(el[0])[0], tf.int64))
    largest, examples, count = sizes.reduce(
        (np.int64(0), np.int64(0), np.int64(0)),
        lambda acc, n: (tf.maximum(acc[0], n), acc[1] + n, acc[2] + 1),
    )
    return Source(int(largest), int(examples), int(count), False)


def check_dataset(et, dataset, batch_size):
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"`dataset` must be a tf.data.Dataset. Received: {type(dataset)}")
    if int(dataset.cardinality()) == 0:
        raise ValueError("`dataset` must hold at least one batch. Received an empty dataset.")
    spec = dataset.element_spec
    if (
        not isinstance(spec, tuple)
        or len(spec) not in (2, 3)
        or not isinstance(spec[0], tf.TensorSpec)
    ):
        raise ValueError(
            "`dataset` must yield (images, labels) or (images, labels, sample_weights) "
            f"with images a dense tensor. Received element_spec: {spec}"
        )
    shape, channels_last = spec[0].shape, keras.config.image_data_format() == "channels_last"
    if shape.rank not in (3, 4) or not (spec[0].dtype.is_floating or spec[0].dtype.is_integer):
        raise ValueError(
            "`dataset` images must be numeric (H, W, C) or (batch, H, W, C) tensors. "
            f"Received: {spec[0]}"
        )
    hw = shape[-3:-1] if channels_last else shape[-2:]
    if None in hw.as_list():
        raise ValueError(
            "`dataset` images must have a fixed height and width (resize them first). "
            f"Received: {spec[0]}"
        )
    full = tuple(hw.as_list())
    if et.image_size is not None and et.image_size != full:
        raise ValueError(f"`dataset` images are {full}, but `image_size`={et.image_size}.")
    batched = shape.rank == 4
    if batched and batch_size is not None:
        raise ValueError(
            "`batch_size` must be None for a batched `dataset`. "
            f"Received: batch_size={batch_size!r}"
        )
    if not batched:
        check_int("batch_size", batch_size, 1)
    return batched, full


def make_augmenter(et, magnitude):
    import tensorflow as tf

    layer = et.augmentation(magnitude)
    # Every branch of the stage switch must give one dtype.
    return lambda images: tf.cast(layer(images), tf.float32)


def make_downsampler(et, size, full):
    import tensorflow as tf

    if size == full:
        return lambda images: tf.cast(images, tf.float32)
    if et.downsample == "fft":
        return lambda images: tf.cast(low_frequency_crop(images, size), tf.float32)
    layer = keras.layers.Resizing(size[0], size[1], interpolation="lanczos3", antialias=True)
    return lambda images: tf.cast(layer(images), tf.float32)
