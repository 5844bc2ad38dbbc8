"""How each compared method enters a run, through the package's public API only.

`prepare` receives the recipe's fresh model and training dataset and returns the (possibly
rewritten) model, dataset and the callbacks to pass to `fit`. Hyperparameters come from the
recipe (`recipe.lerac`, `recipe.cbs`, ...), so each recipe states its paper protocol in one place.
"""

import os

import keras

import keras_curriculum as kc

METHODS = ("conventional", "lerac", "cbs", "lerac+cbs", "efficient_train", "docl")


def _lerac(recipe, model, train, epochs):
    return model, train, [kc.LeRaC(**recipe.lerac)]


_PREPARE = {
    "conventional": lambda recipe, model, train, epochs: (model, train, []),
    "lerac": _lerac,
}


def available():
    return tuple(m for m in METHODS if m in _PREPARE)


def prepare(method, recipe, model, train, epochs):
    if method not in _PREPARE:
        raise ValueError(f"Unknown method {method!r}. Available: {', '.join(available())}")
    return _PREPARE[method](recipe, model, train, epochs)


def extra_metrics(callbacks):
    """Metrics a method's callback needs in `compile` (DoCL's score tracker), else none."""
    return [m for cb in callbacks for m in getattr(cb, "compile_metrics", lambda: [])()]


def plot_curricula(recipe, methods, epochs, out_dir):
    """Writes one PNG per curriculum used: LeRaC's per-group rates, and the other schedules."""
    from keras_curriculum.plotting import plot_lerac

    paths = []
    if any("lerac" in m for m in methods):
        model = recipe.build_model()
        model.compile(optimizer=recipe.optimizer(epochs), loss=recipe.loss)
        steps = range(0, epochs * recipe.steps_per_epoch, max(1, recipe.steps_per_epoch // 20))
        paths.append(plot_lerac(kc.LeRaC(**recipe.lerac), model, steps,
                                os.path.join(out_dir, "lerac_rates.png"),
                                steps_per_epoch=recipe.steps_per_epoch))
    keras.backend.clear_session()
    return paths
