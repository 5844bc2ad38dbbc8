"""ImageNet-1k recipes for EfficientTrain (TFDS `imagenet2012`, manual download): ResNet-50.

`imagenet`: the protocol of the EfficientTrain code (LeapLabTHU/EfficientTrain, `ET_training.py`
and the ConvNeXt-style `main.py` it launches) for `--model resnet50`. `imagenet_plus`: the
EfficientTrain++ launcher for ResNet-50 (`_ET_pp_main_res50.py`, `main_buffer.py`), whose
learning rate follows the compute clock (`ComputeClockSchedule`). Every value, with its source,
is a row of the recipe's protocol (`kc-recipes --recipe imagenet --print-protocol`); in short:

- AdamW, learning rate 4e-3 for an effective batch of 4096, weight decay 0.05 (not on biases
  and normalisation parameters), 300 epochs (ET++: a budget of 200 full-size epochs), 20 of
  them linear warm-up, then cosine decay to 1e-6; label smoothing 0.1. Here the batch is
  `batch_size` (256) per step with Keras's gradient accumulation up to 4096
  (`accumulation_steps`, default 4096 // batch_size).
- Training images: RandomResizedCrop (scale 0.08-1, bicubic) and horizontal flip; RandAugment
  `rand-m9-mstd0.5-inc1` for the baseline. Test: resize to 256, centre crop 224 (both scaled
  with `image_size`: the crop is 0.875 of the resized side).
- EfficientTrain: 5 equal stages, B = 160, 160, 160, 192, 224 with RandAugment m = 1, 3, 5, 7, 9
  (the official launcher's `b_list` and `rand-m{2i+1}`); B scales with `image_size`. ET++: 10
  stages, B = 96 x 2, 160 x 4, 224 x 4, m = the stage index, stage lengths by the compute clock,
  one batch size in every stage (the launcher's 512 per GPU), images resized.

Left out (documented in docs/recipes_images_audio.md): Mixup 0.8 / CutMix 1.0 and random erasing
0.25 of the ConvNeXt recipe (the runner keeps hard labels for McNemar's test), and the ET
launcher's doubled batch in the low-resolution stages (one `fit` keeps one batch size).
RandAugment is Keras's (`keras.layers.RandAugment`, factor m / 10), not timm's operations.
Keras's ResNet50 is v1 where the ET code trains torchvision's v1.5 (stride on the 3x3 conv).
"""

import keras
import tensorflow as tf
from keras import ops

import keras_curriculum as kc
from keras_curriculum.efficient_train import PAPER_MAGNITUDES
from keras_curriculum.efficient_train.compute_clock import ComputeClockSchedule

from . import image_ops
from . import tfds_data
from .base import Recipe
from .models import resnet50
from .models import small_cnn
from .protocol import ProtocolValue
from .regimes import Regime

MODELS = ("resnet50", "small_cnn")
EFFECTIVE_BATCH = 4096
PAPER_EPOCHS, WARMUP_EPOCHS = 300, 20
BASELINE_MAGNITUDE = 9
SHUFFLE_BUFFER = 10000
ET = "LeapLabTHU/EfficientTrain"
PLUS = "_ET_pp_main_res50.py"
LEFT_OUT = (
    "Mixup 0.8, CutMix 1.0 and random erasing 0.25 of the code are left out: the runner "
    "keeps hard labels for McNemar's test"
)


