"""Draws docs/images/docl_curriculum.png: DoCL's fraction of data per epoch and its cyclic rate.

    KERAS_BACKEND=jax python docs/make_docl_figures.py

Trains a small MLP on synthetic 10-class data for 16 epochs with the paper's defaults except a
short warm start and short episodes (so that several episodes fit in a CPU minute).
"""

import os

import keras
import numpy as np

from keras_curriculum.docl import DoCL
from keras_curriculum.plotting import _pyplot

HERE = os.path.dirname(os.path.abspath(__file__))


def main(path=None, epochs=16):
    path = path or os.path.join(HERE, "images", "docl_curriculum.png")
    rng = np.random.default_rng(0)
    n, classes = 2000, 10
    centres = rng.normal(size=(classes, 16))
    y = rng.integers(0, classes, n).astype("int32")
    x = (centres[y] + 1.5 * rng.normal(size=(n, 16))).astype("float32")

    docl = DoCL(warmup_epochs=2, episode_epochs=2, fraction_decay=0.6, min_fraction=0.2, seed=0)
    train = docl.apply((x, y), batch_size=64)
    schedule = docl.learning_rate_schedule(0.1, epochs=epochs, min_learning_rate=0.005)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(classes)]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[docl.metric()],
    )
    model.fit(train, epochs=epochs, callbacks=[docl], verbose=0)

    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), dpi=110)
    epochs_axis = [h["epoch"] for h in docl.history]
    colours = {"warmup": "tab:gray", "sample": "tab:blue", "refresh": "tab:orange"}
    phases = [docl.epoch_plan(e).phase for e in epochs_axis]
    axes[0].bar(
        epochs_axis, [h["fraction"] for h in docl.history], color=[colours[p] for p in phases]
    )
    from matplotlib.patches import Patch

    axes[0].set(title="fraction of the data per epoch", xlabel="epoch", ylim=(0, 1.05))
    axes[0].legend(handles=[Patch(color=c, label=p) for p, c in colours.items()], fontsize=7)
    steps = np.arange(int(model.optimizer.iterations))
    axes[1].plot(steps, schedule.rates(steps))
    axes[1].set(title="cosine-restart learning rate", xlabel="optimizer step")
    scores = docl.scores[~np.isnan(docl.scores)]
    axes[2].hist(scores, bins=40, color="tab:blue")
    axes[2].set(title="smoothed scores after training", xlabel="a_hat(i)")
    fig.suptitle(
        "DoCL (warm start 2, episodes of 2 + refresh, fraction_decay 0.6, min_fraction 0.2)"
    )
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(main())
