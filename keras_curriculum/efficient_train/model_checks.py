"""What EfficientTrain checks of its arguments and of the model before the first step."""

import keras

from keras_curriculum._validation import check_number


def check_value_range(value_range):
    """`value_range` as a `(low, high)` tuple of numbers with low < high."""
    if not isinstance(value_range, (list, tuple)) or len(value_range) != 2:
        raise TypeError(
            f"`value_range` must be a (low, high) pair of numbers. "
            f"Received: value_range={value_range!r}"
        )
    low, high = (check_number("value_range", v) for v in value_range)
    if not low < high:
        raise ValueError(
            f"`value_range` must be (low, high) with low < high. "
            f"Received: value_range={value_range!r}"
        )
    return tuple(value_range)


def check_model_takes_sizes(model, stages):
    """Refuses, before the first step, a `model` that cannot take every stage's image size."""
    channels_last = keras.config.image_data_format() == "channels_last"
    sizes = sorted({s.size for s in stages if s.size is not None})
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs or not sizes:
        return
    shape = tuple(inputs[0].shape)
    fixed = shape[1:3] if channels_last else shape[2:4]
    for size in sizes:
        if any(d is not None and d != s for d, s in zip(fixed, size)):
            raise ValueError(
                f"`model` must accept the EfficientTrain image size {size}, but its input "
                f"shape {shape} fixes the spatial size: build the model with variable spatial "
                "dimensions, e.g. keras.Input((None, None, channels)) or a keras-hub "
                "backbone with image_shape=(None, None, channels), and pool before the "
                "classifier (GlobalAveragePooling2D) instead of Flatten."
            )
        probe = list(shape)
        probe[0] = 1
        probe[1 if channels_last else 2], probe[2 if channels_last else 3] = size
        try:
            model.compute_output_spec(keras.KerasTensor(tuple(probe), inputs[0].dtype))
        except Exception as error:  # noqa: BLE001 - re-raised with the cause attached
            raise ValueError(
                f"`model` cannot take the EfficientTrain input size {size}: {error}"
            ) from error
