"""EfficientTrain (Wang et al., ICCV 2023) and EfficientTrain++ (TPAMI 2024) inside one `fit`.

Pure schedule math first (stage tables, the epoch -> stage map, compute fractions), then
`EfficientTrain`: a `tf.data` stage that down-samples and augments every batch as the stage of
its epoch says, and the Keras callback that tells the stage which epoch `fit` is in.
"""

import math
import warnings
from typing import NamedTuple

import keras
import numpy as np

from keras_curriculum import batch_saturation
from keras_curriculum._stage_batching import StageBatching
from keras_curriculum._stage_batching import base_optimizer
from keras_curriculum._stage_batching import user_settings
from keras_curriculum._tf_data import zip_with_fixed_cardinality
from keras_curriculum._validation import check_bool
from keras_curriculum._validation import check_callable
from keras_curriculum._validation import check_choice
from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_number
from keras_curriculum._validation import check_path
from keras_curriculum._validation import check_sequence
from keras_curriculum.frequency_crop import low_frequency_crop
from keras_curriculum.frequency_crop import normalize_size

PAPER_SIZES_224 = (160, 160, 160, 192, 224)
PAPER_MAGNITUDES = (1, 3, 5, 7, 9)
PLUS_SIZES_224 = (96,) * 2 + (160,) * 4 + (224,) * 4
SCHEDULES = ("paper", "plus")
DOWNSAMPLE = ("fft", "resize")
_UNKNOWN_STEPS = 2**62  # an epoch with no known length never ends inside one iterator
_RAN_OUT_WARNING = "Your input ran out of data"


class _Source(NamedTuple):
    """What saturation needs to know of the training data: global batch, examples per pass."""

    batch_size: int
    examples: int
    batches: int
    drop_remainder: bool


class _StageFields(NamedTuple):
    epochs: int
    size: object = None
    magnitude: object = None


class Stage(_StageFields):
    """One row of an EfficientTrain table: `epochs` at `size` with RandAugment `magnitude`.

    `epochs` is an int >= 0; `size` an int, a `(height, width)` pair (kept as given) or None
    (the full image); `magnitude` a RandAugment magnitude on the 0..10 scale, or None for no
    augmentation. The fields are checked here, so a bad row fails where it is written.
    """

    __slots__ = ()

    def __new__(cls, epochs, size=None, magnitude=None):
        check_int("epochs", epochs, 0)
        if size is not None:
            normalize_size(size)
        check_number("magnitude", magnitude, 0.0, 10.0, allow_none=True)
        return super().__new__(cls, epochs, size, magnitude)


def scale_size(size_at_224, image_size):
    """A published size for 224 px inputs scaled to `image_size`: round(B * S / 224) per axis."""
    height, width = normalize_size(image_size, "image_size")
    return (max(1, int(math.floor(size_at_224 * height / 224 + 0.5))),
            max(1, int(math.floor(size_at_224 * width / 224 + 0.5))))


