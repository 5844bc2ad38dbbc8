"""How each compared method enters a run, through the package's public API only.

`prepare` receives the recipe's fresh model and training dataset and returns the (possibly
rewritten) model, dataset and the callbacks to pass to `fit`. Hyperparameters come from the
recipe (`recipe.lerac`, `recipe.cbs`, ...; defaults and the contract in `base.Recipe`), so each
recipe states its paper protocol in one place.
"""

import os
from typing import NamedTuple

import keras

import keras_curriculum as kc
from keras_curriculum.efficient_train import paper_stages
from keras_curriculum.efficient_train import plus_stages
from keras_curriculum.efficient_train.stages import paper_stage_epochs

from . import mixup as mixup_lib
from . import processes
from .base import DEFAULT_REGIME
from .base import METHODS


class Arm(NamedTuple):
    """What one method trains: model, data, callbacks, the image size it is tested at, and
    (set by `prepare` from the arm's regime) its optimizer, loss, validation data and epochs."""

    model: keras.Model
    train: object
    callbacks: list
    image_size: object = None  # None: the recipe's native size
    optimizer: object = None
    loss: object = None
    validation: object = None
    epochs: int = None  # None: the run's epochs


def _lerac(recipe, seed, epochs):
    return Arm(recipe.build_model(), recipe.train_dataset(seed), [kc.LeRaC(**recipe.lerac)])


def _cbs(recipe, seed, epochs):
    params = dict(recipe.cbs)
    decay = kc.SigmaDecay(factor=params.pop("factor"), every=params.pop("every"))
    # By default `kc.add_smoothing` of the recipe's model; a recipe whose model has no
    # convolution to smooth after (text models: the paper smooths the token embeddings) places
    # its own `kc.GaussianSmoothing` layers.
    return Arm(recipe.build_smoothed_model(**params), recipe.train_dataset(seed), [decay])


def _lerac_cbs(recipe, seed, epochs):
    arm = _cbs(recipe, seed, epochs)
    return arm._replace(callbacks=arm.callbacks + [kc.LeRaC(**recipe.lerac)])


