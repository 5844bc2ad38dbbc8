"""What the CIFAR and Tiny ImageNet recipes share: the LeRaC / CBS training protocol.

A subclass says where its images come from (`_train_images`, `_test_images`), how many classes
and pixels it has and its EfficientTrain sizes; this base class builds the model (ResNet-18 or a
pre-activation Wide-ResNet, normalisation inside the model), the optimizer and its step decay,
the augmented training pipeline and the test arrays.

Protocol (official LeRaC code, `experiments/r18_experiments.py`, `train/resnet_train.py`, and
CBS code, `solver_base.py`, `arguments.py`): SGD, momentum 0.9, learning rate 0.1, batch 64,
rate / 10 at epochs 35, 65, 95 of 200 (LeRaC; CBS: constant), pixels mapped to [-1, 1]
(`Normalize((0.5,)*3, (0.5,)*3)`). LeRaC: k = 5 epochs, rates from 0.1 down to 1e-8 (paper
Table 1: k 2-7, 5-8 orders of magnitude); CBS: sigma 1, factor 0.9 every 5 epochs, 3x3 kernel
(`arguments.py` defaults). DoCL: the paper's defaults (T0 = 5, tau 0.1, gamma 0.9).
"""

import keras
import tensorflow as tf

from . import image_ops
from . import tfds_data
from .base import Recipe
from .models import resnet18
from .models import wide_resnet

MODELS = ("resnet18", "wrn")
# LeRaC code: lr / 10 at epoch 35 (36 for CIFAR-100), then every 30 epochs before epoch 96.
DECAY_EPOCHS_OF_200 = (35, 65, 95)
MOMENTUM = 0.9
# The official code's SGD(weight_decay=1e-4) is PyTorch's coupled L2 (added to the gradient
# before momentum); Keras decays decoupled (w -= lr * wd * w). At steady state PyTorch's decay
# is amplified 1 / (1 - momentum) by the momentum buffer, hence the Keras value below.
WEIGHT_DECAY = 1e-4 / (1 - MOMENTUM)


def step_decay(base_rate, epochs, steps_per_epoch, decay_epochs_of_200=DECAY_EPOCHS_OF_200):
    """Learning rate divided by 10 at the papers' epochs, placed at the same fractions of a run
    of `epochs` epochs (epoch 35 of 200 is 17.5 % of the run). Boundaries that fall on step 0
    or coincide in a short run are dropped."""
    boundaries = []
    for epoch in decay_epochs_of_200:
        step = int(round(epoch * epochs / 200)) * steps_per_epoch
        if step > (boundaries[-1] if boundaries else 0):
            boundaries.append(step)
    if not boundaries:
        return base_rate
    values = [base_rate / 10**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


class SmallImageRecipe(Recipe):
    """Base class: set `name`, `num_classes`, `image_size`, `crop_padding`, `et_sizes` and
    implement `_load(train_size)` -> (unbatched uint8 training dataset of known length, test
    `(x, y)` arrays). The arguments are those of the subclasses (see `cifar.Cifar10`)."""

    methods = ("conventional", "lerac", "cbs", "lerac+cbs", "docl", "efficient_train")
    num_classes = None
    image_size = None
    crop_padding = image_ops.CIFAR_PAD
    et_sizes = None

    def __init__(self, train_size=None, model="resnet18", batch_size=64, augment=True,
                 resnet_width=64, wrn_depth=52, wrn_width=2, wrn_dropout=0.3):
        if model not in MODELS:
            raise ValueError(f"`model` must be one of {MODELS}. Received: model={model!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be an int >= 1. Received: {batch_size!r}")
        self.train_size = tfds_data.check_size(train_size)
        self.model = model
        self.batch_size = batch_size
        self.augment = augment
        self.resnet_width = resnet_width
        self.wrn_depth = wrn_depth
        self.wrn_width = wrn_width
        self.wrn_dropout = wrn_dropout
        train, (self.x_test, self.y_test) = self._load(train_size)
        self._train, self.num_train = tfds_data.with_length(train)
        if self.num_train < batch_size:
            raise ValueError(f"`batch_size` ({batch_size}) exceeds the {self.num_train} "
                             "training images: lower it or raise `train_size`.")
        self.steps_per_epoch = self.num_train // batch_size
        architecture = (f"ResNet-18 (width {resnet_width})" if model == "resnet18" else
                        f"WRN-{wrn_depth}-{wrn_width} (dropout {wrn_dropout})")
        self.description = (f"{architecture}, {self.num_train} training images"
                            f"{' with crop+flip' if augment else ''}, batch {batch_size}, "
                            "SGD 0.1 momentum 0.9, step decay")
        self.loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.lerac = {"duration": 5, "min_learning_rate": 1e-8}
        self.cbs = {"sigma": 1.0, "kernel_size": 3, "factor": 0.9, "every": 5}
        self.docl = {"warmup_epochs": 5, "episode_epochs": 10}
        # EfficientTrain at the native size: the paper's 160/192/224 of 224, scaled to this
        # image size and rounded (see `et_sizes`), magnitudes None (the other arms do not use
        # RandAugment either).
        self.upscaled_size = self.image_size
        self.efficient_train = {"sizes": self.et_sizes, "magnitudes": None,
                                "value_range": (0, 255)}

    def _load(self, train_size):
        raise NotImplementedError

    def build_model(self, variable_size=False):
        side = None if variable_size else self.image_size
        shape = (side, side, 3)
        # [0, 255] -> [-1, 1], the papers' Normalize((0.5,)*3, (0.5,)*3) on [0, 1] tensors.
        preprocess = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")
        if self.model == "resnet18":
            return resnet18(shape, self.num_classes, width=self.resnet_width,
                            preprocess=preprocess)
        return wide_resnet(shape, self.num_classes, depth=self.wrn_depth, width=self.wrn_width,
                           dropout=self.wrn_dropout, preprocess=preprocess)

    def optimizer(self, epochs):
        rate = step_decay(0.1, epochs, self.steps_per_epoch)
        return keras.optimizers.SGD(rate, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)

    def _augmented(self, dataset):
        dataset = dataset.map(lambda x, y: (image_ops.to_float(x), y),
                              num_parallel_calls=tf.data.AUTOTUNE)
        if not self.augment:
            return dataset
        padding = self.crop_padding
        return dataset.map(lambda x, y: (image_ops.pad_crop_flip(x, padding), y),
                           num_parallel_calls=tf.data.AUTOTUNE)

    def _resized(self, dataset, image_size):
        if image_size is None or image_size == self.image_size:
            return dataset
        size = (image_size, image_size)
        return dataset.map(lambda x, y: (tf.image.resize(x, size), y),
                           num_parallel_calls=tf.data.AUTOTUNE)

    def train_dataset(self, seed, image_size=None):
        ds = self._train.shuffle(min(self.num_train, 50000), seed=seed,
                                 reshuffle_each_iteration=True)
        ds = self._augmented(ds).batch(self.batch_size, drop_remainder=True)
        return self._resized(ds, image_size).prefetch(tf.data.AUTOTUNE)

    def train_examples(self):
        """The training images for DoCL: finite, unbatched, in a fixed order, augmented like
        the other arms (DoCL draws and permutes the examples itself)."""
        return self._augmented(self._train)

    def test_dataset(self, image_size=None):
        ds = tf.data.Dataset.from_tensor_slices((self.x_test, self.y_test)).batch(512)
        return self._resized(ds, image_size)

    def test_arrays(self, image_size=None):
        if image_size is None or image_size == self.image_size:
            return self.x_test, self.y_test
        return tf.image.resize(self.x_test, (image_size, image_size)).numpy(), self.y_test
