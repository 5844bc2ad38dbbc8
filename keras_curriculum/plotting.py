"""Plots of curricula (needs matplotlib: `pip install keras-curriculum[plot]`)."""

import numpy as np

from keras_curriculum._validation import check_path


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Plotting needs matplotlib: `pip install matplotlib` (or keras-curriculum[plot])."
        ) from error
    return plt


def plot_curves(x, curves, path, title="", xlabel="step", ylabel="", log_y=False, legend_max=12):
    """Saves a line plot of named curves sharing one x axis as a PNG and returns the path.

    Args:
        x: 1-D array of x values.
        curves: dict name -> 1-D array of y values, or a 2-D array `(len(x), n)` with names
            given as `curves` = (names, array).
        path: where to write the PNG.
        title, xlabel, ylabel: labels.
        log_y: logarithmic y axis (learning rates).
        legend_max: curves beyond this many are drawn but left out of the legend.
    """
    check_path("path", path, allow_none=False)
    x = np.asarray(x)
    if isinstance(curves, tuple):
        names, table = curves
        curves = {name: np.asarray(table)[:, i] for i, name in enumerate(names)}
    if not isinstance(curves, dict):
        raise TypeError(
            f"`curves` must be a dict or a (names, table) pair. Received: curves={curves!r}"
        )
    lengths = {name: len(np.asarray(y)) for name, y in curves.items()}
    if x.ndim != 1 or any(n != len(x) for n in lengths.values()):
        raise ValueError(
            f"`curves` must have one value per x value ({x.shape}). Received lengths: {lengths}"
        )
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(len(curves), 1)))
    for index, ((name, y), color) in enumerate(zip(curves.items(), colors)):
        label = name if index < legend_max else None
        ax.plot(np.asarray(x), np.asarray(y), color=color, label=label, linewidth=1.6)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=7, ncol=2 if len(curves) > 6 else 1, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot(curriculum, path, **kwargs):
    """Saves a PNG of what `curriculum` does and returns the path.

    Every curriculum object has a `plot(path, ...)` method; this calls it, so one call draws any
    of them: `LeRaC` (rate per layer group against the step), `SigmaDecay` (sigma per epoch),
    `EfficientTrain` (resolution, augmentation and compute per epoch), `DoCL` (fraction of the
    data per epoch). Keyword arguments go to that method.

    Args:
        curriculum: a `kc.LeRaC`, `kc.SigmaDecay`, `kc.EfficientTrain` or `kc.DoCL`.
        path: where to write the PNG.
    """
    method = getattr(curriculum, "plot", None)
    if not callable(method):
        raise TypeError(
            "`curriculum` must be a kc.LeRaC, kc.SigmaDecay, kc.EfficientTrain or kc.DoCL. "
            f"Received: curriculum of type {type(curriculum).__name__}"
        )
    return method(path, **kwargs)


def plot_lerac(*args, **kwargs):
    """Deprecated location of `kc.plot_lerac` (`keras_curriculum.lerac.plot_lerac`)."""
    import warnings

    from keras_curriculum.lerac.plot import plot_lerac as plot_lerac_

    warnings.warn(
        "`keras_curriculum.plotting.plot_lerac` is deprecated; use `kc.plot_lerac` "
        "or `kc.plot(lerac, path, model=...)`.",
        DeprecationWarning,
        stacklevel=2,
    )
    return plot_lerac_(*args, **kwargs)
