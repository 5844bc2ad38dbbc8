"""Fashion-MNIST recipe: the offline main job (Debian `dataset-fashion-mnist`).

A small CNN (three conv-BN-ReLU stages, Flatten head) on a class-balanced subset of the training
set, validated after every epoch on a class-balanced split of the other training images (the
protocol was chosen on it, never on the test set), and tested on the full 10,000-image test
set. Every curriculum runs at the package's defaults, which are its paper's proportions of the
run (LeRaC: k = 5 % of the fit; CBS: 0.9 every 5 of 200 epochs; DoCL: the official warm-up and
episode ends scaled to the run); only LeRaC's lowest rate is set, from the authors' code.

EfficientTrain and its baseline (`conventional_upscaled`) train on images upscaled to
`upscaled_size` (the curriculum needs room to crop) with a model of variable input size (a
global-average-pooling head); to keep the main job inside its time budget they use their own,
cheaper protocol: fewer training images (`upscaled_train_size`) at 42 px. Every value and its
source: recipes/fashion_mnist_protocol.py (`kc-recipes --recipe fashion_mnist --print-protocol`).
"""

import keras
import tensorflow as tf

from . import data
from .base import Recipe
from .models import small_cnn


class FashionMNIST(Recipe):
    name = "fashion_mnist"
    summary = "Fashion-MNIST, small CNN (offline: Debian package dataset-fashion-mnist)"
    methods = (
        "conventional",
        "lerac",
        "cbs",
        "lerac+cbs",
        "docl",
        "conventional_upscaled",
        "efficient_train",
    )

    # Constructor arguments (`--set NAME=VALUE`, `--train-size`) and the rows they replace.
    protocol_options = {
        "train_size": "train_size",
        "batch_size": "batch",
        "width": "width",
        "validation_size": "validation_size",
        "upscaled_train_size": "upscaled_train_size",
    }

    def __init__(
        self,
        train_size=None,
        batch_size=None,
        width=None,
        validation_size=None,
        upscaled_train_size=None,
    ):
        table = self.protocol(
            train_size=train_size,
            batch_size=batch_size,
            width=width,
            validation_size=validation_size,
            upscaled_train_size=upscaled_train_size,
        )
        self.train_size = table["train_size"]
        self.batch_size = table["batch"]
        self.width = table["width"]
        self.validation_size = table["validation_size"]
        (self.x_train, self.y_train), (self.x_val, self.y_val), (self.x_test, self.y_test) = (
            data.fashion_mnist(self.train_size, validation_size=self.validation_size)
        )
        # The EfficientTrain pair's own (cheaper) protocol: the first images of the subset,
        # which is shuffled and class-balanced.
        self.upscaled_train_size = min(table["upscaled_train_size"], len(self.x_train))
        self.learning_rate = table["learning_rate"]
        self.description = (
            f"small CNN (width {self.width}, Flatten head), {len(self.x_train)} training images "
            f"({self.upscaled_train_size} at {table['upscaled_size']} px for the EfficientTrain "
            f"pair), validation {len(self.x_val)} held-out training images, batch "
            f"{self.batch_size}, Adam {self.learning_rate:g}"
        )
        self.steps_per_epoch = len(self.x_train) // self.batch_size
        self.upscaled_steps_per_epoch = self.upscaled_train_size // self.batch_size
        self.loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.lerac = table.section("lerac")
        self.cbs = table.section("cbs")
        self.docl = table.section("docl")
        self.upscaled_size = table["upscaled_size"]

    @classmethod
    def protocol_rows(cls, **options):
        """The values below, each with why it was chosen (recipes/fashion_mnist_protocol.py)."""
        from .fashion_mnist_protocol import fashion_mnist_rows

        return fashion_mnist_rows()

    @classmethod
    def run_length(cls, length, **options):
        """quick: 4 epochs on 2,000 images, 1 seed (about a minute for every arm); default: the
        main job (8 epochs, 3 seeds); paper: 200 epochs, 3 seeds (no paper trains on
        Fashion-MNIST: 200 is the CBS code's CIFAR epoch count, the longest schedule of the
        image papers' CIFAR runs; recipes/fashion_mnist_protocol.py)."""
        if length not in cls.LENGTHS:
            raise ValueError(f"`length` must be one of {cls.LENGTHS}. Received: {length!r}")
        table = cls.protocol()
        if length == "quick":
            return {"epochs": 4, "seeds": 1, "train_size": 2000}
        if length == "paper":
            return {"epochs": table["paper_epochs"], "seeds": 3}
        return {"epochs": table["epochs"], "seeds": 3}

    def build_model(self, variable_size=False):
        if variable_size:  # the EfficientTrain pair: images of every stage's size
            return small_cnn((None, None, 1), 10, width=self.width, head="gap")
        return small_cnn((28, 28, 1), 10, width=self.width, head="flatten")

    def _adam(self, steps):
        """Adam whose rate decays along a cosine to 0 over the arm's `steps` optimizer steps."""
        schedule = keras.optimizers.schedules.CosineDecay(self.learning_rate, max(1, steps))
        return keras.optimizers.Adam(schedule)

    def optimizer(self, epochs):
        return self._adam(epochs * self.steps_per_epoch)

    def regime(self, name, epochs):
        """Every arm: Adam with a cosine over its own steps (DoCL's epochs shrink with its
        subsets, the EfficientTrain pair trains fewer images per epoch)."""
        from .regimes import Regime

        if name != "default":
            raise ValueError(f"Recipe {self.name!r} has no regime {name!r}.")
        return Regime("default", lambda epoch_steps, callbacks: self._adam(sum(epoch_steps)))

    def _resized(self, dataset, image_size):
        if image_size is None:
            return dataset
        size = (image_size, image_size)
        return dataset.map(
            lambda x, y: (tf.image.resize(x, size), y), num_parallel_calls=tf.data.AUTOTUNE
        )

    def train_dataset(self, seed, image_size=None):
        x, y = self.x_train, self.y_train
        if image_size is not None:  # the EfficientTrain pair's protocol
            x, y = x[: self.upscaled_train_size], y[: self.upscaled_train_size]
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(self.batch_size, drop_remainder=True)
        return self._resized(ds, image_size).prefetch(2)

    def train_examples(self):
        """Unbatched training examples, for stages that draw their own batches (DoCL)."""
        return self.x_train, self.y_train

    def validation_dataset(self, image_size=None):
        ds = tf.data.Dataset.from_tensor_slices((self.x_val, self.y_val)).batch(512)
        return self._resized(ds, image_size)

    def test_dataset(self, image_size=None):
        ds = tf.data.Dataset.from_tensor_slices((self.x_test, self.y_test)).batch(512)
        return self._resized(ds, image_size)

    def test_arrays(self, image_size=None):
        if image_size is None:
            return self.x_test, self.y_test
        resized = tf.image.resize(self.x_test, (image_size, image_size)).numpy()
        return resized, self.y_test
