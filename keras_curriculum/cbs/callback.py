"""`SigmaDecay`: the CBS callback that decays the sigma of every smoothing layer, epoch by epoch."""

import warnings

import keras

from keras_curriculum._fit_guard import FitGuard
from keras_curriculum._validation import check_fit_has_data
from keras_curriculum._validation import check_int
from keras_curriculum.cbs.insertion import smoothing_layers
from keras_curriculum.cbs.schedule import DEFAULT_EVERY
from keras_curriculum.cbs.schedule import DEFAULT_FACTOR
from keras_curriculum.cbs.schedule import check_decay
from keras_curriculum.cbs.schedule import decay_period
from keras_curriculum.cbs.schedule import sigma_at_epoch
from keras_curriculum.durations import is_fraction
from keras_curriculum.epoch_logs import CurriculumLogs

# Below this share of its start by the fit's last epoch, sigma has visibly decayed.
MIN_DECAY = 0.5


@keras.saving.register_keras_serializable(package="keras_curriculum")
class SigmaDecay(CurriculumLogs, keras.callbacks.Callback):
    """Decays the sigma of every `GaussianSmoothing` layer of the model, epoch by epoch.

    At the beginning of every epoch e (counted from 0) of a fit of T epochs, this callback sets
    each smoothing layer's sigma to

        sigma_e = sigma_0 * factor ** (e / (every * T))     (`every` a fraction of the fit)
        sigma_e = sigma_0 * factor ** floor(e / every)      (`every` an int, in epochs)

    where sigma_0 is the `sigma` the layer was built with. The default is the paper's curve
    over the fraction of the run: 0.9 every 5 of 200 epochs (Table 1: factor 0.9, every 2 to 5
    epochs; the CIFAR runs last 200 epochs), i.e. sigma_0 * 0.9 ** (40 e / T), applied at every
    epoch so that a short fit decays as much as a long one (an 8-epoch fit multiplies sigma by
    0.9 ** 5 = 0.59 per epoch). An int `every` keeps the paper's staircase in epochs.

    The value depends on the epoch index only, so a run resumed by
    `keras.callbacks.BackupAndRestore` (or `fit(initial_epoch=...)`) continues exactly where it
    stopped. When sigma crosses a layer's bypass point (its kernel becomes the identity within
    `bypass_tolerance`), the callback retraces the model's compiled train/test/predict
    functions once, and from then on smoothing costs nothing. Before the first step, a schedule
    under which sigma stays above half its start for the whole fit is reported with a warning.

    At the end of every epoch, `logs` receives `cbs_sigma`, the largest current sigma, and
    `cbs_active_layers`, the number of smoothing layers still convolving; they reach every
    callback (`History`, `TensorBoard`, `CSVLogger`), wherever it is in the list.

    Args:
        factor: float in (0, 1], the decay factor d (paper: 0.9). 1 keeps sigma constant.
        every: the decay period u: a float in (0, 1), a fraction of the fit (default 5/200 =
            0.025, the paper's proportion), or an int >= 1, a count of epochs (paper Table 1:
            2 to 5 for images). See `keras_curriculum.durations`.
        verbose: int, 0 (silent) or 1 (a line when a layer stops smoothing).

    Example:

    ```python
    model = kc.add_smoothing(resnet, sigma=1.0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=30, callbacks=[kc.SigmaDecay()])  # sigma_0 * 0.9 ** (40 e / 30)
    model.fit(x, y, epochs=200, callbacks=[kc.SigmaDecay(factor=0.9, every=5)])  # staircase
    ```

    References:
        Sinha, Garg, Larochelle. "Curriculum By Smoothing", NeurIPS 2020.
    """

    def __init__(self, factor=DEFAULT_FACTOR, every=DEFAULT_EVERY, verbose=0):
        super().__init__()
        self.factor, self.every = check_decay(factor, every)
        self.verbose = check_int("verbose", verbose, 0, 2)
        self._layers = []
        self._epochs = None
        self._guard = FitGuard("SigmaDecay")

    def resolved_every(self, epochs):
        """The decay period u in epochs for a fit of `epochs` epochs (a float for a fraction)."""
        return decay_period(self.every, epochs)

    def sigma_at(self, layer, epoch):
        """The sigma `layer` gets at the start of `epoch` (of the fit being run)."""
        if is_fraction(self.every) and self._epochs is None:
            raise ValueError(
                f"SigmaDecay(every={self.every}) is a fraction of the fit: it is resolved when "
                "`fit` starts; use `kc.sigma_at_epoch(..., epochs=...)` before that."
            )
        return sigma_at_epoch(layer.sigma, epoch, self.factor, self.every, self._epochs)

    def _warn_if_inactive(self, epochs):
        left = sigma_at_epoch(1.0, epochs - 1, self.factor, self.every, epochs)
        if left > MIN_DECAY:
            warnings.warn(
                f"SigmaDecay(factor={self.factor:g}, every={self.every!r}) leaves sigma at "
                f"{left:.0%} of its start in the last epoch of this {epochs}-epoch fit: the "
                "smoothing hardly changes and CBS acts as a fixed blur. Pass `every` as a "
                f"fraction of the fit, e.g. every={DEFAULT_EVERY} (the paper's 5 of 200 "
                "epochs), a smaller `factor`, or train longer.",
                stacklevel=3,
            )

    def plot(self, path, epochs=None, initial_sigma=1.0, kernel_size=3, rank=2, title=None):
        """Saves a PNG of sigma per epoch (`plot_cbs`); `epochs` defaults to the last fit's."""
        from keras_curriculum.cbs.plot import plot_cbs

        epochs = epochs or (self.params or {}).get("epochs")
        return plot_cbs(self, path, epochs, initial_sigma, kernel_size, rank, title)

    def on_train_begin(self, logs=None):
        model = self._guard.claim(self)
        try:
            check_fit_has_data("SigmaDecay", self.params)
            self._epochs = self.params.get("epochs") or 1
            self._layers = smoothing_layers(model)
            if not self._layers:
                raise ValueError(
                    f"SigmaDecay found no GaussianSmoothing layer in `model` '{model.name}'. "
                    "Insert them with `kc.add_smoothing(model)` or add `kc.GaussianSmoothing` "
                    "layers to the model."
                )
        except ValueError:
            self._guard.release()
            raise
        self._warn_if_inactive(self._epochs)

    def on_epoch_begin(self, epoch, logs=None):
        switched = [layer.set_sigma(self.sigma_at(layer, epoch)) for layer in self._layers]
        if any(switched):
            if self.verbose:
                print(
                    f"\nEpoch {epoch + 1}: CBS smoothing is now the identity in "
                    f"{sum(switched)} layer(s); they pass their input through."
                )
            self._retrace()

    def _retrace(self):
        # Whether a layer convolves is a Python-level decision taken while tracing, so the
        # compiled functions must be rebuilt to see the switch. This costs one retrace per run;
        # the alternative, an on-device `ops.cond` on sigma in every layer, costs a conditional
        # per layer per step for the whole run (benchmarks/cbs.py times both variants).
        # The fit's own model, even if a concurrent fit was refused after replacing it.
        model = self._guard.model or self.model
        model.make_train_function(force=True)
        model.make_test_function(force=True)
        model.make_predict_function(force=True)

    def epoch_logs(self, epoch):
        if not self._layers:
            return {}
        return {
            "cbs_sigma": max(layer.current_sigma for layer in self._layers),
            "cbs_active_layers": sum(not layer.passes_through for layer in self._layers),
        }

    def on_epoch_end(self, epoch, logs=None):
        self.write_epoch_logs(epoch, logs)

    def on_train_end(self, logs=None):
        self._guard.release()

    def get_config(self):
        return {"factor": self.factor, "every": self.every, "verbose": self.verbose}

    @classmethod
    def from_config(cls, config):
        # keras.callbacks.Callback has no from_config: without it a serialized SigmaDecay
        # cannot be deserialized.
        return cls(**config)
