"""Tiny ImageNet (ImageNet-200) recipe: the LeRaC / CBS protocol on 64 px images.

TFDS has no Tiny ImageNet: the recipe reads the standard `tiny-imagenet-200` folder (from
http://cs231n.stanford.edu/tiny-imagenet-200.zip) given by `data_dir` or $TINY_IMAGENET_DIR,
and tests run on a small generated folder of the same layout. 200 classes, 100,000 training
images, the 10,000 labelled validation images as the test set (the official test split has no
labels), as in the LeRaC code (`data_handlers.py`).

Model: ResNet-18 with the CIFAR stem (3x3 conv, stride 1, no max-pool) kept at 64 px: the
official LeRaC code runs `ResNet18(num_classes=200, kernel_size_avg_pool=8)`, i.e. the same
network pooling an 8x8 final map. `model="wrn"` gives the Wide-ResNet of the CIFAR recipes.
Protocol as `recipes/image_classification.py`, from the LeRaC code's Tiny ImageNet run (SGD
0.1, batch 64, 100 epochs, rate / 10 from epochs 32, 62, 92, LeRaC raising the rates 4 times an
epoch; `kc-recipes --recipe tiny_imagenet --print-protocol`). No augmentation, as the official
code (`augment=True`: a random 64 px crop of the image padded by 8 px, the CIFAR 4 px scaled to
64 px, and a horizontal flip). EfficientTrain at the native 64 px: the table's 160/192/224 of
224 px is 45.7/54.9/64 px, rounded to multiples of 8: 48, 48, 48, 56, 64.
"""

import tensorflow as tf

from . import data
from . import tfds_data
from .image_classification import SmallImageRecipe


def _read_jpeg(path, label):
    # Some Tiny ImageNet JPEGs are greyscale: `channels=3` turns them into RGB.
    image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
    return tf.ensure_shape(image, [TinyImageNet.image_size, TinyImageNet.image_size, 3]), label


class TinyImageNet(SmallImageRecipe):
    """Tiny ImageNet with ResNet-18 (or a Wide-ResNet), the LeRaC / CBS training protocol.

    Args:
        train_size: None for all 100,000 training images, or an int: a seeded random subset.
        model: `"resnet18"` or `"wrn"`.
        batch_size: None (the protocol's 64) or an int.
        augment: None (the protocol's: none) or a bool, random crop (8 px padding) and
            horizontal flip.
        resnet_width: ResNet-18's first-stage channels (64; stages double it).
        wrn_depth, wrn_width, wrn_dropout: the Wide-ResNet WRN-depth-width and its dropout.
        data_dir: the `tiny-imagenet-200` folder; None reads $TINY_IMAGENET_DIR.
        protocol: "paper" (default) or "official" (the authors' code where they differ).

    Example:

    ```python
    recipe = TinyImageNet(data_dir="/data/tiny-imagenet-200")
    compare.compare(recipe, ["conventional", "lerac"], range(3), 100, "runs/tiny")
    ```
    """

    name = "tiny_imagenet"
    summary = "Tiny ImageNet (200 classes, 64 px), ResNet-18 or Wide-ResNet (local folder)"
    num_classes = 200
    image_size = 64
    crop_padding = 8
    et_sizes = (48, 48, 48, 56, 64)
    protocol_key = "tiny_imagenet"

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
        data_dir=None,
        protocol="paper",
    ):
        self.data_dir = data_dir
        super().__init__(
            train_size,
            model,
            batch_size,
            augment,
            resnet_width,
            wrn_depth,
            wrn_width,
            wrn_dropout,
            protocol,
        )

    def _load(self, train_size):
        import numpy as np

        _, (train_paths, train_labels), test = data.tiny_imagenet_files(self.data_dir)
        if tfds_data.check_size(train_size) is not None:
            keep = np.random.default_rng(0).permutation(len(train_paths))[:train_size]
            train_paths, train_labels = train_paths[np.sort(keep)], train_labels[np.sort(keep)]
        train = tf.data.Dataset.from_tensor_slices((train_paths, train_labels))
        # Decoded once, then kept in memory (1.2 GB of uint8 for the full training set).
        train = train.map(_read_jpeg, num_parallel_calls=tf.data.AUTOTUNE).cache()
        x_test, y_test = tfds_data.to_numpy(
            tf.data.Dataset.from_tensor_slices(test).map(
                _read_jpeg, num_parallel_calls=tf.data.AUTOTUNE
            )
        )
        return train, (x_test.astype("float32"), y_test)
