"""Regenerates docs/images/lerac_*.png with the package's own plotting helper.

KERAS_BACKEND=jax python docs/make_lerac_figures.py
"""

import os

import keras
from keras_curriculum_recipes.models import resnet18

import keras_curriculum as kc
from keras_curriculum import plot_lerac

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    model = resnet18((32, 32, 3), 10)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    steps_per_epoch = 391  # CIFAR-10, batch 128
    steps = range(0, 7 * steps_per_epoch, 17)
    # The stepwise figure keeps its file name from when the update was called "official".
    for update, stem in (
        ("exponential", "exponential"),
        ("linear", "linear"),
        ("stepwise", "official"),
    ):
        lerac = kc.LeRaC(duration=5, min_learning_rate=1e-7, update=update)
        path = os.path.join(HERE, "images", f"lerac_{stem}.png")
        plot_lerac(
            lerac,
            model,
            steps,
            path,
            steps_per_epoch=steps_per_epoch,
            title=f"LeRaC on ResNet-18 ({update}): rate per layer group, k=5 epochs",
        )
        print("wrote", path)


if __name__ == "__main__":
    main()
