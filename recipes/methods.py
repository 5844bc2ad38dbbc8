"""How each compared method enters a run, through the package's public API only.

`prepare` receives the recipe's fresh model and training dataset and returns the (possibly
rewritten) model, dataset and the callbacks to pass to `fit`. Hyperparameters come from the
recipe (`recipe.lerac`, `recipe.cbs`, ...), so each recipe states its paper protocol in one place.
"""

import os

import keras

import keras_curriculum as kc

METHODS = ("conventional", "lerac", "cbs", "lerac+cbs", "efficient_train", "docl")


def _lerac(recipe, model, train, epochs, seed):
    return model, train, [kc.LeRaC(**recipe.lerac)]


def _cbs(recipe, model, train, epochs, seed):
    params = dict(recipe.cbs)
    decay = kc.SigmaDecay(factor=params.pop("factor"), every=params.pop("every"))
    return kc.add_smoothing(model, **params), train, [decay]


def _lerac_cbs(recipe, model, train, epochs, seed):
    model, train, smoothing_callbacks = _cbs(recipe, model, train, epochs, seed)
    return model, train, smoothing_callbacks + [kc.LeRaC(**recipe.lerac)]


def _docl(recipe, model, train, epochs, seed):
    docl = kc.DoCL(seed=seed, **recipe.docl)
    return model, docl.apply(recipe.train_examples(), batch_size=recipe.batch_size), [docl]


_PREPARE = {
    "conventional": lambda recipe, model, train, epochs, seed: (model, train, []),
    "lerac": _lerac,
    "cbs": _cbs,
    "lerac+cbs": _lerac_cbs,
    "docl": _docl,
}


def available():
    return tuple(m for m in METHODS if m in _PREPARE)


def prepare(method, recipe, model, train, epochs, seed):
    if method not in _PREPARE:
        raise ValueError(f"Unknown method {method!r}. Available: {', '.join(available())}")
    return _PREPARE[method](recipe, model, train, epochs, seed)


def plot_run(callbacks, path_prefix):
    """Curriculum plots that depend on the run itself (DoCL's sampled fraction and scores)."""
    return [cb.plot(f"{path_prefix}_docl.png") for cb in callbacks if isinstance(cb, kc.DoCL)]


def extra_metrics(callbacks):
    """Metrics a method needs in `compile`: DoCL's logits tracker (its one extra line)."""
    return [cb.metric() for cb in callbacks if isinstance(cb, kc.DoCL)]


def plot_curricula(recipe, methods, epochs, out_dir):
    """Writes one PNG per curriculum used: LeRaC's per-group rates, and the other schedules."""
    from keras_curriculum.plotting import plot_curves
    from keras_curriculum.plotting import plot_lerac

    paths = []
    if any("cbs" in m for m in methods):
        epoch_axis = list(range(epochs))
        sigma = [kc.sigma_at_epoch(recipe.cbs["sigma"], e, recipe.cbs["factor"],
                                   recipe.cbs["every"]) for e in epoch_axis]
        paths.append(plot_curves(epoch_axis, {"sigma": sigma},
                                 os.path.join(out_dir, "cbs_sigma.png"),
                                 title="CBS: Gaussian sigma at the start of each epoch",
                                 xlabel="epoch", ylabel="sigma"))
    if any("lerac" in m for m in methods):
        model = recipe.build_model()
        model.compile(optimizer=recipe.optimizer(epochs), loss=recipe.loss)
        steps = range(0, epochs * recipe.steps_per_epoch, max(1, recipe.steps_per_epoch // 20))
        paths.append(plot_lerac(kc.LeRaC(**recipe.lerac), model, steps,
                                os.path.join(out_dir, "lerac_rates.png"),
                                steps_per_epoch=recipe.steps_per_epoch))
    keras.backend.clear_session()
    return paths
