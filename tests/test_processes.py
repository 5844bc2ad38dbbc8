"""`kc.split_batches` and the per-process cut, in one process (the 2-process runs are in
tests/test_multihost.py): process p keeps rows [p b / N, (p + 1) b / N) of every global batch
and the dataset keeps its length."""

import numpy as np
import pytest
import tensorflow as tf

import keras_curriculum as kc
from keras_curriculum import processes


def _batches(drop_remainder=True):
    x = np.arange(40, dtype="float32").reshape(20, 2)
    return tf.data.Dataset.from_tensor_slices((x, np.arange(20))).batch(
        8, drop_remainder=drop_remainder
    )


@pytest.fixture
def second_of_two(monkeypatch):
    monkeypatch.setattr(processes, "process_count", lambda: 2)
    monkeypatch.setattr(processes, "process_index", lambda: 1)
    monkeypatch.setattr(processes, "data_devices", lambda: 4)


def test_one_process_gets_the_dataset_unchanged():
    data = _batches(drop_remainder=False)
    assert kc.split_batches(data) is data


def test_each_process_keeps_its_rows_of_every_global_batch(second_of_two):
    data = kc.split_batches(_batches())
    assert int(data.cardinality()) == 2  # a map keeps the length `fit` counts steps in
    labels = [y.numpy().tolist() for _, y in data]
    assert labels == [[4, 5, 6, 7], [12, 13, 14, 15]]
    assert data.element_spec[0].shape.as_list() == [4, 2]


def test_a_partial_last_batch_is_refused_on_several_processes(second_of_two):
    with pytest.raises(ValueError, match="drop_remainder=True"):
        kc.split_batches(_batches(drop_remainder=False))


def test_a_global_batch_the_devices_cannot_share_is_refused(second_of_two):
    data = _batches().unbatch().batch(6, drop_remainder=True)
    with pytest.raises(ValueError, match=r"\(6, the global batch\) must be a multiple of the 4"):
        kc.split_batches(data)
