"""Fashion-MNIST recipe: the offline default of the comparison (Debian `dataset-fashion-mnist`).

A small CNN (three conv-BN-ReLU stages) on a class-balanced subset of the training set, evaluated
on the full 10,000-image test set. The curricula use the papers' settings scaled to a short run:
LeRaC with lowest rate 1e-8 (6 orders below Adamax's 2e-3, paper Table 1: 5 to 8) and k = 2 epochs.
"""

import keras
import tensorflow as tf

from . import data
from .base import Recipe
from .models import small_cnn


class FashionMNIST(Recipe):
    name = "fashion_mnist"
    summary = "Fashion-MNIST, small CNN (offline: Debian package dataset-fashion-mnist)"
    methods = ("conventional", "lerac", "cbs", "lerac+cbs", "docl", "conventional_upscaled",
               "efficient_train")

    def __init__(self, train_size=12000, batch_size=128, width=16):
        self.train_size = train_size
        self.batch_size = batch_size
        self.width = width
        (self.x_train, self.y_train), (self.x_test, self.y_test) = data.fashion_mnist(train_size)
        self.description = (f"small CNN (width {width}), {len(self.x_train)} training images, "
                            f"batch {batch_size}, Adamax 2e-3")
        self.steps_per_epoch = len(self.x_train) // batch_size
        self.loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.lerac = {"duration": 2, "min_learning_rate": 1e-8}
        # CBS paper: sigma 1, factor 0.9, kernel 3, decay every 2-5 epochs (here every epoch of
        # a short run). DoCL: one warm-start epoch, episodes of 2 sampling epochs + a refresh.
        self.cbs = {"sigma": 1.0, "kernel_size": 3, "factor": 0.9, "every": 1}
        self.docl = {"warmup_epochs": 1, "episode_epochs": 2}
        # EfficientTrain needs room to crop: its arm and its own baseline train on images
        # upscaled 2x (56 px), with the paper's 5-stage table scaled to 56 (40, 40, 40, 48, 56).
        self.upscaled_size = 56

    @classmethod
    def protocol_rows(cls, **options):
        """The values below, each with why it was chosen (recipes/fashion_mnist_protocol.py)."""
        from .fashion_mnist_protocol import fashion_mnist_rows

        return fashion_mnist_rows()

    def build_model(self, variable_size=False):
        shape = (None, None, 1) if variable_size else (28, 28, 1)
        return small_cnn(shape, 10, width=self.width)

    def optimizer(self, epochs):
        return keras.optimizers.Adamax(2e-3)

    def _resized(self, dataset, image_size):
        if image_size is None:
            return dataset
        size = (image_size, image_size)
        return dataset.map(lambda x, y: (tf.image.resize(x, size), y),
                           num_parallel_calls=tf.data.AUTOTUNE)

    def train_dataset(self, seed, image_size=None):
        ds = tf.data.Dataset.from_tensor_slices((self.x_train, self.y_train))
        ds = ds.shuffle(len(self.x_train), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(self.batch_size, drop_remainder=True)
        return self._resized(ds, image_size).prefetch(2)

    def train_examples(self):
        """Unbatched training examples, for stages that draw their own batches (DoCL)."""
        return self.x_train, self.y_train

    def test_dataset(self, image_size=None):
        ds = tf.data.Dataset.from_tensor_slices((self.x_test, self.y_test)).batch(512)
        return self._resized(ds, image_size)

    def test_arrays(self, image_size=None):
        if image_size is None:
            return self.x_test, self.y_test
        resized = tf.image.resize(self.x_test, (image_size, image_size)).numpy()
        return resized, self.y_test
