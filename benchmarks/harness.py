"""Step-time comparison of `model.fit` with and without a curriculum, in one process.

Every variant is a `Variant(model, fit_kwargs)`: a compiled model and the keyword arguments of one
`fit` call (data, callbacks, steps). Rounds are interleaved (the order rotates from round to
round): in each round every variant runs one `fit` of `warmup + steps` batches, and only the
last `steps` batches are timed (so tracing, compilation and a callback's per-fit set-up stay out
of the figure). The baseline runs twice per
round, as "A" and "A2", and `aa_ratio` = median(A2) / median(A) is the noise floor of this machine
to read every other ratio against.
"""

import json
import os
import platform
import statistics
import time
from typing import NamedTuple

import keras
import numpy as np
from keras import ops


class Variant(NamedTuple):
    model: keras.Model
    fit_kwargs: dict


class _StepTimer(keras.callbacks.Callback):
    """Times batches `warmup..end` of one fit, waiting for the device at both ends."""

    def __init__(self, warmup):
        super().__init__()
        self.warmup = warmup
        self.start = None
        self.elapsed = None
        self.timed_steps = 0

    @staticmethod
    def _wait(logs):
        # Converting the last step's loss blocks until the device has finished that step (JAX
        # and torch dispatch asynchronously; TF returns when the step is done).
        if logs and "loss" in logs:
            ops.convert_to_numpy(logs["loss"])

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.warmup - 1:
            self._wait(logs)
            self.start = time.perf_counter()
            self.start_batch = batch
        self.last_batch = batch
        self.last_logs = logs

    def on_epoch_end(self, epoch, logs=None):
        self._wait(self.last_logs)
        self.elapsed = time.perf_counter() - self.start
        self.timed_steps = self.last_batch - self.start_batch


class TraceCounter:
    """Records every trace of `model.train_step`: `traces` holds `(tag(), input shape)` each.

    On TF and JAX the Python body of the step runs once per trace, so counting its calls counts
    traces. The wrapper is a method of a subclass swapped in as the model's class, so that
    `model.train_step` stays a fresh bound method at each build of the train function, as
    without the counter: a plain function stored on the instance would be one object across
    builds, and `jax.jit` would reuse its cached trace, hiding (and skipping) the retraces.
    """

    def __init__(self, model, tag=lambda: None):
        self.traces = []
        counter, base = self, type(model)

        def train_step(self, *args, **kwargs):
            data = args[-1]
            x = data[0] if isinstance(data, (tuple, list)) else data
            counter.traces.append((tag(), [None if d is None else int(d) for d in x.shape]))
            return base.train_step(self, *args, **kwargs)

        object.__setattr__(
            model,
            "__class__",
            type(f"TraceCounted{base.__name__}", (base,), {"train_step": train_step}),
        )

    @property
    def count(self):
        return len(self.traces)

    @property
    def shapes(self):
        return [shape for _, shape in self.traces]


def time_fit(variant, warmup, steps):
    """Seconds per step of one `fit` of `warmup + steps` batches, excluding the warm-up."""
    timer = _StepTimer(warmup)
    kwargs = dict(variant.fit_kwargs)
    kwargs["callbacks"] = list(kwargs.get("callbacks", [])) + [timer]
    kwargs.setdefault("verbose", 0)
    variant.model.fit(epochs=1, steps_per_epoch=warmup + steps, **kwargs)
    if timer.timed_steps < 1:
        raise RuntimeError("No step was timed: the dataset is shorter than warmup + steps.")
    return timer.elapsed / timer.timed_steps


def compare(baseline, variants, rounds=5, warmup=3, steps=20):
    """Interleaved median step times; returns a JSON-ready dict with ratios to the baseline.

    Args:
        baseline: `Variant` of conventional training.
        variants: dict name -> `Variant` of the method(s).
        rounds: rounds of interleaved timing (median over rounds).
        warmup: untimed batches at the start of every fit (>= 1).
        steps: timed batches per fit.
    """
    times = {"A": [], "A2": [], **{name: [] for name in variants}}
    order = [("A", baseline)] + list(variants.items()) + [("A2", baseline)]
    # One untimed pass first: compilation of every variant stays out of round 1.
    for _, variant in order:
        time_fit(variant, warmup, 1)
    for round_index in range(rounds):
        # Rotate the order every round so no variant always runs first (or right after the
        # same neighbour): position effects then cancel out of the medians.
        shift = round_index % len(order)
        for name, variant in order[shift:] + order[:shift]:
            times[name].append(time_fit(variant, warmup, steps))
    median = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "backend": keras.backend.backend(),
        "device": _device(),
        "rounds": rounds,
        "timed_steps_per_round": steps,
        "baseline_step_ms": round(median["A"] * 1e3, 3),
        "aa_ratio": round(median["A2"] / median["A"], 4),
    }
    for name in variants:
        result[f"{name}_step_ms"] = round(median[name] * 1e3, 3)
        result[f"{name}_ratio"] = round(median[name] / median["A"], 4)
    return result


def _device():
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            return str(jax.devices()[0].device_kind)
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - the label is informative only
        pass
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def print_json(result):
    print(json.dumps(result), flush=True)


def synthetic_images(n, size, channels, classes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, size, size, channels)).astype("float32")
    y = rng.integers(0, classes, size=n).astype("int32")
    return x, y
