"""`SigmaDecay`: the CBS callback that decays the sigma of every smoothing layer, epoch by epoch."""

import keras

from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_number
from keras_curriculum.cbs.insertion import smoothing_layers
from keras_curriculum.cbs.schedule import sigma_at_epoch
from keras_curriculum.durations import check_duration
from keras_curriculum.durations import is_fraction
from keras_curriculum.durations import resolve_duration


@keras.saving.register_keras_serializable(package="keras_curriculum")
class SigmaDecay(keras.callbacks.Callback):
    """Decays the sigma of every `GaussianSmoothing` layer of the model, epoch by epoch.

    At the beginning of every epoch e (counted from 0), this callback sets each smoothing
    layer's sigma to

        sigma_e = sigma_0 * factor ** floor(e / every)

    where sigma_0 is the `sigma` the layer was built with. The value depends on the epoch index
    only, so a run resumed by `keras.callbacks.BackupAndRestore` (or `fit(initial_epoch=...)`)
    continues exactly where it stopped. When sigma crosses a layer's bypass point (its kernel
    becomes the identity within `bypass_tolerance`), the callback retraces the model's compiled
    train/test/predict functions once, and from then on smoothing costs nothing.

    At the end of every epoch, `logs` (and so `History`, `TensorBoard` placed after this callback,
    `CSVLogger`) receives `cbs_sigma`, the largest current sigma, and `cbs_active_layers`, the
    number of smoothing layers still convolving.

    Args:
        factor: float in (0, 1], the decay factor d (paper: 0.9). 1 keeps sigma constant.
        every: epochs between decays u: an int >= 1 (paper Table 1: 2 to 5 for images), or a
            float in (0, 1), a fraction of the fit resolved at the start of `fit` (see
            `keras_curriculum.durations`).
        verbose: int, 0 (silent) or 1 (a line when a layer stops smoothing).

    Example:

    ```python
    model = kc.add_smoothing(resnet, sigma=1.0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=200, callbacks=[kc.SigmaDecay(factor=0.9, every=5)])
    ```

    References:
        Sinha, Garg, Larochelle. "Curriculum By Smoothing", NeurIPS 2020.
    """

    def __init__(self, factor=0.9, every=5, verbose=0):
        super().__init__()
        self.factor = check_number("factor", factor, low=0.0, high=1.0, low_open=True)
        self.every = check_duration("every", every)
        self.verbose = check_int("verbose", verbose, 0, 2)
        self._layers = []
        self._every = None if is_fraction(self.every) else self.every

    def resolved_every(self, epochs):
        """The decay period u in epochs for a fit of `epochs` epochs."""
        return resolve_duration(self.every, epochs)

    def sigma_at(self, layer, epoch):
        """The sigma `layer` gets at the start of `epoch` (of the fit being run)."""
        if self._every is None:
            raise ValueError(
                f"SigmaDecay(every={self.every}) is a fraction of the fit: it is resolved when "
                "`fit` starts; use `resolved_every(epochs)` before that."
            )
        return sigma_at_epoch(layer.sigma, epoch, self.factor, self._every)

    def plot(self, path, epochs=None, initial_sigma=1.0, kernel_size=3, rank=2, title=None):
        """Saves a PNG of sigma per epoch (`plot_cbs`); `epochs` defaults to the last fit's."""
        from keras_curriculum.cbs.plot import plot_cbs

        epochs = epochs or (self.params or {}).get("epochs")
        return plot_cbs(self, path, epochs, initial_sigma, kernel_size, rank, title)

    def on_train_begin(self, logs=None):
        self._every = self.resolved_every(self.params.get("epochs") or 1)
        self._layers = smoothing_layers(self.model)
        if not self._layers:
            raise ValueError(
                f"SigmaDecay found no GaussianSmoothing layer in `model` '{self.model.name}'. "
                "Insert them with `kc.add_smoothing(model)` or add `kc.GaussianSmoothing` "
                "layers to the model."
            )

    def on_epoch_begin(self, epoch, logs=None):
        switched = [layer.set_sigma(self.sigma_at(layer, epoch)) for layer in self._layers]
        if any(switched):
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: CBS smoothing is now the identity in "
                      f"{sum(switched)} layer(s); they pass their input through.")
            self._retrace()

    def _retrace(self):
        # Whether a layer convolves is a Python-level decision taken while tracing, so the
        # compiled functions must be rebuilt to see the switch. This costs one retrace per run;
        # the alternative, an on-device `ops.cond` on sigma in every layer, costs a conditional
        # per layer per step for the whole run (benchmarks/cbs.py times both variants).
        self.model.make_train_function(force=True)
        self.model.make_test_function(force=True)
        self.model.make_predict_function(force=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not self._layers:
            return
        logs["cbs_sigma"] = max(layer.current_sigma for layer in self._layers)
        logs["cbs_active_layers"] = sum(not layer.passes_through for layer in self._layers)

    def get_config(self):
        return {"factor": self.factor, "every": self.every, "verbose": self.verbose}

    @classmethod
    def from_config(cls, config):
        # keras.callbacks.Callback has no from_config: without it a serialized SigmaDecay
        # cannot be deserialized.
        return cls(**config)
