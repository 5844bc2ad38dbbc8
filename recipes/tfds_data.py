"""TFDS datasets for the recipes: loading with a clear error, sub-splits and numpy copies.

Recipes call `tfds.load` exactly as a user with a network would; `load` only turns TFDS's
failures (no network, a manual download missing, no data under `download=False`) into a
`DatasetUnavailable` whose message says how to get the data. Tests run the same code under
`tfds.testing.mock_data`.
"""

import numpy as np

from .data import DatasetUnavailable


def build_command(name, manual_dir=False):
    """The shell command that downloads and prepares TFDS dataset `name`."""
    command = f"tfds build {name}"
    if manual_dir:
        command += " --manual_dir /path/to/downloaded/files"
    return command


def unavailable_message(name, error, data_dir=None, manual=None):
    """What to tell the user when `tfds.load(name)` failed with `error`."""
    where = data_dir or "$TFDS_DATA_DIR (default ~/tensorflow_datasets)"
    lines = [
        f"TFDS dataset {name!r} is not available under {where} ({type(error).__name__}: "
        f"{str(error).splitlines()[0] if str(error) else ''})."
    ]
    if manual:
        lines.append(f"It needs a manual download: {manual.strip()}")
    lines.append(
        f"Prepare it with network access: `{build_command(name, bool(manual))}`"
        + (f" --data_dir {data_dir}" if data_dir else "")
        + ", then run the recipe again (pass the same data_dir)."
    )
    return " ".join(lines)


def load(name, split, data_dir=None, download=True, as_supervised=True, **kwargs):
    """`tfds.load(name, split=split, ...)`, raising `DatasetUnavailable` if it cannot load.

    Args:
        name: TFDS name, e.g. `"cifar10"`.
        split: TFDS split string; sub-splits such as `"train[:500]"` work.
        data_dir: TFDS data folder, None for TFDS's default (`$TFDS_DATA_DIR`).
        download: let TFDS download and prepare the data if it is missing.
        as_supervised: `(input, label)` tuples instead of feature dicts.
        **kwargs: passed to `tfds.load` (e.g. `shuffle_files`, `decoders`).
    """
    import tensorflow_datasets as tfds

    try:
        return tfds.load(
            name,
            split=split,
            data_dir=data_dir,
            download=download,
            as_supervised=as_supervised,
            **kwargs,
        )
    except Exception as error:  # noqa: BLE001 - TFDS raises AssertionError, OSError, ...
        try:
            manual = tfds.builder(name, data_dir=data_dir).MANUAL_DOWNLOAD_INSTRUCTIONS
        except Exception:  # noqa: BLE001 - the builder itself may be what failed
            manual = None
        raise DatasetUnavailable(unavailable_message(name, error, data_dir, manual)) from error


def check_size(size, name="train_size"):
    """`size` if it is None or an int >= 1; `ValueError` naming `name` otherwise."""
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"`{name}` must be None or an int >= 1. Received: {name}={size!r}")
    return size


def take(dataset, size, name="train_size"):
    """The first `size` examples of `dataset` (all of it for None). `tfds.load` with a
    `"train[:size]"` split reads less, but a mocked TFDS ignores sub-splits; `take` is exact in
    both."""
    return dataset if check_size(size, name) is None else dataset.take(size)


def with_length(dataset):
    """`(dataset, n)`: a finite dataset that reports its length n, counted if unknown.

    Filters and mocked TFDS datasets have an unknown length; Keras then cannot tell steps per
    epoch (LeRaC and the progress bar need them), so it is counted once and asserted.
    """
    import tensorflow as tf

    count = int(dataset.cardinality())
    if count == tf.data.INFINITE_CARDINALITY:
        raise ValueError("The dataset is infinite: a recipe's training split must be finite.")
    if count < 0:
        count = int(dataset.reduce(0, lambda n, _: n + 1))
    return dataset.apply(tf.data.experimental.assert_cardinality(count)), count


def to_numpy(dataset, batch_size=1024):
    """`(x, y)` numpy arrays from a finite, unbatched dataset of fixed-shape `(x, y)` pairs.

    `y` comes back as int32 (class labels). `x` may be a dataset-sized array: use it for test
    sets (for McNemar's test) and small training sets only.
    """
    xs, ys = [], []
    for x, y in dataset.batch(batch_size).as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    if not xs:
        raise DatasetUnavailable("The dataset is empty: nothing to evaluate or train on.")
    return np.concatenate(xs), np.concatenate(ys).astype("int32")


def labels(dataset, batch_size=4096):
    """The labels of a finite `(x, y)` dataset as an int32 array (images are not kept)."""
    return np.concatenate(
        [y for y in dataset.map(lambda x, y: y).batch(batch_size).as_numpy_iterator()]
    ).astype("int32")
