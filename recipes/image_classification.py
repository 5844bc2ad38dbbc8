"""What the CIFAR and Tiny ImageNet recipes share: the LeRaC / CBS / DoCL training protocols.

A subclass says where its images come from (`_load`), how many classes and pixels it has and
its EfficientTrain sizes; this base class builds the model (ResNet-18 or a pre-activation
Wide-ResNet, normalisation inside the model), the optimizers of its regimes, the training
pipeline and the test arrays.

Every value comes from the recipe's protocol rows (recipes/image_protocols.py, printed by
`kc-recipes --recipe NAME --print-protocol`), read from the authors' code: the LeRaC code for
the conventional, LeRaC, LeRaC + CBS and EfficientTrain arms (SGD 0.1, momentum 0.9, weight
decay 1e-4, batch 64, rate / 10 at the code's epochs, no augmentation, the official LeRaC
code's lowest rate and k), the CBS code for the CBS arm and its `conventional_cbs` baseline
(rate / 10 at epochs 30, 60, 90, weight decay 5e-4), DoCL's protocol for the DoCL arm and its
`conventional_docl` baseline (episode-tied cosine, Mix-up; recipes/docl_protocol.py).
"""

import keras
import tensorflow as tf

from . import image_ops
from . import image_protocols
from . import tfds_data
from .base import Recipe
from .models import resnet18
from .models import wide_resnet
from .protocol_regimes import ProtocolRegimes
from .regimes import Regime

MODELS = ("resnet18", "wrn")
MOMENTUM = image_protocols.MOMENTUM
# The LeRaC code's ResNet-18 on CIFAR-10: rate / 10 from 0-based epochs 34, 64, 94 of 200.
DECAY_EPOCHS = (34, 64, 94)
WEIGHT_DECAY = image_protocols.decoupled(1e-4)


