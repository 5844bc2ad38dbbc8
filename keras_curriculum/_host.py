"""Reading device values on the host, without the warnings a direct conversion raises."""

import keras
from keras import ops


def to_numpy(value):
    """`keras.ops.convert_to_numpy(value)`, reading a `keras.Variable` through a tensor copy.

    numpy 2 converts a variable through its `__array__`, which takes no `copy` argument on the
    TensorFlow and JAX backends, and warns (DeprecationWarning) at every read; a tensor of its
    value converts silently.
    """
    if isinstance(value, keras.Variable):
        value = ops.copy(value)
    return ops.convert_to_numpy(value)
