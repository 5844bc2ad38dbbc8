"""CIFAR-10 and CIFAR-100 recipes (TFDS `cifar10`, `cifar100`): the LeRaC / CBS protocol.

ResNet-18 (CIFAR variant, as in both papers' code) or a pre-activation Wide-ResNet
(`model="wrn"`; WRN-52-2 with dropout 0.3 by default, the network of `Wide_ResNet(52, 2, 0.3)`
in the LeRaC and CBS code; `wrn_depth=28, wrn_width=10` gives the standard WRN-28-10). Every
training value is a row of the recipe's protocol (`kc-recipes --recipe cifar10
--print-protocol`, recipes/image_protocols.py), with its source; in short:

- No augmentation, as the LeRaC and CBS code (`augment=True`: random 32 px crop of the image
  zero-padded by 4 px, plus a horizontal flip).
- EfficientTrain runs at the native 32 px: the ET table's 160/192/224 of 224 px is 22.9/27.4/32
  px at 32 px; the sizes are rounded to multiples of 4 (24, 24, 24, 28, 32) so that each stage
  keeps whole, even frequency bands and a stride-8 network still sees integral feature maps.
  The ET paper has no CIFAR experiment: this is a scaled-down use of its schedule, and
  `efficient_train` is compared with `conventional` (same model, same 32 px test images).
- `train_size` takes the first `train_size` images of TFDS's (already shuffled) training split;
  the 10,000 test images stay whole.
"""

import numpy as np

from . import tfds_data
from .image_classification import SmallImageRecipe


class _Cifar(SmallImageRecipe):
    """CIFAR with ResNet-18 or a Wide-ResNet, the LeRaC / CBS training protocol.

    Args:
        train_size: None for all 50,000 training images, or an int: the first `train_size`.
        model: `"resnet18"` or `"wrn"`.
        batch_size: None (the protocol's 64) or an int.
        augment: None (the protocol's: none) or a bool, random crop (4 px padding) and
            horizontal flip.
        resnet_width: ResNet-18's first-stage channels (64; stages double it).
        wrn_depth, wrn_width, wrn_dropout: the Wide-ResNet WRN-depth-width and its dropout.
        data_dir: TFDS data folder; None for $TFDS_DATA_DIR.
        download: let TFDS download and prepare the data.
        protocol: "paper" (default; where the paper is silent, the authors' code) or
            "official" (the authors' code wherever the two differ).

    Example:

    ```python
    recipe = Cifar10(model="wrn", wrn_depth=28, wrn_width=10, wrn_dropout=0.0)
    compare.compare(recipe, ["conventional", "lerac", "cbs"], range(3), 200, "runs/cifar10")
    ```
    """

    tfds_name = None
    image_size = 32
    et_sizes = (24, 24, 24, 28, 32)

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
        download=True,
        protocol="paper",
    ):
        self.data_dir = data_dir
        self.download = download
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
        import tensorflow as tf

        def arrays(split, size=None):
            ds = tfds_data.load(
                self.tfds_name, split, data_dir=self.data_dir, download=self.download
            )
            return tfds_data.to_numpy(tfds_data.take(ds, size))

        x_train, y_train = arrays("train", train_size)
        x_test, y_test = arrays("test")
        train = tf.data.Dataset.from_tensor_slices((x_train, y_train))
        return train, (x_test.astype(np.float32), y_test)


class Cifar10(_Cifar):
    __doc__ = "CIFAR-10 (TFDS `cifar10`, 10 classes). " + _Cifar.__doc__
    name = "cifar10"
    summary = "CIFAR-10, ResNet-18 or Wide-ResNet (TFDS download)"
    tfds_name = "cifar10"
    num_classes = 10
    protocol_key = "cifar10"


class Cifar100(_Cifar):
    __doc__ = "CIFAR-100 (TFDS `cifar100`, 100 classes). " + _Cifar.__doc__
    name = "cifar100"
    summary = "CIFAR-100, ResNet-18 or Wide-ResNet (TFDS download)"
    tfds_name = "cifar100"
    num_classes = 100
    protocol_key = "cifar100"
