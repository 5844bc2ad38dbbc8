"""ImageNet-1k recipe for EfficientTrain (TFDS `imagenet2012`, manual download): ResNet-50.

The protocol of the EfficientTrain code (LeapLabTHU/EfficientTrain, `ET_training.py` and the
ConvNeXt-style `main.py` it launches) for `--model resnet50`:

- AdamW, learning rate 4e-3 for an effective batch of 4096, weight decay 0.05 (not on biases
  and normalisation parameters), 300 epochs, 20 of them linear warm-up, then cosine decay to
  1e-6; label smoothing 0.1. Here the batch is `batch_size` (256) per step with Keras's
  gradient accumulation up to 4096 (`accumulation_steps`, default 4096 // batch_size).
- Training images: RandomResizedCrop (scale 0.08-1, bicubic) and horizontal flip; RandAugment
  `rand-m9-mstd0.5-inc1` for the baseline. Test: resize to 256, centre crop 224 (both scaled
  with `image_size`: the crop is 0.875 of the resized side).
- EfficientTrain: 5 equal stages, B = 160, 160, 160, 192, 224 with RandAugment m = 1, 3, 5, 7, 9
  (the official launcher's `b_list` and `rand-m{2i+1}`); B scales with `image_size`.

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

from . import image_ops
from . import tfds_data
from .base import Recipe
from .models import resnet50
from .models import small_cnn

MODELS = ("resnet50", "small_cnn")
EFFECTIVE_BATCH = 4096
PAPER_EPOCHS, WARMUP_EPOCHS = 300, 20
BASELINE_MAGNITUDE = 9
SHUFFLE_BUFFER = 10000


@keras.saving.register_keras_serializable(package="recipes")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing (Keras's sparse loss has none).

    Args:
        num_classes: int >= 2, width of the logits.
        label_smoothing: float in [0, 1): the target is (1 - s) * onehot + s / num_classes.
    """

    def __init__(self, num_classes, label_smoothing=0.1, name="sparse_smoothed_crossentropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"`label_smoothing` must be in [0, 1). Received: {label_smoothing}")
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.num_classes)
        return keras.losses.categorical_crossentropy(labels, y_pred, from_logits=True,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, label_smoothing=self.label_smoothing)
        return config


def warmup_cosine(peak, epochs, steps_per_epoch, warmup_epochs_of_300=WARMUP_EPOCHS,
                  final=1e-6):
    """Linear warm-up from 0 over the ET code's 20 of 300 epochs (same fraction of `epochs`),
    then cosine decay from `peak` to `final` over the remaining steps."""
    total = epochs * steps_per_epoch
    warmup = int(round(warmup_epochs_of_300 * epochs / PAPER_EPOCHS)) * steps_per_epoch
    alpha = final / peak
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(peak, max(1, total), alpha=alpha)
    return keras.optimizers.schedules.CosineDecay(0.0, max(1, total - warmup), alpha=alpha,
                                                  warmup_target=peak, warmup_steps=warmup)


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

    def __init__(self, train_size=None, image_size=224, batch_size=256, accumulation_steps=None,
                 model="resnet50", width=16, test_size=None, data_dir=None, download=True):
        if model not in MODELS:
            raise ValueError(f"`model` must be one of {MODELS}. Received: model={model!r}")
        for arg, value in (("image_size", image_size), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{arg}` must be an int >= 1. Received: {arg}={value!r}")
        if accumulation_steps is None:
            accumulation_steps = max(1, EFFECTIVE_BATCH // batch_size)
        if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int) or (
                accumulation_steps < 1):
            raise ValueError("`accumulation_steps` must be None or an int >= 1. "
                             f"Received: {accumulation_steps!r}")
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
            self._examples("train", self.train_size, shuffle_files=True))
        if self.num_train < batch_size:
            raise ValueError(f"`batch_size` ({batch_size}) exceeds the {self.num_train} "
                             "training images: lower it or raise `train_size`.")
        self.steps_per_epoch = self.num_train // batch_size
        self._test = self._examples("validation", self.test_size).map(
            lambda x, y: (image_ops.resize_center_crop(x, image_size), y),
            num_parallel_calls=tf.data.AUTOTUNE)
        self.description = (f"{model}, {self.num_train} training images at {image_size} px, "
                            f"batch {batch_size} x {accumulation_steps} accumulated, AdamW 4e-3 "
                            "warm-up + cosine, label smoothing 0.1")
        self.loss = SparseSmoothedCrossentropy(self.num_classes, 0.1)
        self.upscaled_size = image_size  # EfficientTrain's full size: the native resolution
        self.efficient_train = {"sizes": None, "magnitudes": PAPER_MAGNITUDES,
                                "value_range": (0, 255)}

    def _examples(self, split, size, shuffle_files=False):
        ds = tfds_data.load("imagenet2012", split, data_dir=self.data_dir,
                            download=self.download, shuffle_files=shuffle_files)
        return tfds_data.take(ds, size, "train_size" if split == "train" else "test_size")

    def build_model(self, variable_size=False):
        side = None if variable_size else self.image_size
        shape = (side, side, 3)
        preprocess = image_ops.normalization(image_ops.IMAGENET_MEAN, image_ops.IMAGENET_STD)
        if self.model == "resnet50":
            return resnet50(shape, self.num_classes, preprocess=preprocess)
        return small_cnn(shape, self.num_classes, width=self.width, preprocess=preprocess)

    def optimizer(self, epochs):
        # Keras counts every micro-batch in `iterations`, so the schedule runs in those steps.
        rate = warmup_cosine(4e-3, epochs, self.steps_per_epoch)
        accumulation = self.accumulation_steps if self.accumulation_steps > 1 else None
        optimizer = keras.optimizers.AdamW(rate, weight_decay=0.05,
                                           gradient_accumulation_steps=accumulation)
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        return optimizer

    def _cropped(self, seed):
        size = self.image_size
        ds = self._train.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
        return ds.map(lambda x, y: (image_ops.random_resized_crop_flip(x, size), y),
                      num_parallel_calls=tf.data.AUTOTUNE)

    def train_dataset(self, seed, image_size=None):
        if image_size not in (None, self.image_size):
            raise ValueError(f"The ImageNet recipe trains at image_size={self.image_size}; "
                             f"received {image_size} (build a recipe with that image_size).")
        augment = rand_augment(BASELINE_MAGNITUDE, seed)
        ds = self._cropped(seed).map(lambda x, y: (augment(x), y),
                                     num_parallel_calls=tf.data.AUTOTUNE)
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
        labels_only = tfds_data.load("imagenet2012", "validation", data_dir=self.data_dir,
                                     download=self.download, decoders={"image": _skip()})
        return images, tfds_data.labels(tfds_data.take(labels_only, self.test_size, "test_size"))


def _skip():
    import tensorflow_datasets as tfds

    return tfds.decode.SkipDecoding()
