"""Draws the figures of docs/cbs.md: smoothing at several sigmas, and the sigma schedule.

Usage: python docs/make_cbs_figures.py  (writes docs/images/cbs_smoothing.png, cbs_schedule.png)
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_curriculum.cbs import GaussianSmoothing  # noqa: E402
from keras_curriculum.cbs import bypass_epoch  # noqa: E402
from keras_curriculum.cbs import bypass_sigma  # noqa: E402
from keras_curriculum.cbs import gaussian_kernel  # noqa: E402
from keras_curriculum.cbs import sigma_at_epoch  # noqa: E402
from keras_curriculum.plotting import plot_curves  # noqa: E402

IMAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")
SIGMAS = (0.0, 0.25, 0.5, 1.0, 2.0)


def test_pattern(size=96):
    """A zone plate (rising spatial frequency) beside a 2-pixel checkerboard: fine detail that
    smoothing visibly removes, without any downloaded image."""
    coords = np.arange(size) - size / 2
    xx, yy = np.meshgrid(coords, coords)
    zone_plate = 0.5 + 0.5 * np.cos(np.pi * (xx**2 + yy**2) / size)
    checkerboard = ((np.arange(size)[:, None] // 2 + np.arange(size)[None, :] // 2) % 2) * 1.0
    image = np.concatenate([zone_plate, checkerboard], axis=1)
    return image[None, :, :, None].astype("float32")


def smoothing_figure(path):
    image = test_pattern()
    sizes = (3, 7)
    figsize = (2.6 * len(SIGMAS), 0.4 + 1.9 * len(sizes))
    fig, axes = plt.subplots(len(sizes), len(SIGMAS), figsize=figsize, dpi=110)
    for row, kernel_size in enumerate(sizes):
        for column, sigma in enumerate(SIGMAS):
            layer = GaussianSmoothing(sigma, kernel_size, bypass_tolerance=None)
            smoothed = ops.convert_to_numpy(layer(image))[0, :, :, 0]
            centre = float(
                ops.convert_to_numpy(gaussian_kernel(sigma, kernel_size))[
                    kernel_size // 2, kernel_size // 2
                ]
            )
            ax = axes[row, column]
            ax.imshow(smoothed, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(
                f"k={kernel_size}, sigma={sigma:g}\ncentre weight {centre:.3f}", fontsize=8
            )
            ax.axis("off")
    fig.suptitle("GaussianSmoothing on a test pattern (zone plate | 2-px checkerboard)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def schedule_figure(path, epochs=200):
    x = np.arange(epochs)
    threshold = bypass_sigma(3, 2)
    curves = {}
    for factor, every in ((0.9, 5), (0.9, 2), (0.8, 5)):
        start = bypass_epoch(1.0, factor, every)
        curves[f"sigma_0=1, factor {factor}, every {every} (bypass from epoch {start})"] = [
            sigma_at_epoch(1.0, e, factor, every) for e in x
        ]
    curves[f"bypass point, k=3 2-D: sigma <= {threshold:.4f}"] = np.full(epochs, threshold)
    return plot_curves(
        x, curves, path, title="CBS: sigma per epoch (SigmaDecay)", xlabel="epoch", ylabel="sigma"
    )


def main():
    os.makedirs(IMAGES, exist_ok=True)
    print(smoothing_figure(os.path.join(IMAGES, "cbs_smoothing.png")))
    print(schedule_figure(os.path.join(IMAGES, "cbs_schedule.png")))


if __name__ == "__main__":
    main()