def paper_stages(epochs=300, image_size=224):
    """The EfficientTrain (ICCV 2023) table: 5 stages, B = 160,160,160,192,224, m = 1,3,5,7,9.

    Stage i ends after epoch int(epochs * (i + 1) / 5), as in the official launcher
    (`ET_training.py`, `--end_epoch`); B is scaled to `image_size`.
    """
    check_int("epochs", epochs, 1)
    ends = [epochs * (i + 1) // 5 for i in range(5)]
    lengths = np.diff([0] + ends)
    return [Stage(int(n), scale_size(b, image_size), m)
            for n, b, m in zip(lengths, PAPER_SIZES_224, PAPER_MAGNITUDES)]


def compute_clock_epochs(budget_epochs, sizes, image_size):
    """Epochs of each stage under the EfficientTrain++ compute clock.

    Every one of the n stages spends budget/n of a compute budget counted in full-resolution
    image-epochs: an epoch at B_h x B_w costs (B_h * B_w) / (H * W), so stage i lasts
    (budget / n) * (H * W) / (B_h * B_w) epochs (the official launcher's `rp_epoch / 10`).
    Stage ends are rounded on the cumulative sum, so the table's total is the rounded total.
    """
    height, width = normalize_size(image_size, "image_size")
    check_number("budget_epochs", budget_epochs, low=0.0, low_open=True)
    sizes = [normalize_size(s, "sizes") for s in check_sequence("sizes", sizes)]
    weights = np.array([height * width / (h * w) for h, w in sizes])
    ends = np.floor(budget_epochs / len(sizes) * np.cumsum(weights) + 0.5).astype(int)
    return np.diff(np.concatenate([[0], ends])).astype(int)


def plus_stages(budget_epochs=200, image_size=224, sizes=None):
    """The EfficientTrain++ table: 10 stages, magnitude m = stage index, the compute clock.

    Args:
        budget_epochs: compute budget in full-resolution epochs (the official `--epoch`; 200
            against a 300-epoch baseline is the paper's 1.5x). The table runs longer than this
            in epochs, since low-resolution epochs are cheaper.
        image_size: full input size; the default sizes [96]*2 + [160]*4 + [224]*4 are scaled to
            it.
        sizes: 10 absolute sizes (int or pairs) instead of the default.
    """
    if sizes is None:
        sizes = [scale_size(b, image_size) for b in PLUS_SIZES_224]
    if len(check_sequence("sizes", sizes)) != 10:
        raise ValueError(f"`sizes` must list 10 stage sizes. Received {len(sizes)}: {sizes!r}")
    lengths = compute_clock_epochs(budget_epochs, sizes, image_size)
    return [Stage(int(n), normalize_size(s, "sizes"), m)
            for m, (n, s) in enumerate(zip(lengths, sizes))]


def stage_of_epoch(stages):
    """Index of the stage in force in each epoch: int32 array of length sum(epochs)."""
    return np.repeat(np.arange(len(stages), dtype="int32"), [s.epochs for s in stages])


def stage_compute(stages, image_size):
    """Compute of one epoch of each stage relative to a full-resolution epoch."""
    height, width = normalize_size(image_size, "image_size")
    fractions = []
    for stage in stages:
        h, w = (height, width) if stage.size is None else normalize_size(stage.size)
        fractions.append(h * w / (height * width))
    return np.array(fractions)


def compute_fraction(stages, image_size):
    """Compute of the whole table relative to as many epochs at full resolution."""
    per_epoch = stage_compute(stages, image_size)[stage_of_epoch(stages)]
    return float(per_epoch.mean())


def _normalize_stages(stages):
    if isinstance(stages, str) or not isinstance(stages, (list, tuple)):
        raise TypeError(
            "`stages` must be a non-empty list of (epochs, size, magnitude) rows; for the "
            "published schedules use `EfficientTrain.paper()` or `EfficientTrain.plus()`. "
            f"Received: stages={stages!r}"
        )
    rows = []
    for row in stages:
        if isinstance(row, dict):
            row = Stage(**row)
        elif isinstance(row, (list, tuple)) and 1 <= len(row) <= 3:
            row = Stage(*row)
        else:
            raise TypeError(
                f"Each of `stages` must be (epochs, size, magnitude). Received: {row!r}"
            )
        size = None if row.size is None else normalize_size(row.size)
        rows.append(Stage(int(row.epochs), size, row.magnitude))
    if sum(row.epochs for row in rows) < 1:
        raise ValueError(f"`stages` must cover at least one epoch. Received: stages={stages!r}")
    return rows


def _check_value_range(value_range):
    if not isinstance(value_range, (list, tuple)) or len(value_range) != 2:
        raise TypeError(f"`value_range` must be a (low, high) pair of numbers. "
                        f"Received: value_range={value_range!r}")
    low, high = (check_number("value_range", v) for v in value_range)
    if not low < high:
        raise ValueError(f"`value_range` must be (low, high) with low < high. "
                         f"Received: value_range={value_range!r}")
    return tuple(value_range)


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


def _rand_augment(value_range, num_ops, factor, seed):
    layer = keras.layers.RandAugment(value_range=value_range, num_ops=num_ops, factor=factor,
                                     seed=seed)
    layer.equalization = TFDataEqualization(value_range=value_range, data_format=layer.data_format)
    return layer


@keras.saving.register_keras_serializable(package="keras_curriculum")
class EfficientTrain(keras.callbacks.Callback):
    """EfficientTrain curriculum: small low-frequency images and weak augmentation first.

    A stage table says, for each epoch, the image size B and the RandAugment magnitude m.
    `apply(dataset)` returns a `tf.data` pipeline that augments every image with
    `keras.layers.RandAugment` at the stage's magnitude, then down-samples it to B by
    low-frequency cropping (`kc.low_frequency_crop`, `downsample="fft"`) or resizing
    (`keras.layers.Resizing`, Lanczos with antialiasing, `downsample="resize"`); the same object
    passed as a callback tells that pipeline which epoch `fit` is in. Validation data is not
    touched and runs at full resolution.

    The stage of a batch is a function of the epoch at which its data iterator started (read
    once, lazily, when the first batch is pulled, i.e. after `on_epoch_begin`) and of the
    batch's position in that iterator: batch k belongs to epoch start + k // steps_per_epoch.
    It is therefore exact whether `fit` re-creates the iterator every epoch or, with
    `steps_per_epoch` and a repeated dataset, keeps one iterator for the whole run, however far
    `tf.data` prefetches; after a `keras.callbacks.BackupAndRestore` resume it follows the epoch
    that `fit` restarts from. Outside a `fit` with this callback the pipeline yields full-size,
    un-augmented images.

    Each distinct size gives the train step a new input shape (JAX and XLA compile once per
    shape): the published tables use three. The model must accept those spatial sizes
    (`keras.Input((None, None, 3))`, keras-hub backbones with `image_shape=(None, None, 3)`);
    `on_train_begin` checks this and raises a `ValueError` otherwise.

    RandAugment magnitude m (0..10, timm's scale) maps to `RandAugment(factor=m / 10)`: Keras
    draws each operation's strength uniformly in [0, m/10] of that operation's range, where timm
    applies m/10 of its range (with noise 0.5). Keras's ranges are its own (rotation up to
    factor * 360 degrees), so the magnitudes order the strength as the paper does but are not
    timm's augmentations; pass `augmenter` to use another mapping. RandAugment picks its
    operations once per call: per image for unbatched datasets, per batch for batched ones.

    Images come out as float32; batches are `(images, labels)` or `(images, labels,
    sample_weights)`. The epoch logs (and so TensorBoard, when listed after this callback) get
    `et_stage`, `et_height`, `et_width` and `et_magnitude` (NaN without augmentation), and with
    `saturate` on, `et_batch_size` (global micro-batch) and `et_accumulation`.

    Saturation (`saturate`): at a fixed batch a low-resolution step leaves an accelerator
    under-used, so a stage at h x w runs a per-device micro-batch of about b * H W / (h w)
    (within 5 % above it, capped by `max_batch_size`); an epoch is still one pass over the data,
    in fewer, larger batches. `"exact"` keeps the effective batch b * A (A = the optimizer's
    `gradient_accumulation_steps`): the stage accumulates A / k micro-batches of k * b, so every
    update averages the gradients of the same examples as the fixed-batch run (equal up to float
    error for models without batch-dependent layers; BatchNorm sees larger batches). `"scaled"`
    grows the batch without accumulation and scales the learning rate by the batch ratio (the
    linear rule): a change of the optimisation. `"auto"` (default) is `"exact"` when the
    optimizer accumulates gradients and the data allows it, else off. Learning-rate schedules
    see the step of the fixed-batch run. Saturation needs a finite dataset whose epoch is one
    pass (no `steps_per_epoch`); `fit`'s steps per epoch and progress bar keep the full-size
    count, and a saturated epoch ends early. See docs/efficient_train.md.

    Args:
        stages: list of `Stage(epochs, size, magnitude)` rows (tuples or dicts accepted):
            epochs >= 0 per stage; size an int, `(height, width)` or None for full size;
            magnitude in [0, 10] or None for no augmentation. `fit` must run exactly
            sum(epochs) epochs (`et.epochs`).
        image_size: int or `(height, width)`, the full image size, checked against the dataset;
            None takes it from the dataset.
        downsample: `"fft"` (low-frequency crop, the ET paper) or `"resize"` (ET++).
        value_range: pixel value range given to RandAugment, `(0, 255)` or `(0, 1)`.
        num_ops: int >= 1, RandAugment operations per image.
        augmenter: None, or a callable taking a magnitude and returning a `tf.data`-safe Keras
            layer (e.g. a `keras.layers.Pipeline`), replacing the RandAugment mapping.
        seed: int or None, seeds the augmentation layers.
        saturate: `"auto"`, `"exact"`, `"scaled"` or None (fixed batch): the per-stage batch
            above.
        max_batch_size: None or int >= the per-device base batch: cap on a stage's per-device
            micro-batch (a memory limit).

    Example:

    ```python
    et = kc.EfficientTrain.paper(epochs=300, image_size=224)
    train = et.apply(train_ds)       # (images, labels), batched or not (then batch_size=)
    model.fit(train, epochs=et.epochs, validation_data=val_ds, callbacks=[et])
    ```

    References:
        Wang, Ni, Song, Yang, Huang, Wu, Huang. "EfficientTrain: Exploring Generalized
        Curriculum Learning for Training Visual Backbones", ICCV 2023.
        Wang, Ni, Song, Yang, Huang, Huang. "EfficientTrain++: Generalized Curriculum Learning
        for Efficient Visual Backbone Training", TPAMI 2024.
    """

    def __init__(self, stages, image_size=None, downsample="fft", value_range=(0, 255),
                 num_ops=2, augmenter=None, seed=None, saturate="auto", max_batch_size=None):
        super().__init__()
        self.stages = _normalize_stages(stages)
        self.image_size = None if image_size is None else normalize_size(image_size, "image_size")
        self.downsample = check_choice("downsample", downsample, DOWNSAMPLE)
        self.value_range = _check_value_range(value_range)
        self.num_ops = check_int("num_ops", num_ops, 1)
        self.augmenter = check_callable("augmenter", augmenter, allow_none=True)
        self.seed = check_int("seed", seed, 0, allow_none=True)
        self.saturate = batch_saturation.normalize_saturate(saturate)
        self.max_batch_size = batch_saturation.normalize_max_batch_size(max_batch_size)
        self._table = stage_of_epoch(self.stages)
        self._epoch = self._steps = self._dataset_size = None
        self._source = self._batch_var = self._batching = self._batch_plan = None
        self._warning_filter = None
        self._stage_batches, self._batching_started = None, False
        self._functions = {}  # traced train functions by batching, reused across fits

    @classmethod
    def paper(cls, epochs=300, image_size=224, **kwargs):
        """The ET paper schedule (`paper_stages`), FFT low-frequency cropping by default."""
        return cls(paper_stages(epochs, image_size), image_size=image_size, **kwargs)

    @classmethod
    def plus(cls, budget_epochs=200, image_size=224, sizes=None, **kwargs):
        """The ET++ schedule (`plus_stages`, compute clock), resizing by default."""
        kwargs.setdefault("downsample", "resize")
        return cls(plus_stages(budget_epochs, image_size, sizes), image_size=image_size, **kwargs)

    @classmethod
    def from_schedule(cls, schedule, *args, **kwargs):
        """`paper(...)` or `plus(...)` by name, for command lines and configs."""
        check_choice("schedule", schedule, SCHEDULES)
        return getattr(cls, schedule)(*args, **kwargs)

    @property
    def epochs(self):
        """Number of epochs the table covers: pass it to `fit(epochs=...)`."""
        return int(len(self._table))

    def stage_at(self, epoch):
        """The `Stage` in force in `epoch` (0-based), with its size resolved if known."""
        epoch = check_int("epoch", epoch, 0, self.epochs - 1)
        stage = self.stages[self._table[epoch]]
        if stage.size is None:
            stage = stage._replace(size=self.image_size or self._dataset_size)
        return stage

    # The tf.data stage --------------------------------------------------------------------

    def apply(self, dataset, batch_size=None, drop_remainder=False):
        """Returns `dataset` with every batch augmented and down-sampled for its epoch's stage.

        With `saturate` on and a finite dataset, the batches of an epoch have its stage's size
        (a batched dataset is re-batched); the reported cardinality stays the full-size count.

        Args:
            dataset: `tf.data.Dataset` of `(images, labels)` or `(images, labels,
                sample_weights)`, images of a fixed size, batched or not.
            batch_size: int, required for an unbatched dataset (batched here, after the
                per-image augmentation); must be None for a batched one. It is the global
                batch (all replicas), as `fit` takes it.
            drop_remainder: passed to `batch` for an unbatched dataset.
        """
        import tensorflow as tf

        drop_remainder = check_bool("drop_remainder", drop_remainder)
        batched, (height, width) = self._check_dataset(dataset, batch_size)
        full = (height, width)
        sizes = [full if s.size is None else s.size for s in self.stages]
        for size in sizes:
            if size[0] > height or size[1] > width:
                raise ValueError(f"`stages` sizes must not exceed the image size {full}. "
                                 f"Received a stage of size {size}")
        self._dataset_size = full
        if self._epoch is None:
            self._epoch = tf.Variable(-1, dtype=tf.int64, trainable=False)
            self._steps = tf.Variable(_UNKNOWN_STEPS, dtype=tf.int64, trainable=False)
        batches = int(dataset.cardinality())
        if batches >= 0 and not batched:
            batches = batch_saturation.epoch_steps(batches, batch_size, drop_remainder)
        self._source = self._saturation_source(dataset, batched, batch_size, drop_remainder,
                                               batches)
        saturating = isinstance(self._source, _Source)
        if saturating:
            batches = self._source.batches
            base_batches = [self._source.batch_size] * (len(self.stages) + 1)
            if self._batch_var is None:
                self._batch_var = tf.Variable(base_batches, dtype=tf.int64, trainable=False)
            self._batch_var.assign(base_batches)
        # Branch n (one past the last stage) is "not in fit": full size, no augmentation.
        magnitudes = sorted({s.magnitude for s in self.stages if s.magnitude is not None})
        augmenters = [self._make_augmenter(m) for m in magnitudes]
        augmenters.append(lambda images: tf.cast(images, tf.float32))
        aug_of_stage = [len(magnitudes) if s.magnitude is None else magnitudes.index(s.magnitude)
                        for s in self.stages] + [len(magnitudes)]
        distinct = sorted(set(sizes) | {full})
        size_of_stage = [distinct.index(s) for s in sizes] + [distinct.index(full)]
        downsamplers = [self._make_downsampler(s, full) for s in distinct]

        table = tf.constant(self._table, tf.int32)
        aug_of_stage = tf.constant(aug_of_stage, tf.int32)
        size_of_stage = tf.constant(size_of_stage, tf.int32)
        epoch_var, steps_var, outside = self._epoch, self._steps, len(self.stages)
        batch_var = self._batch_var

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
            start, steps = epoch_var.read_value(), steps_var.read_value()

            def stage_of(batch_index):
                epoch = tf.clip_by_value(start + batch_index // steps, 0, len(self._table) - 1)
                return tf.where(start < 0, outside, tf.gather(table, epoch))

            parallel = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            ds = dataset.enumerate()
            if batched and not saturating:
                ds = ds.map(lambda i, el: augment(stage_of(i), el), **parallel)
                return ds.map(lambda stage, el: downsample(stage, el), **parallel)
            # With saturation an iterator is one epoch (`on_train_begin` checks it): its batch
            # size is its stage's, and fewer, larger batches end the epoch early.
            size = tf.gather(batch_var, stage_of(0)) if saturating else batch_size
            if batched:  # re-batched at the stage's size, each example keeping its stage
                ds = ds.map(lambda i, el: (tf.fill(tf.shape(el[0])[:1], stage_of(i)), el),
                            **parallel).unbatch().batch(size)
                ds = ds.map(lambda stage, el: augment(stage[0], el), **parallel)
                return ds.map(lambda stage, el: downsample(stage, el), **parallel)
            ds = ds.map(lambda i, el: augment(stage_of(i // batch_size), el), **parallel)
            ds = ds.batch(size, drop_remainder=drop_remainder)
            return ds.map(lambda stage, el: downsample(stage[0], el), **parallel)

        out = tf.data.Dataset.from_tensors(0).flat_map(one_iterator)
        if saturating:
            # A saturated epoch ends before the full-size count `fit` expects: report that
            # count (steps, progress bar) and let shorter epochs end early.
            out = zip_with_fixed_cardinality(out, batches)
        elif batches >= 0 or batches == tf.data.INFINITE_CARDINALITY:
            # `flat_map` forgets the length; `fit` needs it for its epoch ends and progress bar.
            out = out.apply(tf.data.experimental.assert_cardinality(batches))
        return out.prefetch(tf.data.AUTOTUNE)

    def _saturation_source(self, dataset, batched, batch_size, drop_remainder, batches):
        """The source's `_Source` counts if saturation can run on it, else the reason why not.

        "auto" takes only what costs nothing to know (an unbatched dataset of known length, or
        batches of static size); "exact" and "scaled" read a dataset of unknown length or batch
        size once to count it.
        """
        import tensorflow as tf

        if self.saturate is None:
            return "saturate=None"
        if batches == tf.data.INFINITE_CARDINALITY:
            reason = "the dataset is infinite (`.repeat()`), and an epoch must be one pass"
        else:
            static = dataset.element_spec[0].shape[0] if batched else batch_size
            if batches >= 0 and static is not None:
                examples = batches * static if batched else int(dataset.cardinality())
                return _Source(int(static), int(examples), int(batches), drop_remainder)
            reason = ("the dataset's length or batch size is unknown: pass the unbatched "
                      "dataset with `batch_size=`, or batch with `drop_remainder=True`")
            if self.saturate != "auto":
                return self._count_source(dataset, batched, batch_size, drop_remainder)
        if self.saturate != "auto":
            raise ValueError(f"`saturate={self.saturate!r}` cannot run: {reason}.")
        return reason

    @staticmethod
    def _count_source(dataset, batched, batch_size, drop_remainder):
        import tensorflow as tf

        if not batched:
            examples = int(dataset.reduce(np.int64(0), lambda count, *_: count + 1))
            return _Source(batch_size, examples,
                           batch_saturation.epoch_steps(examples, batch_size, drop_remainder),
                           drop_remainder)
        sizes = dataset.map(lambda *el: tf.cast(tf.shape(el[0])[0], tf.int64))
        largest, examples, count = sizes.reduce(
            (np.int64(0), np.int64(0), np.int64(0)),
            lambda acc, n: (tf.maximum(acc[0], n), acc[1] + n, acc[2] + 1),
        )
        return _Source(int(largest), int(examples), int(count), False)

    def _check_dataset(self, dataset, batch_size):
        import tensorflow as tf

        if not isinstance(dataset, tf.data.Dataset):
            raise TypeError(f"`dataset` must be a tf.data.Dataset. Received: {type(dataset)}")
        if int(dataset.cardinality()) == 0:
            raise ValueError("`dataset` must hold at least one batch. Received an empty dataset.")
        spec = dataset.element_spec
        if not isinstance(spec, tuple) or len(spec) not in (2, 3) or not isinstance(
            spec[0], tf.TensorSpec
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
        if self.image_size is not None and self.image_size != full:
            raise ValueError(f"`dataset` images are {full}, but `image_size`={self.image_size}.")
        batched = shape.rank == 4
        if batched and batch_size is not None:
            raise ValueError("`batch_size` must be None for a batched `dataset`. "
                             f"Received: batch_size={batch_size!r}")
        if not batched:
            check_int("batch_size", batch_size, 1)
        return batched, full

    def augmentation(self, magnitude):
        """The layer that augments at `magnitude`: `augmenter(magnitude)`, or by default
        `keras.layers.RandAugment(value_range, num_ops, factor=magnitude / 10, seed)`."""
        if self.augmenter is not None:
            return self.augmenter(magnitude)
        seed = None if self.seed is None else self.seed + int(round(10 * magnitude))
        return _rand_augment(self.value_range, self.num_ops, magnitude / 10.0, seed)

    def _make_augmenter(self, magnitude):
        import tensorflow as tf

        layer = self.augmentation(magnitude)
        # Every branch of the stage switch must give one dtype.
        return lambda images: tf.cast(layer(images), tf.float32)

    def _make_downsampler(self, size, full):
        import tensorflow as tf

        if size == full:
            return lambda images: tf.cast(images, tf.float32)
        if self.downsample == "fft":
            return lambda images: tf.cast(low_frequency_crop(images, size), tf.float32)
        layer = keras.layers.Resizing(size[0], size[1], interpolation="lanczos3", antialias=True)
        return lambda images: tf.cast(layer(images), tf.float32)

    # Callback hooks -----------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        if self._epoch is None:
            raise ValueError("EfficientTrain: train on `et.apply(dataset)`; `apply` was never "
                             "called on this object.")
        epochs = self.params.get("epochs")
        if epochs != self.epochs:
            raise ValueError(
                f"`stages` cover {self.epochs} epochs but `fit` runs epochs={epochs}: pass "
                "`epochs=et.epochs` (a resumed run keeps the same total)."
            )
        self._check_model(self.model)
        self._steps.assign(self.params.get("steps") or _UNKNOWN_STEPS)
        self._plan_batches()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch.assign(epoch)
        if self._batching is not None:
            if self._batching_started:
                self._batching.enter(epoch)
            else:
                self._batching.begin(epoch)
                self._batching_started = True

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not 0 <= epoch < self.epochs:
            return
        stage = self.stage_at(epoch)
        logs["et_stage"] = int(self._table[epoch])
        if stage.size is not None:
            logs["et_height"], logs["et_width"] = stage.size
        logs["et_magnitude"] = float("nan") if stage.magnitude is None else float(stage.magnitude)
        if self._batch_plan is not None:
            stage = self._table[epoch]
            logs["et_batch_size"] = self._stage_batches[stage]
            logs["et_accumulation"] = self._batch_plan[stage].accumulation

    def on_train_end(self, logs=None):
        if self._epoch is not None:
            self._epoch.assign(-1)
        if self._batching is not None and self._batching_started:
            self._batching.finish()
        self._batching = None
        if self._warning_filter in warnings.filters:
            warnings.filters.remove(self._warning_filter)
        self._warning_filter = None

    # Saturation -----------------------------------------------------------------------------

    @property
    def batch_plan(self):
        """Per-stage `StageBatch(batch_size, accumulation, learning_rate_scale)` of the last
        `fit` (batch_size per device), or None when `saturate` is None or before `fit`."""
        return self._batch_plan

    def _plan_batches(self):
        """Resolves `saturate` for this fit: the batch of every stage, the optimizer's stages."""
        self._batching, self._batch_plan, self._batching_started = None, None, False
        source = self._source
        if not isinstance(source, _Source):
            if self.saturate == "auto" and self._accumulates():
                warnings.warn(f"EfficientTrain(saturate='auto') runs at a fixed batch: {source}.",
                              stacklevel=2)
            return
        optimizer = base_optimizer(self.model.optimizer)
        accumulation, rate = user_settings(optimizer)
        replicas = _replicas(self.model)
        mode = self.saturate
        if mode == "auto":
            mode = "exact" if accumulation > 1 else None
        try:
            plan = self._stage_plan(mode, source, accumulation, rate, replicas)
        except _AutoOff as off:
            warnings.warn(f"EfficientTrain(saturate='auto') runs at a fixed batch: {off}",
                          stacklevel=2)
            mode, plan = None, self._stage_plan(None, source, accumulation, rate, replicas)
        self._batch_plan = plan
        if mode is None:  # the data's own batch, whether or not it splits over the replicas
            batches = [source.batch_size] * len(plan)
        else:
            batches = [replicas * p.batch_size for p in plan]
        self._stage_batches = batches
        self._batch_var.assign(batches + [source.batch_size])
        if mode is None or all(b == source.batch_size and p.accumulation == accumulation
                               for b, p in zip(batches, plan)):
            return
        steps_of_epoch = np.array([
            batch_saturation.epoch_steps(source.examples, batches[s], source.drop_remainder)
            for s in self._table
        ])
        optimizer = self.model.optimizer
        if not optimizer.built:  # TF builds it in the first step, with the stage's settings
            optimizer.build(self.model.trainable_variables)
        self._batching = StageBatching(self.model, mode, plan, self._table, steps_of_epoch,
                                       source.batches, functions=self._functions)
        # Saturated epochs end before the full-size count Keras expects: by design.
        warnings.filterwarnings("ignore", message=_RAN_OUT_WARNING)
        self._warning_filter = warnings.filters[0]

    def _stage_plan(self, mode, source, accumulation, rate, replicas):
        """`plan_stages` after the checks; `_AutoOff` when "auto" cannot be exact here."""
        explicit = self.saturate in ("exact", "scaled")
        base = source.batch_size // replicas
        if self.max_batch_size is not None and self.max_batch_size < base:
            raise ValueError(
                f"`max_batch_size` ({self.max_batch_size}) must be >= the per-device batch "
                f"{base} (global {source.batch_size} over {replicas} replicas)."
            )
        if mode is None:
            return batch_saturation.plan_stages(None, base, accumulation, self._dataset_size,
                                                self._stage_sizes())
        steps = self.params.get("steps")
        if steps != source.batches:
            message = (f"`fit` runs {steps} steps per epoch, not one pass of the dataset "
                       f"({source.batches} batches): do not pass `steps_per_epoch`.")
            if explicit:
                raise ValueError(f"`saturate={self.saturate!r}` with `steps_per_epoch`: {message}")
            raise _AutoOff(message)
        if source.batch_size % replicas:
            raise ValueError(
                f"`batch_size` ({source.batch_size}, the global batch) must be a multiple of "
                f"the {replicas} replicas for `saturate` to size the per-device batch."
            )
        if mode == "exact" and accumulation < 2:
            raise ValueError(
                "`saturate='exact'` keeps the effective batch by accumulating fewer, larger "
                "micro-batches: compile with an optimizer that has "
                "`gradient_accumulation_steps` >= 2 (Keras 3 cannot accumulate under "
                "tf.distribute), or use `saturate='scaled'`/None."
            )
        if mode == "scaled" and not isinstance(
            rate, (keras.optimizers.schedules.LearningRateSchedule, keras.Variable)
        ):
            raise ValueError(
                "`saturate='scaled'` scales the learning rate: the optimizer's learning rate "
                f"must be a float or a LearningRateSchedule. Received: {rate!r}"
            )
        plan = batch_saturation.plan_stages(mode, base, accumulation, self._dataset_size,
                                            self._stage_sizes(), self.max_batch_size)
        if mode == "exact":
            try:
                batch_saturation.check_exact(
                    self._table, [replicas * p.batch_size for p in plan], source.batch_size,
                    source.batch_size * accumulation, source.examples,
                )
            except ValueError as error:
                if explicit:
                    raise
                raise _AutoOff(str(error)) from error
        return plan

    def _stage_sizes(self):
        return [self._dataset_size if s.size is None else s.size for s in self.stages]

    def _accumulates(self):
        optimizer = getattr(self.model, "optimizer", None)
        return optimizer is not None and user_settings(base_optimizer(optimizer))[0] > 1

    def _check_model(self, model):
        channels_last = keras.config.image_data_format() == "channels_last"
        sizes = sorted({s.size for s in self.stages if s.size is not None})
        try:
            inputs = model.inputs
        except (AttributeError, ValueError):
            inputs = None
        if not inputs or not sizes:
            return
        shape = tuple(inputs[0].shape)
        fixed = shape[1:3] if channels_last else shape[2:4]
        for size in sizes:
            if any(d is not None and d != s for d, s in zip(fixed, size)):
                raise ValueError(
                    f"`model` must accept the EfficientTrain image size {size}, but its input "
                    f"shape {shape} fixes the spatial size: build the model with variable spatial "
                    "dimensions, e.g. keras.Input((None, None, channels)) or a keras-hub "
                    "backbone with image_shape=(None, None, channels)."
                )
            probe = list(shape)
            probe[0] = 1
            probe[1 if channels_last else 2], probe[2 if channels_last else 3] = size
            try:
                model.compute_output_spec(keras.KerasTensor(tuple(probe), inputs[0].dtype))
            except Exception as error:  # noqa: BLE001 - re-raised with the cause attached
                raise ValueError(
                    f"`model` cannot take the EfficientTrain input size {size}: {error}"
                ) from error

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        return {
            "stages": [list(s) for s in self.stages],
            "image_size": self.image_size,
            "downsample": self.downsample,
            "value_range": self.value_range,
            "num_ops": self.num_ops,
            "augmenter": self.augmenter,
            "seed": self.seed,
            "saturate": self.saturate,
            "max_batch_size": self.max_batch_size,
        }


class _AutoOff(Exception):
    """`saturate="auto"` cannot be exact in this fit: it trains at a fixed batch."""


def _replicas(model):
    """Devices a global batch is split over: tf.distribute replicas, or the JAX data axis."""
    if keras.backend.backend() == "tensorflow":
        strategy = getattr(model, "distribute_strategy", None)
        return int(strategy.num_replicas_in_sync) if strategy is not None else 1
    distribution = keras.distribution.distribution()
    name = getattr(distribution, "batch_dim_name", None)
    if distribution is None or name is None:
        return 1
    mesh = distribution.device_mesh
    return int(mesh.shape[list(mesh.axis_names).index(name)])


def plot_efficient_train(et, path, title=None):
    """Plots the resolution, augmentation strength and compute per epoch of an EfficientTrain.

    Curves, all as fractions: B_h / H (resolution), m / 10 (RandAugment factor) and
    (B_h * B_w) / (H * W) (compute of the epoch relative to full size).
    """
    from keras_curriculum.plotting import plot_curves

    if not isinstance(et, EfficientTrain):
        raise TypeError(
            f"`et` must be a kc.EfficientTrain. Received: et of type {type(et).__name__}"
        )
    check_path("path", path, allow_none=False)
    if et.image_size is None:
        raise ValueError("`et.image_size` is unknown: pass `image_size` to EfficientTrain.")
    height, _ = et.image_size
    epochs = np.arange(et.epochs)
    stages = [et.stage_at(e) for e in epochs]
    compute = stage_compute(et.stages, et.image_size)[et._table]
    curves = {
        "resolution B / H": np.array([s.size[0] / height for s in stages]),
        "RandAugment factor m / 10": np.array(
            [np.nan if s.magnitude is None else s.magnitude / 10 for s in stages]),
        "compute per epoch (B / H)^2": compute,
    }
    fraction = compute_fraction(et.stages, et.image_size)
    return plot_curves(
        epochs, curves, path,
        title=title or f"EfficientTrain schedule ({et.epochs} epochs, compute {fraction:.3f}x)",
        xlabel="epoch", ylabel="fraction of full size / strength",
    )
