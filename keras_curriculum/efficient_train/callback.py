"""`EfficientTrain`: the callback that runs an EfficientTrain / ET++ stage table in one `fit`.

It owns the table and the variables its `tf.data` stage reads (`pipeline`), plans the per-stage
batches when saturating (`batch_plan`), and tells the stage which epoch `fit` is in.
"""

import warnings

import keras

from keras_curriculum import _tf_data
from keras_curriculum import processes
from keras_curriculum._fit_guard import FitGuard
from keras_curriculum._validation import check_callable
from keras_curriculum._validation import check_choice
from keras_curriculum._validation import check_int
from keras_curriculum.efficient_train import batch_plan
from keras_curriculum.efficient_train import pipeline
from keras_curriculum.efficient_train import saturation as batch_saturation
from keras_curriculum.efficient_train.frequency_crop import normalize_size
from keras_curriculum.efficient_train.model_checks import check_model_takes_sizes
from keras_curriculum.efficient_train.model_checks import check_value_range
from keras_curriculum.efficient_train.stages import DOWNSAMPLE
from keras_curriculum.efficient_train.stages import PAPER_MAGNITUDES
from keras_curriculum.efficient_train.stages import PLUS_MAGNITUDES
from keras_curriculum.efficient_train.stages import SCHEDULES
from keras_curriculum.efficient_train.stages import normalize_stages
from keras_curriculum.efficient_train.stages import paper_stages
from keras_curriculum.efficient_train.stages import plus_stages
from keras_curriculum.efficient_train.stages import stage_of_epoch
from keras_curriculum.epoch_logs import CurriculumLogs