def et_rows():
    """The EfficientTrain (ICCV) protocol rows for ResNet-50: ET_training.py and main.py."""
    return [
        ProtocolValue(
            "model",
            "ResNet-50",
            f"{ET} ET_training.py:21",
            note="Keras's ResNet50 is v1; the code trains torchvision's v1.5",
        ),
        ProtocolValue(
            "optimizer",
            "AdamW",
            f"{ET} main.py:84",
            note="biases and BatchNorm gamma / beta are not decayed here",
        ),
        ProtocolValue("learning_rate", 4e-3, f"{ET} main.py:100"),
        ProtocolValue(
            "effective_batch",
            EFFECTIVE_BATCH,
            f"{ET} ET_training.py:57",
            note="`batch_size` x `accumulation_steps`",
        ),
        ProtocolValue("weight_decay", 0.05, f"{ET} main.py:94"),
        ProtocolValue(
            "epochs",
            PAPER_EPOCHS,
            f"{ET} ET_training.py:13",
            note="the run's `--epochs`; the warm-up scales with it",
        ),
        ProtocolValue("warmup_epochs", WARMUP_EPOCHS, f"{ET} main.py:105"),
        ProtocolValue("min_learning_rate", 1e-6, f"{ET} main.py:103"),
        ProtocolValue("label_smoothing", 0.1, f"{ET} main.py:115"),
        ProtocolValue(
            "augmentation",
            "Inception crop, flip, RandAugment m9",
            f"{ET} main.py:113",
            note=LEFT_OUT + " (main.py:124, :134, :136)",
        ),
        ProtocolValue(
            "efficient_train.schedule",
            "paper",
            f"{ET} ET_training.py:51, :63",
            note="5 equal stages, B = 160, 160, 160, 192, 224 of 224 px",
        ),
        ProtocolValue("efficient_train.magnitudes", PAPER_MAGNITUDES, f"{ET} ET_training.py:64"),
        ProtocolValue(
            "efficient_train.saturate",
            "auto",
            f"not given; chosen: auto, because one fit keeps one effective batch; the "
            f"launcher doubles the batch in stages 1-4 ({ET} ET_training.py:56)",
        ),
    ]


def plus_rows():
    """The EfficientTrain++ rows for ResNet-50: the launcher and main_buffer.py it runs."""
    return [
        ProtocolValue(
            "model",
            "ResNet-50",
            f"{ET} {PLUS}:60, main_buffer.py:38",
            note="Keras's ResNet50 is v1; the code trains torchvision's v1.5",
        ),
        ProtocolValue(
            "optimizer",
            "AdamW",
            f"{ET} main_buffer.py:90",
            note="biases and BatchNorm gamma / beta are not decayed here",
        ),
        ProtocolValue("learning_rate", 4e-3, f"{ET} {PLUS}:61"),
        ProtocolValue(
            "effective_batch",
            EFFECTIVE_BATCH,
            f"{ET} {PLUS}:16, :53, :61",
            note="512 per GPU on 8 GPUs in every stage",
        ),
        ProtocolValue("weight_decay", 0.05, f"{ET} main_buffer.py:100"),
        ProtocolValue(
            "epochs",
            200,
            f"{ET} {PLUS}:8",
            note="the compute budget in full-size epochs (`--epochs`): the "
            "conventional arm's epochs; the ET++ table runs longer",
        ),
        ProtocolValue(
            "warmup_epochs",
            (96 / 224) ** 2 * WARMUP_EPOCHS,
            f"{ET} {PLUS}:47-49, :57",
            note="20 epochs of the first stage's own run at 96 px, i.e. "
            "20 (96 / 224)^2 full-size epochs of the compute clock",
        ),
        ProtocolValue("min_learning_rate", 1e-6, f"{ET} main_buffer.py:109"),
        ProtocolValue("label_smoothing", 0.1, f"{ET} main_buffer.py:121"),
        ProtocolValue(
            "augmentation",
            "Inception crop, flip, RandAugment m9",
            f"{ET} main_buffer.py:119",
            note=LEFT_OUT,
        ),
        ProtocolValue(
            "efficient_train.schedule",
            "plus",
            f"{ET} {PLUS}:13, :44-46, :56",
            note="10 stages, B = 96 x 2, 160 x 4, 224 x 4, each a tenth of the compute budget",
        ),
        ProtocolValue("efficient_train.magnitudes", "stage index 0-9", f"{ET} {PLUS}:58"),
        ProtocolValue(
            "efficient_train.saturate",
            None,
            f"{ET} {PLUS}:16",
            note="one batch size in every stage",
        ),
        ProtocolValue(
            "efficient_train.downsample",
            "resize",
            f"{ET} {PLUS}:59",
            note="each stage trains at its input size (`--input_size`)",
        ),
        ProtocolValue(
            "efficient_train:clock",
            "compute",
            f"{ET} {PLUS}:44-56, utils_buffer.py:535-541, main_buffer.py:403-406",
            note="every stage walks its tenth of one warm-up + cosine while it spends "
            "a tenth of the compute (ComputeClockSchedule)",
        ),
    ]


