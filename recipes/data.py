"""Datasets for the recipes: offline copies that ship in package registries, TFDS otherwise."""

import gzip
import os

import numpy as np

FASHION_MNIST_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
FASHION_MNIST_HINT = (
    "Fashion-MNIST is not installed. On Debian/Ubuntu: `sudo apt-get install "
    "dataset-fashion-mnist` (31 MB, MIT licence), or `bash scripts/setup.sh --data`; or set "
    "FASHION_MNIST_DIR to a folder holding the four IDX .gz files."
)


class DatasetUnavailable(ValueError):
    """A dataset the recipe needs is not on this machine; the message says how to get it."""


def _read_idx(path, offset):
    with gzip.open(path) as handle:
        return np.frombuffer(handle.read(), np.uint8, offset=offset)


def fashion_mnist(train_size=None, seed=0):
    """Fashion-MNIST from the Debian package's IDX files: `((x_train, y_train), (x_test, y_test))`.

    Images are float32 in [0, 1] with shape `(n, 28, 28, 1)`, labels int32. `train_size` takes a
    class-stratified random subset of the 60,000 training images (the test set stays whole).
    """
    files = {
        "x_train": ("train-images-idx3-ubyte.gz", 16),
        "y_train": ("train-labels-idx1-ubyte.gz", 8),
        "x_test": ("t10k-images-idx3-ubyte.gz", 16),
        "y_test": ("t10k-labels-idx1-ubyte.gz", 8),
    }
    paths = {key: os.path.join(FASHION_MNIST_DIR, name) for key, (name, _) in files.items()}
    if not all(os.path.exists(p) for p in paths.values()):
        raise DatasetUnavailable(FASHION_MNIST_HINT)
    arrays = {key: _read_idx(paths[key], offset) for key, (_, offset) in files.items()}
    x_train = arrays["x_train"].reshape(-1, 28, 28, 1).astype("float32") / 255.0
    x_test = arrays["x_test"].reshape(-1, 28, 28, 1).astype("float32") / 255.0
    y_train = arrays["y_train"].astype("int32")
    y_test = arrays["y_test"].astype("int32")
    if train_size is not None and train_size < len(x_train):
        rng = np.random.default_rng(seed)
        per_class = train_size // 10
        keep = np.concatenate(
            [rng.choice(np.flatnonzero(y_train == c), per_class, replace=False) for c in range(10)]
        )
        keep = rng.permutation(keep)
        x_train, y_train = x_train[keep], y_train[keep]
    return (x_train, y_train), (x_test, y_test)
