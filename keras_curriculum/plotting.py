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
        raise TypeError(f"`curves` must be a dict or a (names, table) pair. Received: {curves!r}")
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


def plot_lerac(lerac, model, steps, path, steps_per_epoch=None, title=None):
    """Plots the learning rate of every LeRaC group against the optimizer step.

    Args:
        lerac: a `kc.LeRaC` callback.
        model: the compiled model it will train.
        steps: iterable of optimizer steps to evaluate.
        path: PNG path.
        steps_per_epoch: steps per epoch (needed with `unit="epoch"`).
    """
    from keras_curriculum.lerac import LeRaC

    if not isinstance(lerac, LeRaC):
        raise TypeError(
            f"`lerac` must be a kc.LeRaC. Received: lerac of type {type(lerac).__name__}"
        )
    steps = list(steps)
    names, table = lerac.rates(model, steps, steps_per_epoch=steps_per_epoch)
    labels = [f"{i:02d} {name}" for i, name in enumerate(names)]
    return plot_curves(
        steps,
        (labels, table),
        path,
        title=title or f"LeRaC: learning rate per layer group (k={lerac.k} {lerac.unit}s)",
        xlabel="optimizer step",
        ylabel="learning rate",
        log_y=True,
    )
