"""Plot of LeRaC's learning rate per layer group against the optimizer step."""

from keras_curriculum.lerac.callback import LeRaC
from keras_curriculum.plotting import plot_curves


def plot_lerac(lerac, model, steps, path, steps_per_epoch=None, title=None, epochs=None):
    """Plots the learning rate of every LeRaC group against the optimizer step.

    Args:
        lerac: a `kc.LeRaC` callback.
        model: the compiled model it will train.
        steps: iterable of optimizer steps to evaluate.
        path: PNG path.
        steps_per_epoch: steps per epoch (needed with `unit="epoch"`).
        title: str or None.
        epochs: the fit's epochs (needed when `lerac.duration` is a fraction of the fit).
    """
    if not isinstance(lerac, LeRaC):
        raise TypeError(
            f"`lerac` must be a kc.LeRaC. Received: lerac of type {type(lerac).__name__}"
        )
    steps = list(steps)
    names, table = lerac.rates(model, steps, steps_per_epoch=steps_per_epoch, epochs=epochs)
    labels = [f"{i:02d} {name}" for i, name in enumerate(names)]
    return plot_curves(
        steps,
        (labels, table),
        path,
        title=title or f"LeRaC: learning rate per layer group ({lerac.describe_duration()})",
        xlabel="optimizer step",
        ylabel="learning rate",
        log_y=True,
    )