def step_decay(base_rate, epochs, steps_per_epoch, decay_epochs=DECAY_EPOCHS, of_epochs=200):
    """Learning rate divided by 10 from each of `decay_epochs` (0-based) of a run of
    `of_epochs`, placed at the same fractions of a run of `epochs` epochs (epoch 34 of 200 is
    17 % of the run). Boundaries that fall on step 0 or coincide in a short run are dropped."""
    boundaries = []
    for epoch in decay_epochs:
        step = int(round(epoch * epochs / of_epochs)) * steps_per_epoch
        # PiecewiseConstantDecay keeps a value up to and including its boundary: the first
        # step of the decay epoch must already see the lower rate.
        if step - 1 > (boundaries[-1] if boundaries else -1) and step > 0:
            boundaries.append(step - 1)
    if not boundaries:
        return base_rate
    values = [base_rate / 10**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


class SgdRegimes(ProtocolRegimes):
    """The optimizers of a recipe whose protocol table (`self.protocol_table`) has the rows of
    recipes/image_protocols.py: SGD with the LeRaC code's step decay ("default" regime), the
    CBS code's ("cbs", when `regimes` names it) and DoCL's episode-tied cosine ("docl")."""

    regimes = {"cbs": "cbs", "docl": "docl"}

    def make_optimizer(self, rate, regime):
        table = self.protocol_table
        if regime == "docl":
            return keras.optimizers.SGD(
                rate,
                momentum=table["momentum"],
                nesterov=True,
                weight_decay=table["docl:weight_decay"],
            )
        decay = table["cbs:weight_decay" if regime == "cbs" else "weight_decay"]
        return keras.optimizers.SGD(rate, momentum=table["momentum"], weight_decay=decay)

    def optimizer(self, epochs):
        """The LeRaC code's SGD and step decay, its epochs scaled to the run."""
        table = self.protocol_table
        rate = step_decay(
            table["learning_rate"],
            epochs,
            self.steps_per_epoch,
            table["decay_epochs"],
            table["epochs"],
        )
        return self.make_optimizer(rate, "default")

    def regime(self, name, epochs):
        if name == "cbs" and "cbs" in self.regimes.values():
            table = self.protocol_table

            def optimizer(epoch_steps, callbacks):
                rate = step_decay(
                    table["cbs:learning_rate"],
                    epochs,
                    self.steps_per_epoch,
                    table["cbs:decay_epochs"],
                    table["cbs:epochs"],
                )
                return self.make_optimizer(rate, "cbs")

            return Regime("cbs", optimizer)
        return super().regime(name, epochs)


class SmallImageRecipe(SgdRegimes, Recipe):
    """Base class: set `name`, `num_classes`, `image_size`, `crop_padding`, `et_sizes`,
    `protocol_key` (its entry in recipes/image_protocols.py) and implement `_load(train_size)`
    -> (unbatched uint8 training dataset of known length, test `(x, y)` arrays). The arguments
    are those of the subclasses (see `cifar.Cifar10`)."""

    methods = ("conventional", "lerac", "cbs", "lerac+cbs", "docl", "efficient_train")
    num_classes = None
    image_size = None
    crop_padding = image_ops.CIFAR_PAD
    et_sizes = None
    protocol_key = None
    protocol_options = {"batch_size": "batch", "augment": "augmentation"}

    @classmethod
    def protocol_rows(cls, model="resnet18", wrn_depth=52, wrn_width=2, wrn_dropout=0.3, **unused):
        if model not in MODELS:
            raise ValueError(f"`model` must be one of {MODELS}. Received: model={model!r}")
        return image_protocols.small_image_rows(
            cls.protocol_key, model, (wrn_depth, wrn_width, wrn_dropout), cls.et_sizes
        )

    def __init__(
        self,
        train_size=None,
        model="resnet18",
        batch_size=None,
        augment=None,
        resnet_width=64,
        wrn_depth=52,
        wrn_width=2,
        wrn_dropout=0.3,
        protocol="paper",
    ):
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"`batch_size` must be an int >= 1. Received: {batch_size!r}")
        table = self.protocol_table = type(self).protocol(
            protocol,
            model=model,
            batch_size=batch_size,
            augment=augment,
            wrn_depth=wrn_depth,
            wrn_width=wrn_width,
            wrn_dropout=wrn_dropout,
        )
        self.train_size = tfds_data.check_size(train_size)
        self.model = model
        self.batch_size = batch_size = table["batch"]
        self.augment = bool(table["augmentation"])
        self.resnet_width = resnet_width
        self.wrn_depth = wrn_depth
        self.wrn_width = wrn_width
        self.wrn_dropout = wrn_dropout
        train, (self.x_test, self.y_test) = self._load(train_size)
        self._train, self.num_train = tfds_data.with_length(train)
        if self.num_train < batch_size:
            raise ValueError(
                f"`batch_size` ({batch_size}) exceeds the {self.num_train} "
                "training images: lower it or raise `train_size`."
            )
        self.steps_per_epoch = self.num_train // batch_size
        architecture = (
            f"ResNet-18 (width {resnet_width})"
            if model == "resnet18"
            else f"WRN-{wrn_depth}-{wrn_width} (dropout {wrn_dropout})"
        )
        self.description = (
            f"{architecture}, {self.num_train} training images"
            f"{' with crop+flip' if self.augment else ''}, batch {batch_size}, "
            f"SGD 0.1 momentum 0.9, {table.protocol} protocol"
        )
        self.loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.lerac = self.lerac_arguments()
        self.cbs = table.section("cbs")
        self.docl = table.section("docl")
        self.upscaled_size = self.image_size
        self.efficient_train = dict(table.section("efficient_train"), value_range=(0, 255))

    def _load(self, train_size):
        raise NotImplementedError

    def build_model(self, variable_size=False):
        side = None if variable_size else self.image_size
        shape = (side, side, 3)
        # [0, 255] -> [-1, 1], the papers' Normalize((0.5,)*3, (0.5,)*3) on [0, 1] tensors.
        preprocess = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")
        if self.model == "resnet18":
            return resnet18(shape, self.num_classes, width=self.resnet_width, preprocess=preprocess)
        return wide_resnet(
            shape,
            self.num_classes,
            depth=self.wrn_depth,
            width=self.wrn_width,
            dropout=self.wrn_dropout,
            preprocess=preprocess,
        )

    def _augmented(self, dataset):
        dataset = dataset.map(
            lambda x, y: (image_ops.to_float(x), y), num_parallel_calls=tf.data.AUTOTUNE
        )
        if not self.augment:
            return dataset
        padding = self.crop_padding
        return dataset.map(
            lambda x, y: (image_ops.pad_crop_flip(x, padding), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    def _resized(self, dataset, image_size):
        if image_size is None or image_size == self.image_size:
            return dataset
        size = (image_size, image_size)
        return dataset.map(
            lambda x, y: (tf.image.resize(x, size), y), num_parallel_calls=tf.data.AUTOTUNE
        )

    def train_dataset(self, seed, image_size=None):
        ds = self._train.shuffle(
            min(self.num_train, 50000), seed=seed, reshuffle_each_iteration=True
        )
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
