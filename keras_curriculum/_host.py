"""Reading device values on the host, without the warnings a direct conversion raises."""

import keras
from keras import ops


def to_numpy(value):
    """`keras.ops.convert_to_numpy(value)`, reading a `keras.Variable` through `.value`.

    On JAX, numpy 2 converts a Keras variable through its `__array__`, which takes no `copy`
    argument, and warns (DeprecationWarning) at every read; its `.value` is a plain array.
    """
    if isinstance(value, keras.Variable):
        value = value.value
    return ops.convert_to_numpy(value)
