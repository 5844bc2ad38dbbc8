"""Plot of an EfficientTrain table: resolution, augmentation and compute per epoch."""

import numpy as np

from keras_curriculum._validation import check_path
from keras_curriculum.efficient_train.stages import compute_fraction
from keras_curriculum.efficient_train.stages import stage_compute
from keras_curriculum.plotting import plot_curves


def plot_efficient_train(et, path, title=None):
    """Plots the resolution, augmentation strength and compute per epoch of an EfficientTrain.

    Curves, all as fractions: B_h / H (resolution), m / 10 (RandAugment factor) and
    (B_h * B_w) / (H * W) (compute of the epoch relative to full size).
    """
    from keras_curriculum.efficient_train.callback import EfficientTrain

    if not isinstance(et, EfficientTrain):
        raise TypeError(
            f"`et` must be a kc.EfficientTrain. Received: et of type {type(et).__name__}"
        )
    check_path("path", path, allow_none=False)
    if et.image_size is None:
        raise ValueError("`et.image_size` is unknown: pass `image_size` to EfficientTrain.")
    height, _ = et.image_size
    epochs = np.arange(et.epochs)
    stages = [et.stage_at(e) for e in epochs]
    compute = stage_compute(et.stages, et.image_size)[et.stage_indices]
    curves = {
        "resolution B / H": np.array([s.size[0] / height for s in stages]),
        "RandAugment factor m / 10": np.array(
            [np.nan if s.magnitude is None else s.magnitude / 10 for s in stages]
        ),
        "compute per epoch (B / H)^2": compute,
    }
    fraction = compute_fraction(et.stages, et.image_size)
    return plot_curves(
        epochs,
        curves,
        path,
        title=title or f"EfficientTrain schedule ({et.epochs} epochs, compute {fraction:.3f}x)",
        xlabel="epoch",
        ylabel="fraction of full size / strength",
    )