@keras.saving.register_keras_serializable(package="recipes")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing (Keras's sparse loss has none).

    Args:
        num_classes: int >= 2, width of the logits.
        label_smoothing: float in [0, 1): the target is (1 - s) * onehot + s / num_classes.
    """

    def __init__(
        self, num_classes, label_smoothing=0.1, name="sparse_smoothed_crossentropy", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"`label_smoothing` must be in [0, 1). Received: {label_smoothing}")
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.num_classes)
        return keras.losses.categorical_crossentropy(
            labels, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, label_smoothing=self.label_smoothing)
        return config


def warmup_cosine(
    peak,
    epochs,
    steps_per_epoch,
    warmup_epochs_of_300=WARMUP_EPOCHS,
    final=1e-6,
    of_epochs=PAPER_EPOCHS,
):
    """Linear warm-up from 0 over `warmup_epochs_of_300` of `of_epochs` epochs (the same
    fraction of `epochs`, in whole steps), then cosine decay from `peak` to `final` over the
    remaining steps."""
    total = epochs * steps_per_epoch
    warmup = int(round(warmup_epochs_of_300 * epochs / of_epochs * steps_per_epoch))
    alpha = final / peak
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(peak, max(1, total), alpha=alpha)
    return keras.optimizers.schedules.CosineDecay(
        0.0, max(1, total - warmup), alpha=alpha, warmup_target=peak, warmup_steps=warmup
    )


def rand_augment(magnitude, seed=None):
    """The RandAugment layer EfficientTrain uses at `magnitude` (pixels in 0..255), so the
    baseline and ET's last stage (m = 9) augment alike."""
    et = kc.EfficientTrain([kc.Stage(1, None, magnitude)], value_range=(0, 255), seed=seed)
    return et.augmentation(magnitude)


class ImageNet(Recipe):
    """ImageNet-1k with ResNet-50: conventional training and EfficientTrain (ET paper protocol).

    Args:
        train_size: None (1,281,167 images) or an int: the first `train_size` of TFDS's train
            split.
        image_size: int, full training / test resolution (224 in the paper); the ET stage
            sizes and the test resize scale with it.
        batch_size: int, images per step.
        accumulation_steps: None (4096 // batch_size, the paper's effective batch) or an int
            >= 1 of steps whose gradients are summed before each update.
        model: `"resnet50"` (`keras.applications.ResNet50(weights=None)`) or `"small_cnn"`
            (quick tests).
        width: channel width of `small_cnn`.
        test_size: None (50,000 validation images) or an int.
        data_dir: TFDS data folder; None for $TFDS_DATA_DIR.
        download: let TFDS prepare the data (needs the two tar files in its manual folder).

    Example:

    ```python
    recipe = ImageNet(data_dir="/data/tfds")
    compare.compare(recipe, ["conventional", "efficient_train"], range(1), 300, "runs/in1k")
    ```
    """

    name = "imagenet"
    summary = "ImageNet-1k, ResNet-50, EfficientTrain's protocol (TFDS, manual download)"
    methods = ("conventional", "efficient_train")
    num_classes = 1000

    @classmethod
    def protocol_rows(cls, **options):
        return et_rows()

    def __init__(
        self,
        train_size=None,
        image_size=224,
        batch_size=256,
        accumulation_steps=None,
        model="resnet50",
        width=16,
        test_size=None,
        data_dir=None,
        download=True,
    ):
        if model not in MODELS:
            raise ValueError(f"`model` must be one of {MODELS}. Received: model={model!r}")
        for arg, value in (("image_size", image_size), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{arg}` must be an int >= 1. Received: {arg}={value!r}")
        table = self.protocol_table = type(self).protocol()
        if accumulation_steps is None:
            accumulation_steps = max(1, table["effective_batch"] // batch_size)
        if (
            isinstance(accumulation_steps, bool)
            or not isinstance(accumulation_steps, int)
            or (accumulation_steps < 1)
        ):
            raise ValueError(
                "`accumulation_steps` must be None or an int >= 1. "
                f"Received: {accumulation_steps!r}"
            )
        self.train_size = tfds_data.check_size(train_size)
        self.image_size = image_size
        self.batch_size = batch_size
        self.accumulation_steps = accumulation_steps
        self.model = model
        self.width = width
        self.test_size = tfds_data.check_size(test_size, "test_size")
        self.data_dir = data_dir
        self.download = download
        self._train, self.num_train = tfds_data.with_length(
            self._examples("train", self.train_size, shuffle_files=True)
        )
        if self.num_train < batch_size:
            raise ValueError(
                f"`batch_size` ({batch_size}) exceeds the {self.num_train} "
                "training images: lower it or raise `train_size`."
            )
        self.steps_per_epoch = self.num_train // batch_size
        self._test = self._examples("validation", self.test_size).map(
            lambda x, y: (image_ops.resize_center_crop(x, image_size), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        self.description = (
            f"{model}, {self.num_train} training images at {image_size} px, "
            f"batch {batch_size} x {accumulation_steps} accumulated, AdamW "
            f"{table['learning_rate']:g} warm-up + cosine, label smoothing "
            f"{table['label_smoothing']:g}"
        )
        self.loss = SparseSmoothedCrossentropy(self.num_classes, table["label_smoothing"])
        self.upscaled_size = image_size  # EfficientTrain's full size: the native resolution
        self.efficient_train = dict(table.section("efficient_train"), value_range=(0, 255))

    def _examples(self, split, size, shuffle_files=False):
        ds = tfds_data.load(
            "imagenet2012",
            split,
            data_dir=self.data_dir,
            download=self.download,
            shuffle_files=shuffle_files,
        )
        return tfds_data.take(ds, size, "train_size" if split == "train" else "test_size")

    def build_model(self, variable_size=False):
        side = None if variable_size else self.image_size
        shape = (side, side, 3)
        preprocess = image_ops.normalization(image_ops.IMAGENET_MEAN, image_ops.IMAGENET_STD)
        if self.model == "resnet50":
            return resnet50(shape, self.num_classes, preprocess=preprocess)
        return small_cnn(shape, self.num_classes, width=self.width, preprocess=preprocess)

    def learning_rate(self, epochs):
        """Warm-up + cosine over `epochs` (the protocol's warm-up share of its epochs)."""
        table = self.protocol_table
        return warmup_cosine(
            table["learning_rate"],
            epochs,
            self.steps_per_epoch,
            table["warmup_epochs"],
            table["min_learning_rate"],
            table["epochs"],
        )

    def _adamw(self, rate):
        accumulation = self.accumulation_steps if self.accumulation_steps > 1 else None
        optimizer = keras.optimizers.AdamW(
            rate,
            weight_decay=self.protocol_table["weight_decay"],
            gradient_accumulation_steps=accumulation,
        )
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        return optimizer

    def optimizer(self, epochs):
        # Keras counts every micro-batch in `iterations`, so the schedule runs in those steps.
        return self._adamw(self.learning_rate(epochs))

    def _cropped(self, seed):
        size = self.image_size
        ds = self._train.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
        return ds.map(
            lambda x, y: (image_ops.random_resized_crop_flip(x, size), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    def train_dataset(self, seed, image_size=None):
        if image_size not in (None, self.image_size):
            raise ValueError(
                f"The ImageNet recipe trains at image_size={self.image_size}; "
                f"received {image_size} (build a recipe with that image_size)."
            )
        augment = rand_augment(BASELINE_MAGNITUDE, seed)
        ds = self._cropped(seed).map(
            lambda x, y: (augment(x), y), num_parallel_calls=tf.data.AUTOTUNE
        )
        return ds.batch(self.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def efficient_train_examples(self, seed):
        """Cropped and flipped training images without RandAugment: EfficientTrain adds it per
        image at each stage's magnitude."""
        return self._cropped(seed)

    def test_dataset(self, image_size=None):
        return self._test.batch(256).prefetch(tf.data.AUTOTUNE)

    def test_arrays(self, image_size=None):
        """`(images, labels)`: images as a batched `tf.data.Dataset` (50,000 images at 224 px
        are 30 GB as an array; `model.predict` takes the dataset), labels as numpy."""
        images = self._test.map(lambda x, y: x).batch(256).prefetch(tf.data.AUTOTUNE)
        labels_only = tfds_data.load(
            "imagenet2012",
            "validation",
            data_dir=self.data_dir,
            download=self.download,
            decoders={"image": _skip()},
        )
        return images, tfds_data.labels(tfds_data.take(labels_only, self.test_size, "test_size"))


def _skip():
    import tensorflow_datasets as tfds

    return tfds.decode.SkipDecoding()


class ImageNetPlus(ImageNet):
    """ImageNet-1k with ResNet-50: conventional training and EfficientTrain++ (its launcher's
    protocol). `--epochs` is the compute budget in full-size epochs: the conventional arm
    trains that many, the ET++ arm its 10-stage table (2.27 times as many epochs, of the same
    compute), its learning rate read on the compute clock (`compute_clock=False`: by epoch).

    Args:
        compute_clock: bool, ET++'s schedule follows the compute spent (the official runs) or,
            False, the epochs (an ablation: 48 % of the schedule spent at 96 px).
        The others: as `ImageNet`.
    """

    name = "imagenet_plus"
    summary = "ImageNet-1k, ResNet-50, EfficientTrain++ (compute clock; TFDS, manual download)"

    @classmethod
    def protocol_rows(cls, **options):
        return plus_rows()

    def __init__(
        self,
        train_size=None,
        image_size=224,
        batch_size=256,
        accumulation_steps=None,
        model="resnet50",
        width=16,
        test_size=None,
        data_dir=None,
        download=True,
        compute_clock=True,
    ):
        if not isinstance(compute_clock, bool):
            raise TypeError(f"`compute_clock` must be a bool. Received: {compute_clock!r}")
        self.compute_clock = compute_clock
        super().__init__(
            train_size,
            image_size,
            batch_size,
            accumulation_steps,
            model,
            width,
            test_size,
            data_dir,
            download,
        )
        # ET++'s magnitudes are the stage indices, which `plus_stages` sets: the row describes them.
        self.efficient_train.pop("magnitudes")
        if not compute_clock:
            self.description += ", ET++ schedule by epoch (no compute clock)"

    def arm_schedule(self, epochs, callbacks=()):
        """The learning-rate schedule of an arm of a run with budget `epochs`: with an
        `EfficientTrain` callback among `callbacks`, the budget's warm-up + cosine read on the
        compute clock of its stages (or, with `compute_clock=False`, spread over its epochs)."""
        et = next((c for c in callbacks if isinstance(c, kc.EfficientTrain)), None)
        if et is None:
            return self.learning_rate(epochs)
        if not self.compute_clock:
            return self.learning_rate(et.epochs)
        return ComputeClockSchedule.from_stages(
            self.learning_rate(epochs), et.stages, self.image_size, self.steps_per_epoch
        )

    def regime(self, name, epochs):
        if name != "default":
            return super().regime(name, epochs)
        return Regime(
            "default",
            lambda epoch_steps, callbacks: self._adamw(self.arm_schedule(epochs, callbacks)),
        )
