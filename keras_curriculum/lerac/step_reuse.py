"""Which compiled train step a LeRaC `fit` runs, and which one it leaves behind.

The compiled step is traced lazily with what the optimizer is at its first call, so LeRaC must
build it again once its patch is installed, and again when it removes it. A second `fit` of the
same model with the same curriculum can reuse the patched step the first one traced, if nothing
has traced another since (CBS's bypass, a `compile`): a retrace per `fit` costs more than short
fits run.

Only on TensorFlow. JAX keys its trace cache on the step's Python function (equal bound methods
share it) for as long as any jitted wrapper of it lives, so a function kept here would hand its
trace, patched or not, to every later build: the end of the curriculum, CBS's bypass and a plain
`fit` afterwards would all run a stale step (docs/backends.md).
"""

import keras


class StepReuse:
    """The train functions of one LeRaC: `begin` at `on_train_begin`, `end` at its end."""

    def __init__(self):
        self._reusable = None  # (plain, key, patched) that the next fit may reuse
        self._fit = None  # (plain, key, patched) of the running fit, where kept

    def begin(self, model, key):
        """Makes `model` run a step traced with the patch installed now; `key` identifies it."""
        plain, cached = model.train_function, self._reusable
        if cached is not None and cached[0] is plain and cached[1] == key:
            model.train_function = cached[2]
        else:
            model.make_train_function(force=True)
        keep = keras.backend.backend() == "tensorflow"
        self._fit = (plain, key, model.train_function) if keep else None

    def end(self, model):
        """Leaves `model` with an unpatched step (the patch is removed before this)."""
        plain, key, patched = self._fit or (None, None, None)
        if patched is not None and model.train_function is patched and plain is not None:
            # Nothing retraced during the fit: the function traced before it is unpatched.
            model.train_function = plain
            self._reusable = (plain, key, patched)
        else:
            self._reusable = None
            model.make_train_function(force=True)
        self._fit = None