def _docl(recipe, seed, epochs):
    docl = kc.DoCL(seed=seed, **recipe.docl_arguments(epochs))
    # On several processes a partial batch would hang the others (docs/backends.md).
    train = docl.apply(
        recipe.train_examples(), batch_size=recipe.batch_size, drop_remainder=processes.count() > 1
    )
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
    `"schedule": "plus"` gives the ET++ table for a budget of `epochs` full-size epochs, and
    `"saturate"`, `"downsample"` are passed to `kc.EfficientTrain`.
    """
    params = recipe.efficient_train or {}
    if params.get("schedule") == "plus":  # ET++: `epochs` is the compute budget
        return plus_stages(epochs, recipe.upscaled_size)
    stages = paper_stages(epochs, recipe.upscaled_size, params.get("magnitudes"))
    if not params.get("sizes"):
        return stages
    # The recipe's own 5 sizes on the paper's stages, of which a short run drops those that
    # round to 0 epochs (paper_stages warns): each kept stage takes its row's size.
    lengths = paper_stage_epochs(epochs)
    if len(params["sizes"]) != len(lengths):
        raise ValueError(
            f"Recipe {recipe.name!r}: `efficient_train` sizes must list {len(lengths)} "
            f"stages. Received: {params!r}"
        )
    kept = [size for n, size in zip(lengths, params["sizes"]) if n]
    return [kc.Stage(s.epochs, size, s.magnitude) for s, size in zip(stages, kept)]


def _efficient_train_callback(recipe, epochs, seed=None):
    params = recipe.efficient_train or {}
    options = {key: params[key] for key in ("saturate", "downsample") if key in params}
    return kc.EfficientTrain(
        efficient_train_stages(recipe, epochs),
        image_size=recipe.upscaled_size,
        value_range=params.get("value_range", (0, 1)),
        seed=seed,
        **options,
    )


def _efficient_train(recipe, seed, epochs):
    size = recipe.upscaled_size
    et = _efficient_train_callback(recipe, epochs, seed)
    examples = recipe.efficient_train_examples(seed)
    if examples is not None:
        # A recipe whose own pipeline augments with RandAugment (ImageNet) hands over its
        # examples without it: EfficientTrain augments each image at its stage's magnitude.
        # They come shuffled (by file and in a buffer): a second buffer of full-size images
        # would only cost memory.
        train = et.apply(
            recipe.efficient_train_examples(seed),
            batch_size=recipe.batch_size,
            drop_remainder=True,
            shuffle=False,
        )
    else:
        train = et.apply(recipe.train_dataset(seed, size))
    return Arm(recipe.build_model(variable_size=True), train, [et], size, epochs=et.epochs)


_PREPARE = {
    "conventional": lambda recipe, seed, epochs: Arm(
        recipe.build_model(), recipe.train_dataset(seed), []
    ),
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
    """The `Arm` of `method` for one seed: built from the recipe through the package's API,
    then given the optimizer, loss and validation data of its regime (`with_regime`).

    `conventional_<regime>` is conventional training in that regime of the recipe."""
    base = split_arm(method)
    if base not in _PREPARE:
        raise ValueError(f"Unknown method {method!r}. Available: {', '.join(available())}")
    if base not in supported(recipe):
        raise ValueError(
            f"Recipe {recipe.name!r} does not support method {method!r}. "
            f"It supports: {', '.join(supported(recipe))}"
        )
    regime = method[len(CONVENTIONAL_PREFIX) :] if base != method else recipe.regime_of(method)
    arm = _PREPARE[base](recipe, seed, epochs)
    if base not in ("docl", "efficient_train"):  # their stages give each process its part
        arm = arm._replace(train=processes.split(arm.train, recipe.batch_size))
    return with_regime(recipe, arm, regime, seed, epochs)


# Regimes: each curriculum arm and its conventional arm train alike (recipes/regimes.py) --------

CONVENTIONAL_PREFIX = "conventional_"


def split_arm(method):
    """The method an arm runs: `conventional_docl` (conventional training in the "docl"
    regime) runs "conventional"."""
    if method.startswith(CONVENTIONAL_PREFIX) and method not in _PREPARE:
        return "conventional"
    return method


def arm_names(recipe, methods):
    """`methods` with, after `conventional`, one `conventional_<regime>` per other regime the
    curriculum methods train in (only when `conventional` is compared)."""
    names = list(methods)
    if "conventional" not in names:
        return names
    extra = []
    for method in names:
        regime = recipe.regime_of(method)
        name = CONVENTIONAL_PREFIX + regime
        if regime != DEFAULT_REGIME and name not in names + extra:
            extra.append(name)
    at = names.index("conventional") + 1
    return names[:at] + extra + names[at:]


def reference(recipe, method, methods):
    """The conventional arm `method` is compared with (None for a conventional arm)."""
    if method.startswith("conventional"):
        return None
    if method == "efficient_train" and "conventional_upscaled" in methods:
        return "conventional_upscaled"
    regime = recipe.regime_of(method)
    return "conventional" if regime == DEFAULT_REGIME else CONVENTIONAL_PREFIX + regime


def _epoch_steps(recipe, arm, epochs):
    """Optimizer steps of each epoch the arm trains (DoCL's epochs shrink with its subsets)."""
    for callback in arm.callbacks:
        if isinstance(callback, kc.DoCL):
            return [callback.steps_in_epoch(epoch, epochs) for epoch in range(epochs)]
    # A recipe whose upscaled arms train on other data (Fashion-MNIST's EfficientTrain pair)
    # says how many steps those take.
    upscaled = getattr(recipe, "upscaled_steps_per_epoch", None)
    if arm.image_size is not None and upscaled:
        return [upscaled] * epochs
    return [recipe.steps_per_epoch] * epochs


def _one_hot(num_classes):
    def convert(x, y):
        import tensorflow as tf

        return x, tf.one_hot(tf.reshape(tf.cast(y, tf.int32), [-1]), num_classes)

    return convert


def with_regime(recipe, arm, regime_name, seed, epochs):
    """`arm` with the optimizer, loss and validation data of the recipe's regime: Mix-up (then
    soft labels, categorical cross-entropy and one-hot validation labels) and an optimizer
    built from the arm's own steps per epoch."""
    regime = recipe.regime(regime_name, epochs)
    fit_epochs = arm.epochs or epochs
    optimizer = regime.optimizer(_epoch_steps(recipe, arm, fit_epochs), arm.callbacks)
    train, loss = arm.train, recipe.loss
    validation = processes.split(recipe.validation_dataset(arm.image_size), recipe.batch_size)
    if regime.mixup_alpha:
        num_classes = recipe.num_classes
        train = mixup_lib.mixup(
            train, regime.mixup_alpha, num_classes, seed=seed, own_weight_first=True
        )
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
        validation = validation.map(_one_hot(num_classes))
    return arm._replace(
        train=train, optimizer=optimizer, loss=loss, validation=validation, epochs=fit_epochs
    )


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
        sigma = [
            kc.sigma_at_epoch(
                recipe.cbs["sigma"], e, recipe.cbs["factor"], recipe.cbs["every"], epochs=epochs
            )
            for e in epoch_axis
        ]
        paths.append(
            plot_curves(
                epoch_axis,
                {"sigma": sigma},
                os.path.join(out_dir, "cbs_sigma.png"),
                title="CBS: Gaussian sigma at the start of each epoch",
                xlabel="epoch",
                ylabel="sigma",
            )
        )
    if "efficient_train" in methods:
        et = _efficient_train_callback(recipe, epochs)  # the schedule only: no data, no model
        paths.append(kc.plot_efficient_train(et, os.path.join(out_dir, "efficient_train.png")))
    if any("lerac" in m for m in methods):
        model = recipe.build_model()
        model.compile(optimizer=recipe.optimizer(epochs), loss=recipe.loss)
        steps = range(0, epochs * recipe.steps_per_epoch, max(1, recipe.steps_per_epoch // 20))
        paths.append(
            plot_lerac(
                kc.LeRaC(**recipe.lerac),
                model,
                steps,
                os.path.join(out_dir, "lerac_rates.png"),
                steps_per_epoch=recipe.steps_per_epoch,
                epochs=epochs,
            )
        )
    keras.backend.clear_session()
    return paths
