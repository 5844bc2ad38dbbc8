"""Plot of CBS's sigma per epoch, as `SigmaDecay` sets it."""

import numpy as np

from keras_curriculum._validation import check_int
from keras_curriculum.cbs.schedule import bypass_epoch
from keras_curriculum.cbs.schedule import sigma_at_epoch
from keras_curriculum.plotting import plot_curves


def plot_cbs(decay, path, epochs, initial_sigma=1.0, kernel_size=3, rank=2, title=None):
    """Plots the sigma `decay` (a `kc.SigmaDecay`) gives a layer at each epoch.

    The epoch at which the kernel becomes the identity (the layer is bypassed) is marked in the
    legend.

    Args:
        decay: a `kc.SigmaDecay`.
        path: PNG path.
        epochs: int >= 1, the epochs of the fit.
        initial_sigma, kernel_size, rank: the smoothing layer's sigma_0, kernel size, 1 or 2.
        title: str or None.
    """
    from keras_curriculum.cbs.callback import SigmaDecay

    if not isinstance(decay, SigmaDecay):
        raise TypeError(
            f"`decay` must be a kc.SigmaDecay. Received: decay of type {type(decay).__name__}"
        )
    epochs = check_int("epochs", epochs, 1)
    every = decay.resolved_every(epochs)
    sigmas = np.array(
        [sigma_at_epoch(initial_sigma, e, decay.factor, decay.every, epochs) for e in range(epochs)]
    )
    bypass = bypass_epoch(
        initial_sigma, decay.factor, decay.every, kernel_size, rank, epochs=epochs
    )
    label = f"sigma (identity from epoch {bypass})" if bypass < epochs else "sigma"
    return plot_curves(
        np.arange(epochs),
        {label: sigmas},
        path,
        title=title or f"CBS: sigma x {decay.factor:g} every {every:g} epochs",
        xlabel="epoch",
        ylabel="sigma",
    )
