"""One `fit` at a time per curriculum object: a second `fit` running concurrently is refused.

A Keras callback holds one model: `fit` hands its model to every callback it is given
(`set_model`) before `on_train_begin`. One `SigmaDecay` or `LeRaC` passed to two `fit`s
running at the same time in two threads would serve whichever model was handed over last,
and change the other model's layers or optimizer while logging for the first. `FitGuard` is
claimed at `on_train_begin` and released at `on_train_end`: a claim from another live thread
refuses the second `fit` (before it trains) and hands the first `fit`'s model and params back
to the callback. Sequential reuse works, and so does a new `fit` in the same thread after one
that raised (it never reached `on_train_end`).
"""

import threading

from keras_curriculum import _keras_internals as internals

_LOCK = threading.Lock()


class FitGuard:
    """The `fit` a curriculum object is serving: its model, params and thread.

    Args:
        owner: the class name used in messages ("SigmaDecay", "LeRaC", ...).
    """

    def __init__(self, owner):
        self.owner = owner
        self.model = None
        self.params = None
        self.thread = None

    def claim(self, callback):
        """Records `callback`'s current model as the one it serves; the model, or an error."""
        model = internals.unsynced_model(callback)
        current = threading.current_thread()
        with _LOCK:
            holder = self.thread
            if holder is not None and holder is not current and holder.is_alive():
                running, params = self.model, self.params
                # `fit` of the second model already handed it to the callback: give the first
                # `fit` its model and params back before refusing the second.
                callback.set_model(running)
                callback.set_params(params)
                raise RuntimeError(
                    f"This {self.owner} is already used by a `fit` of model "
                    f"'{getattr(running, 'name', running)}' running in thread "
                    f"'{holder.name}'; it cannot serve model '{getattr(model, 'name', model)}' "
                    f"at the same time. Create one {self.owner} per model (one object can be "
                    "reused by `fit`s that run one after the other)."
                )
            self.model, self.params, self.thread = model, callback.params, current
        return model

    def release(self):
        with _LOCK:
            self.model = self.params = self.thread = None

    def __deepcopy__(self, memo):
        # A copied callback serves no fit yet (and a thread cannot be copied).
        return FitGuard(self.owner)
