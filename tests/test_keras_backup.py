"""Keras's `BackupAndRestore` traps documented in docs/backends.md, and their workarounds.

The two Keras behaviours are asserted as they are today: when a Keras release changes them,
these tests fail and the page must be updated. The workaround class is the page's own code.
"""

import json
import os
import re

import keras
import numpy as np
import pytest

PAGE = os.path.join(os.path.dirname(__file__), "..", "docs", "backends.md")


def documented_backup_class():
    """`EpochAwareBackupAndRestore` as docs/backends.md defines it."""
    with open(PAGE) as page:
        text = page.read()
    block = re.search(
        r"<!-- file: epoch_aware_backup.py -->\n```python\n(.*?)```", text, re.DOTALL
    ).group(1)
    namespace = {}
    exec(compile(block, "epoch_aware_backup.py", "exec"), namespace)
    return namespace["EpochAwareBackupAndRestore"]


class Kill(keras.callbacks.Callback):
    """Raises after batch `batch` of epoch `epoch`, as a preempted process stops."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt("killed")


def fit(directory, backup_class, kill=None, **backup):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((64, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    callbacks = [backup_class(directory, **backup)] + ([kill] if kill else [])
    epochs = []

    class Epochs(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs.append(epoch)

    try:
        model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=callbacks + [Epochs()])
    except KeyboardInterrupt:
        pass
    return epochs


def recorded_epoch(directory):
    with open(os.path.join(directory, "training_metadata.json")) as metadata:
        return json.load(metadata)["epoch"]


@pytest.mark.parametrize("documented", [False, True], ids=["keras", "documented_subclass"])
def test_per_batch_backups_after_a_resume_record_the_epoch(tmp_path, documented):
    backup = documented_backup_class() if documented else keras.callbacks.BackupAndRestore
    directory = str(tmp_path / "backup")
    assert fit(directory, backup, Kill(2, 3), save_freq=1) == [0, 1, 2]
    assert recorded_epoch(directory) == 2
    # Resumed at epoch 2, killed again within it.
    assert fit(directory, backup, Kill(2, 5), save_freq=1) == [2]
    if documented:
        assert recorded_epoch(directory) == 2
        assert fit(directory, backup) == [2, 3, 4]
    else:
        # Keras's counter restarted at 0: the next resume starts the run over.
        assert recorded_epoch(directory) == 0
        assert fit(directory, backup) == [0, 1, 2, 3, 4]


def test_a_truncated_backup_is_fatal_unless_double_checkpoint(tmp_path):
    for double, directory in ((False, tmp_path / "single"), (True, tmp_path / "double")):
        directory = str(directory)
        fit(directory, keras.callbacks.BackupAndRestore, Kill(2, 3), double_checkpoint=double)
        # The kill came while the next backup was being written.
        open(os.path.join(directory, "latest.weights.h5"), "w").close()
        if double:
            assert fit(directory, keras.callbacks.BackupAndRestore, double_checkpoint=True) == [
                1,
                2,
                3,
                4,
            ]
        else:
            with pytest.raises(OSError):
                fit(directory, keras.callbacks.BackupAndRestore)
