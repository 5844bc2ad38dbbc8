"""`tf.data` helpers shared by the curricula that change how many batches an epoch has."""

import importlib


class _LazyTensorFlow:
    """Imports TensorFlow on first use, so `import keras_curriculum` works where only JAX is."""

    def __getattr__(self, name):
        return getattr(importlib.import_module("tensorflow"), name)


tf = _LazyTensorFlow()


def zip_with_fixed_cardinality(batches, max_batches):
    """`batches` (unknown length <= max_batches) reported as `max_batches` long.

    `zip` takes the smaller cardinality: `range(max_batches)` is finite and known, the second
    input is `batches` followed by an endless-but-empty tail, which has infinite static
    cardinality and ends the sequence at run time as soon as `batches` is exhausted.
    """

    def empty():
        return iter(())

    tail = tf.data.Dataset.from_generator(
        empty, output_signature=batches.element_spec
    ).repeat()
    zipped = tf.data.Dataset.zip(tf.data.Dataset.range(max_batches), batches.concatenate(tail))
    return zipped.map(lambda _, batch: batch)