@keras.saving.register_keras_serializable(package="keras_curriculum")
class EfficientTrain(CurriculumLogs, keras.callbacks.Callback):
    """EfficientTrain curriculum: small low-frequency images and weak augmentation first.

    A stage table says, for each epoch, the image size B and the RandAugment magnitude m.
    `apply(dataset)` returns a `tf.data` pipeline that augments every image with
    `keras.layers.RandAugment` at the stage's magnitude, then down-samples it to B by
    low-frequency cropping (`kc.low_frequency_crop`, `downsample="fft"`) or resizing
    (`keras.layers.Resizing`, Lanczos with antialiasing, `downsample="resize"`); the same object
    passed as a callback tells that pipeline which epoch `fit` is in.

    Validation data: pass `fit` the dataset itself, or `et.evaluation_data(dataset,
    batch_size)` (batched, float32 images like the training batches, full size, never
    augmented). The training form from `apply` refuses to be read while `fit` validates (a
    `tf.errors.InvalidArgumentError` naming `evaluation_data`): it would validate at the
    resolution of the current stage.

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
    (`keras.Input((None, None, 3))`, keras-hub backbones with `image_shape=(None, None, 3)`), so
    it pools before its classifier (`GlobalAveragePooling2D`) instead of `Flatten`, whose `Dense`
    needs one fixed size; `on_train_begin` checks this and raises a `ValueError` otherwise.

    `apply` shuffles the examples of an unbatched dataset before batching them, in a new order
    every epoch (seeded by `seed` and the epoch, so a resumed run repeats the order); a batched
    dataset keeps its order. DoCL's batches (`et.apply(docl.apply(...))`) are never reordered or
    rebatched: DoCL identifies examples by their position.

    RandAugment magnitude m (0..10, timm's scale) maps to `RandAugment(factor=m / 10)`: Keras
    draws each operation's strength uniformly in [0, m/10] of that operation's range, where timm
    applies m/10 of its range (with noise 0.5). Keras's ranges are its own (rotation up to
    factor * 360 degrees), so the magnitudes order the strength as the paper does but are not
    timm's augmentations; pass `augmenter` to use another mapping. RandAugment picks its
    operations once per call: per image for unbatched datasets, per batch for batched ones.
    The presets' augmentation is an argument: `paper(..., magnitudes=None)` and
    `plus(..., magnitudes=None)` keep the resolution curriculum and drop RandAugment. Keras's
    full ranges are meant for large natural images; on small images (28-32 px digits, CIFAR)
    they can cost accuracy and dominate the CPU time of an epoch, so start there without them
    (see docs/efficient_train.md, "Small images").

    Images come out as float32; batches are `(images, labels)` or `(images, labels,
    sample_weights)`. The epoch logs (and so `History`, `TensorBoard`, `CSVLogger`, wherever
    they are in the callback list) get `et_stage`, `et_height` and `et_width`; `et_magnitude`
    when some stage augments (0 in a stage that does not); and with `saturate` on,
    `et_batch_size` (global micro-batch) and `et_accumulation`. A table that never leaves the
    full image size is reported with a warning before the first step: it is not a curriculum.

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
            epochs >= 1 per stage (a 0-epoch stage is a `ValueError`; the presets `paper` and
            `plus` drop the stages that round to 0 epochs in a short run, with a warning); size an
            int, `(height, width)` or None for full size;
            magnitude in [0, 10] or None for no augmentation. `fit` must run exactly
            sum(epochs) epochs (`et.epochs`).
        image_size: int or `(height, width)`, the full image size, checked against the dataset;
            None takes it from the dataset.
        downsample: `"fft"` (low-frequency crop, the ET paper) or `"resize"` (ET++).
        value_range: pixel value range given to RandAugment, `(0, 255)` or `(0, 1)`.
        num_ops: int >= 1, RandAugment operations per image.
        augmenter: None, or a callable taking a magnitude and returning a `tf.data`-safe Keras
            layer (e.g. a `keras.layers.Pipeline`), replacing the RandAugment mapping.
        seed: int or None, seeds the augmentation layers (None: unseeded) and `apply`'s
            shuffle (None: seed 0, so that two runs shuffle alike).
        saturate: `"auto"`, `"exact"`, `"scaled"` or None (fixed batch): the per-stage batch
            above.
        max_batch_size: None or int >= the per-device base batch: cap on a stage's per-device
            micro-batch (a memory limit).
        verbose: int, 0 (silent) or 1 (a line at each stage switch).

    Example:

    ```python
    et = kc.EfficientTrain.paper(epochs=300, image_size=224)
    train = et.apply(train_ds)       # (images, labels), batched or not (then batch_size=)
    val = et.evaluation_data(val_ds, batch_size=128)   # or val_ds itself
    model.fit(train, epochs=et.epochs, validation_data=val, callbacks=[et])
    ```

    References:
        Wang, Ni, Song, Yang, Huang, Wu, Huang. "EfficientTrain: Exploring Generalized
        Curriculum Learning for Training Visual Backbones", ICCV 2023.
        Wang, Ni, Song, Yang, Huang, Huang. "EfficientTrain++: Generalized Curriculum Learning
        for Efficient Visual Backbone Training", TPAMI 2024.
    """

    def __init__(
        self,
        stages,
        image_size=None,
        downsample="fft",
        value_range=(0, 255),
        num_ops=2,
        augmenter=None,
        seed=None,
        saturate="auto",
        max_batch_size=None,
        verbose=0,
    ):
        super().__init__()
        self.stages = normalize_stages(stages)
        self.image_size = None if image_size is None else normalize_size(image_size, "image_size")
        self.downsample = check_choice("downsample", downsample, DOWNSAMPLE)
        self.value_range = check_value_range(value_range)
        self.num_ops = check_int("num_ops", num_ops, 1)
        self.augmenter = check_callable("augmenter", augmenter, allow_none=True)
        self.seed = check_int("seed", seed, 0, allow_none=True)
        self.saturate = batch_saturation.normalize_saturate(saturate)
        self.max_batch_size = batch_saturation.normalize_max_batch_size(max_batch_size)
        self.verbose = check_int("verbose", verbose, 0, 2)
        self._table = stage_of_epoch(self.stages)
        self._epoch = self._steps = self._dataset_size = self._evaluating = None
        self._applied = 0  # datasets given to `apply`
        self._split_for = 1  # processes `apply` split the batches for
        self._source = self._batch_var = self._batching = self._batch_plan = None
        self._short_epochs = None
        self._stage_batches, self._batching_started = None, False
        self._functions = {}  # traced train functions by batching, reused across fits
        # Unseeded, the shuffle still repeats from run to run: two runs to be compared (a
        # fixed batch against saturation, a resume) see the same examples in the same order.
        self._shuffle_seed = 0 if seed is None else int(seed)
        self._order_owner = None  # the curriculum whose batches `apply` was given (DoCL)
        self._composition_checked = True
        self._guard = FitGuard("EfficientTrain")

    @classmethod
    def paper(cls, epochs=300, image_size=224, magnitudes=PAPER_MAGNITUDES, **kwargs):
        """The ET paper schedule (`paper_stages`), FFT low-frequency cropping by default.

        `magnitudes`: the RandAugment magnitude of each of the 5 stages (paper: 1, 3, 5, 7, 9),
        or None for no augmentation (the resolution curriculum alone, e.g. for small images).
        """
        return cls(paper_stages(epochs, image_size, magnitudes), image_size=image_size, **kwargs)

    @classmethod
    def plus(
        cls, budget_epochs=200, image_size=224, sizes=None, magnitudes=PLUS_MAGNITUDES, **kwargs
    ):
        """The ET++ schedule (`plus_stages`, compute clock), resizing by default.

        `magnitudes`: the RandAugment magnitude of each of the 10 stages (paper: 0 to 9), or
        None for no augmentation.
        """
        kwargs.setdefault("downsample", "resize")
        return cls(
            plus_stages(budget_epochs, image_size, sizes, magnitudes),
            image_size=image_size,
            **kwargs,
        )

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

    def apply(self, dataset, batch_size=None, drop_remainder=False, shuffle=None):
        """Returns `dataset` with every batch augmented and down-sampled for its epoch's stage.

        With `saturate` on and a finite dataset, the batches of an epoch have its stage's size
        (a batched dataset is re-batched); the reported cardinality stays the full-size count.
        Given DoCL's batches (`docl.apply(...)`), it augments and crops each of them and keeps
        DoCL's subsets, order and batches (no shuffle, no saturation).

        Args:
            dataset: `tf.data.Dataset` of `(images, labels)` or `(images, labels,
                sample_weights)`, images of a fixed size, batched or not.
            batch_size: int, required for an unbatched dataset (batched here, after the
                per-image augmentation); must be None for a batched one. It is the global
                batch (all replicas), as `fit` takes it.
            drop_remainder: passed to `batch` for an unbatched dataset, and to the re-batching
                of a batched one at saturated stages' batch sizes (static shapes; on several
                processes, no partial batch).
            shuffle: None (default: True for an unbatched dataset, False for a batched one),
                a bool, or an int >= 2, the shuffle buffer in examples (True: the whole dataset
                up to `SHUFFLE_BUFFER` = 10000 examples; shuffle a larger dataset's files
                upstream). The examples are shuffled before batching, in a new order every
                epoch, from `seed` and the epoch. Only an unbatched dataset can be shuffled here.
        """
        return pipeline.build(self, dataset, batch_size, drop_remainder, shuffle)

    def evaluation_data(self, dataset, batch_size=None, drop_remainder=False):
        """`dataset` for validation or `evaluate`: full size, no augmentation, float32 images.

        On several processes, each process's part of every batch, as `apply` gives.

        Args: as `apply` (the same dataset formats and size checks).
        """
        return pipeline.evaluation(self, dataset, batch_size, drop_remainder)

    def augmentation(self, magnitude):
        """The layer that augments at `magnitude`: `augmenter(magnitude)`, or by default
        `keras.layers.RandAugment(value_range, num_ops, factor=magnitude / 10, seed)`."""
        if self.augmenter is not None:
            return self.augmenter(magnitude)
        seed = None if self.seed is None else self.seed + int(round(10 * magnitude))
        return pipeline.rand_augment(self.value_range, self.num_ops, magnitude / 10.0, seed)

    # Callback hooks -----------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        model = self._guard.claim(self)
        try:
            self._begin(model)
        except Exception:
            self._guard.release()
            raise

    def _begin(self, model):
        if self._epoch is None:
            raise ValueError(
                "EfficientTrain: train on `et.apply(dataset)`; `apply` was never "
                "called on this object."
            )
        epochs = self.params.get("epochs")
        if epochs != self.epochs:
            raise ValueError(
                f"`stages` cover {self.epochs} epochs but `fit` runs epochs={epochs}: pass "
                "`epochs=et.epochs` (a resumed run keeps the same total)."
            )
        check_model_takes_sizes(model, self.stages)
        processes.check_split_for("EfficientTrain", self._split_for)
        self._warn_if_full_size()
        self._composition_checked = False
        self._evaluating.assign(0)  # a `fit` that raised while validating left it set
        self._steps.assign(self.params.get("steps") or pipeline.UNKNOWN_STEPS)
        batch_plan.plan_batches(self)

    def on_epoch_begin(self, epoch, logs=None):
        if not self._composition_checked:
            # Every callback's `on_train_begin` has run: a DoCL of this fit is registered.
            self._composition_checked = True
            self._check_composition()
        self._epoch.assign(epoch)
        if (
            self.verbose
            and 0 <= epoch < self.epochs
            and (epoch == 0 or self._table[epoch] != self._table[epoch - 1])
        ):
            stage = self.stage_at(epoch)
            print(
                f"\nEpoch {epoch + 1}: EfficientTrain stage {self._table[epoch]}, images "
                f"{stage.size[0]}x{stage.size[1]}, RandAugment magnitude {stage.magnitude}."
            )
        if self._batching is not None:
            if self._batching_started:
                self._batching.enter(epoch)
            else:
                self._batching.begin(epoch)
                self._batching_started = True

    def epoch_logs(self, epoch):
        if not 0 <= epoch < self.epochs:
            return {}
        stage = self.stage_at(epoch)
        logs = {"et_stage": int(self._table[epoch])}
        if stage.size is not None:
            logs["et_height"], logs["et_width"] = stage.size
        if any(s.magnitude is not None for s in self.stages):
            # A number in every epoch (CSVLogger keeps the first epoch's columns), never NaN.
            logs["et_magnitude"] = float(stage.magnitude or 0.0)
        if self._batch_plan is not None:
            index = self._table[epoch]
            logs["et_batch_size"] = self._stage_batches[index]
            logs["et_accumulation"] = self._batch_plan[index].accumulation
        return logs

    def on_epoch_end(self, epoch, logs=None):
        self.write_epoch_logs(epoch, logs)

    def _warn_if_full_size(self):
        full = self.image_size or self._dataset_size
        if full is not None and all(
            tuple(self.stage_at(e).size) == tuple(full) for e in range(self.epochs)
        ):
            warnings.warn(
                f"EfficientTrain's `stages` keep every epoch at the full image size "
                f"{full[0]}x{full[1]}: the curriculum never lowers the resolution. Use "
                "`EfficientTrain.paper(epochs=...)` or `plus(...)`, or give some stages a "
                "smaller `size`.",
                stacklevel=3,
            )

    def on_test_begin(self, logs=None):
        if self._guard.model is not None:  # validation inside `fit`
            self._evaluating.assign(1)

    def on_test_end(self, logs=None):
        if self._evaluating is not None:
            self._evaluating.assign(0)

    def on_train_end(self, logs=None):
        self._guard.release()
        if self._epoch is not None:
            self._epoch.assign(-1)
        if self._batching is not None and self._batching_started:
            self._batching.finish()
        self._batching = None
        if self._short_epochs is not None:
            self._short_epochs.close()
        self._short_epochs = None

    # Saturation -----------------------------------------------------------------------------

    @property
    def batch_plan(self):
        """Per-stage `StageBatch(batch_size, accumulation, learning_rate_scale)` of the last
        `fit` (batch_size per device), or None when `saturate` is None or before `fit`."""
        return self._batch_plan

    def _check_composition(self):
        owner = _tf_data.position_owner_in_fit(self)
        if owner is not None and owner is not self._order_owner:
            raise ValueError(
                f"EfficientTrain and {type(owner).__name__} train in one `fit`, but `et.apply` "
                "was not given DoCL's batches. Compose them as "
                "`train = et.apply(docl.apply(data, batch_size=...))`: DoCL draws each epoch's "
                "examples and order, EfficientTrain augments and crops each of its batches. "
                "Feeding EfficientTrain's output to DoCL, or changing DoCL's batches before "
                "`et.apply`, is not supported: DoCL identifies examples by their position "
                "(map other transformations after `et.apply`, or pass `augmenter=`)."
            )

    @property
    def stage_indices(self):
        """The index of the stage in force in each epoch (int32 array of length `epochs`)."""
        return self._table.copy()

    def plot(self, path, title=None):
        """Saves a PNG of the resolution, augmentation and compute per epoch."""
        from keras_curriculum.efficient_train.plot import plot_efficient_train

        return plot_efficient_train(self, path, title)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("augmenter"), dict):
            config["augmenter"] = keras.saving.deserialize_keras_object(config["augmenter"])
        return cls(**config)

    def get_config(self):
        return {
            "stages": [list(s) for s in self.stages],
            "image_size": self.image_size,
            "downsample": self.downsample,
            "value_range": self.value_range,
            "num_ops": self.num_ops,
            "augmenter": (
                None
                if self.augmenter is None
                else keras.saving.serialize_keras_object(self.augmenter)
            ),
            "seed": self.seed,
            "saturate": self.saturate,
            "max_batch_size": self.max_batch_size,
            "verbose": self.verbose,
        }
