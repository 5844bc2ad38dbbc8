"""Draws the figures of docs/efficient_train.md: the ET and ET++ schedules, and a crop example.

Usage: python docs/make_efficient_train_figures.py
(writes docs/images/efficient_train_paper.png, efficient_train_plus.png, efficient_train_crop.png)
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_curriculum.efficient_train import EfficientTrain  # noqa: E402
from keras_curriculum.efficient_train import plot_efficient_train  # noqa: E402
from keras_curriculum.efficient_train.frequency_crop import low_frequency_crop  # noqa: E402

IMAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")


def test_pattern(size=224):
    """A zone plate (spatial frequency rising from the centre): cropping the spectrum keeps
    the centre and blanks the rings beyond the kept band, without any downloaded image."""
    coords = np.arange(size) - size / 2
    xx, yy = np.meshgrid(coords, coords)
    return (0.5 + 0.5 * np.cos(np.pi * (xx**2 + yy**2) / size))[None, :, :, None]


def crop_figure(path, sizes=(224, 192, 160, 96)):
    image = test_pattern().astype("float32")
    fig, axes = plt.subplots(1, len(sizes), figsize=(2.2 * len(sizes), 2.5), dpi=80)
    for ax, size in zip(axes, sizes):
        crop = ops.convert_to_numpy(low_frequency_crop(image, size))[0, :, :, 0]
        ax.imshow(crop, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"B = {size}  (mean {crop.mean():.3f})", fontsize=9)
        ax.axis("off")
    fig.suptitle("kc.low_frequency_crop of a 224 px zone plate", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    os.makedirs(IMAGES, exist_ok=True)
    plot_efficient_train(
        EfficientTrain.paper(epochs=300, image_size=224),
        os.path.join(IMAGES, "efficient_train_paper.png"),
        title="EfficientTrain (ICCV 2023), 300 epochs at 224 px",
    )
    plus = EfficientTrain.plus(budget_epochs=200, image_size=224)
    plot_efficient_train(
        plus,
        os.path.join(IMAGES, "efficient_train_plus.png"),
        title=f"EfficientTrain++, budget 200 full-size epochs = {plus.epochs} epochs",
    )
    crop_figure(os.path.join(IMAGES, "efficient_train_crop.png"))


if __name__ == "__main__":
    main()
