"""Plot of a DoCL run: the fraction of the data trained in each epoch."""

from keras_curriculum.plotting import plot_curves


def plot_docl(docl, path, title=None):
    """Saves a PNG of `docl.history`'s fraction of data per epoch and returns the path."""
    epochs = [h["epoch"] for h in docl.history]
    return plot_curves(
        epochs,
        {"fraction of data": [h["fraction"] for h in docl.history]},
        path,
        title=title or "DoCL: fraction of the data trained per epoch",
        xlabel="epoch",
        ylabel="fraction",
    )
