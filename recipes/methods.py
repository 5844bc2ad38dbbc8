"""How each compared method enters a run, through the package's public API only.

`prepare` receives the recipe's fresh model and training dataset and returns the (possibly
rewritten) model, dataset and the callbacks to pass to `fit`. Hyperparameters come from the
recipe (`recipe.lerac`, `recipe.cbs`, ...), so each recipe states its paper protocol in one place.
"""

import os
from typing import NamedTuple

import keras

import keras_curriculum as kc
from keras_curriculum.efficient_train import paper_stages

METHODS = ("conventional", "lerac", "cbs", "lerac+cbs", "docl", "conventional_upscaled",
           "efficient_train")


class Arm(NamedTuple):
    """What one method trains: model, data, callbacks, and the image size it is tested at."""

    model: keras.Model
    train: object
    callbacks: list
    image_size: object = None  # None: the recipe's native size


def _lerac(recipe, seed, epochs):
    return Arm(recipe.build_model(), recipe.train_dataset(seed), [kc.LeRaC(**recipe.lerac)])


def _cbs(recipe, seed, epochs):
    params = dict(recipe.cbs)
    decay = kc.SigmaDecay(factor=params.pop("factor"), every=params.pop("every"))
    # A recipe whose model has no convolution to smooth after (e.g. text models, where the paper
    # smooths the token embeddings) places its own `kc.GaussianSmoothing` layers.
    if hasattr(recipe, "build_smoothed_model"):
        model = recipe.build_smoothed_model(**params)
    else:
        model = kc.add_smoothing(recipe.build_model(), **params)
    return Arm(model, recipe.train_dataset(seed), [decay])


def _lerac_cbs(recipe, seed, epochs):
    arm = _cbs(recipe, seed, epochs)
    return arm._replace(callbacks=arm.callbacks + [kc.LeRaC(**recipe.lerac)])


def _docl(recipe, seed, epochs):
    docl = kc.DoCL(seed=seed, **recipe.docl)
    train = docl.apply(recipe.train_examples(), batch_size=recipe.batch_size)
    return Arm(recipe.build_model(), train, [docl])


def _conventional_upscaled(recipe, seed, epochs):
    """EfficientTrain's baseline: the same model trained on the upscaled images at full size."""
    size = recipe.upscaled_size
    return Arm(recipe.build_model(variable_size=True), recipe.train_dataset(seed, size), [], size)


def efficient_train_stages(recipe, epochs):
    """The paper's 5-stage table over `epochs` at the recipe's upscaled size.

    A recipe may set `efficient_train = {"sizes": 5 sizes, "magnitudes": 5 RandAugment
    magnitudes or None, "value_range": (low, high)}`; by default the paper's sizes are scaled to
    `upscaled_size` and there is no augmentation (the other arms train without it).
    """
    params = getattr(recipe, "efficient_train", None) or {}
    stages = paper_stages(epochs, recipe.upscaled_size)
    sizes = params.get("sizes") or [s.size for s in stages]
    magnitudes = params.get("magnitudes") or [None] * len(stages)
    if len(sizes) != len(stages) or len(magnitudes) != len(stages):
        raise ValueError(f"Recipe {recipe.name!r}: `efficient_train` sizes and magnitudes must "
                         f"list {len(stages)} stages. Received: {params!r}")
    return [kc.Stage(s.epochs, size, m) for s, size, m in zip(stages, sizes, magnitudes)]


def _efficient_train_callback(recipe, epochs, seed=None):
    params = getattr(recipe, "efficient_train", None) or {}
    return kc.EfficientTrain(efficient_train_stages(recipe, epochs),
                             image_size=recipe.upscaled_size,
                             value_range=params.get("value_range", (0, 1)), seed=seed)


def _efficient_train(recipe, seed, epochs):
    size = recipe.upscaled_size
    et = _efficient_train_callback(recipe, epochs, seed)
    if hasattr(recipe, "efficient_train_examples"):
        # A recipe whose own pipeline augments with RandAugment (ImageNet) hands over its
        # examples without it: EfficientTrain augments each image at its stage's magnitude.
        train = et.apply(recipe.efficient_train_examples(seed), batch_size=recipe.batch_size,
                         drop_remainder=True)
    else:
        train = et.apply(recipe.train_dataset(seed, size))
    return Arm(recipe.build_model(variable_size=True), train, [et], size)


_PREPARE = {
    "conventional": lambda recipe, seed, epochs: Arm(recipe.build_model(),
                                                     recipe.train_dataset(seed), []),
    "lerac": _lerac,
    "cbs": _cbs,
    "lerac+cbs": _lerac_cbs,
    "docl": _docl,
    "conventional_upscaled": _conventional_upscaled,
    "efficient_train": _efficient_train,
}


def available():
    return tuple(m for m in METHODS if m in _PREPARE)


def supported(recipe):
    """The methods a recipe (class or instance) can run: its `methods` attribute, else all."""
    return tuple(getattr(recipe, "methods", available()))


def prepare(method, recipe, seed, epochs):
    """The `Arm` of `method` for one seed: built from the recipe through the package's API."""
    if method not in _PREPARE:
        raise ValueError(f"Unknown method {method!r}. Available: {', '.join(available())}")
    if method not in supported(recipe):
        raise ValueError(f"Recipe {recipe.name!r} does not support method {method!r}. "
                         f"It supports: {', '.join(supported(recipe))}")
    return _PREPARE[method](recipe, seed, epochs)


def plot_run(callbacks, path_prefix):
    """Curriculum plots that depend on the run itself (DoCL's sampled fraction and scores)."""
    return [cb.plot(f"{path_prefix}_docl.png") for cb in callbacks if isinstance(cb, kc.DoCL)]


def extra_metrics(callbacks):
    """Metrics a method needs in `compile`: DoCL's logits tracker (its one extra line)."""
    return [cb.metric() for cb in callbacks if isinstance(cb, kc.DoCL)]


def plot_curricula(recipe, methods, epochs, out_dir):
    """Writes one PNG per curriculum used: LeRaC's per-group rates, and the other schedules."""
    from keras_curriculum import plot_lerac
    from keras_curriculum.plotting import plot_curves

    paths = []
    if any("cbs" in m for m in methods):
        epoch_axis = list(range(epochs))
        sigma = [kc.sigma_at_epoch(recipe.cbs["sigma"], e, recipe.cbs["factor"],
                                   recipe.cbs["every"]) for e in epoch_axis]
        paths.append(plot_curves(epoch_axis, {"sigma": sigma},
                                 os.path.join(out_dir, "cbs_sigma.png"),
                                 title="CBS: Gaussian sigma at the start of each epoch",
                                 xlabel="epoch", ylabel="sigma"))
    if "efficient_train" in methods:
        et = _efficient_train_callback(recipe, epochs)  # the schedule only: no data, no model
        paths.append(kc.plot_efficient_train(et, os.path.join(out_dir, "efficient_train.png")))
    if any("lerac" in m for m in methods):
        model = recipe.build_model()
        model.compile(optimizer=recipe.optimizer(epochs), loss=recipe.loss)
        steps = range(0, epochs * recipe.steps_per_epoch, max(1, recipe.steps_per_epoch // 20))
        paths.append(plot_lerac(kc.LeRaC(**recipe.lerac), model, steps,
                                os.path.join(out_dir, "lerac_rates.png"),
                                steps_per_epoch=recipe.steps_per_epoch))
    keras.backend.clear_session()
    return paths
