"""LeRaC: Learning Rate Curriculum (Croitoru et al., IJCV 2024) as a Keras callback."""

import math

import keras
import numpy as np
from keras.optimizers.schedules import LearningRateSchedule

from keras_curriculum import _keras_internals as internals
from keras_curriculum import processes
from keras_curriculum._fit_guard import FitGuard
from keras_curriculum._host import to_numpy
from keras_curriculum._validation import check_bool
from keras_curriculum._validation import check_choice
from keras_curriculum._validation import check_fit_has_data
from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_model
from keras_curriculum._validation import check_number
from keras_curriculum._validation import take_renamed
from keras_curriculum.durations import check_duration
from keras_curriculum.durations import describe_duration
from keras_curriculum.epoch_logs import CurriculumLogs
from keras_curriculum.lerac import layer_groups
from keras_curriculum.lerac import length
from keras_curriculum.lerac import schedules
from keras_curriculum.lerac.layer_groups import check_groups
from keras_curriculum.lerac.length import UNITS
from keras_curriculum.lerac.rate_scaling import RateScaling
from keras_curriculum.lerac.step_reuse import StepReuse

_RENAMED = {"k": "duration", "lowest_lr": "min_learning_rate", "highest_lr": "max_learning_rate"}
BASE_SCHEDULES = ("hold", "multiply")


@keras.saving.register_keras_serializable(package="keras_curriculum")
class LeRaC(CurriculumLogs, keras.callbacks.Callback):
    """Learning-rate curriculum: deeper layers start slower and catch up within k epochs.

    At the beginning of training, this callback gives every layer group of the model its own
    learning rate: the group nearest the input starts at `max_learning_rate`, the one nearest the
    output at `min_learning_rate`, the others evenly spaced in log space between them. Every rate
    then rises to the optimizer's own learning rate over the first `duration` epochs (or steps),
    k in the paper's Eq. 8:

        eta_j^(l) = eta_j^(0) * c ** ((l / k) * (log_c eta^(0) - log_c eta_j^(0))),  l = 0..k

    After k the model trains exactly as it would without the callback. The per-variable rates
    are computed inside the train step from the optimizer's iteration counter, so they work with
    every built-in optimizer (the update is the one the optimizer makes at that rate, decoupled
    weight decay included), under `jit_compile`, `steps_per_execution`, `tf.distribute`, on
    TensorFlow, JAX and PyTorch, and they resume with the optimizer's state after
    `keras.callbacks.BackupAndRestore`.

    Layer groups come from the model graph: a layer's depth is the number of layers with
    trainable variables on the longest path from an input to it, so parallel branches and
    residual shortcuts share a rate, all variables of a layer share its rate, and nested models
    (keras-hub backbones) are expanded. Sequential and subclassed models are ordered as
    `model.layers`. `groups` overrides this.

    If the optimizer's learning rate is a `LearningRateSchedule`, the paper's protocol is
    followed by default: the schedule is held at its initial value during the curriculum and
    then runs from its start (shifted by k). `base_schedule="multiply"` instead lets the schedule
    run from step 0 and multiplies it by the curriculum factors.

    The defaults are the paper's proportions, so the curriculum acts in a fit of any length:
    k = 5 % of the fit (Table 1: k = 5 to 7 epochs over 100 to 200), counted in steps when 5 %
    of the fit is less than one epoch, and the deepest group starting 5 orders of magnitude
    below the first (Table 1: 3 to 7). Before the first step, a curriculum longer than half the
    fit is reported with a warning.

    Args:
        duration: the curriculum length k: an int >= 1, a count of `unit`s (paper: 2 to 7
            epochs), or a float in (0, 1), a fraction of the fit resolved at the start of `fit`
            (see `keras_curriculum.durations`). Default 0.05, 5 % of the fit. `k` is its
            deprecated name.
        min_learning_rate: float > 0, the initial rate of the deepest group, eta_n^(0), or None
            (default): 1e-5 times the first group's initial rate (Table 1 starts it 3 to 7
            orders of magnitude below the optimizer's; 5 is our choice in that span).
            `lowest_lr` is its deprecated name.
        max_learning_rate: float in [min_learning_rate, base rate], the initial rate of the
            group nearest the input, eta_1^(0). Defaults to the optimizer's base learning rate.
            `highest_lr` is its deprecated name.
        unit: `"epoch"` (rates change at epoch boundaries, the paper's practice), `"step"`
            (l counts optimizer steps, rates change every step) or `"auto"` (default): epochs,
            except for a fractional `duration` that covers less than one epoch of the fit, then
            steps (when the steps per epoch are known; otherwise epochs, at least one).
        c: float > 1, the base of the exponential update. Eq. 8 does not depend on it; it is the
            per-event factor of `update="stepwise"`.
        update: `"exponential"` (paper Eq. 8), `"linear"` (paper Table 5: rates rise linearly),
            or `"stepwise"` (the rule of the authors' code: each rate is multiplied by `c` once
            per unit, capped at the base rate, and all reach it at `k` at the latest). The
            authors' code also starts its groups on whole decades per residual block and, for
            some sets, raises the rates 2 or 4 times an epoch: pass `groups` and
            `steps_per_epoch` (an epoch's steps / events per epoch) for those. `"official"` is
            the deprecated name of `"stepwise"`.
        groups: `"depth"` (default), a list of layer-name patterns (`fnmatch`, one entry per
            group, input side first; an entry may be a list of patterns), or a callable taking
            the model and returning a list of groups, each a layer, a list of layers or a list
            of variables. Every trainable variable must belong to a group.
        base_schedule: `"hold"` (default, the paper) or `"multiply"`; see above. Only matters
            when the optimizer's learning rate is a `LearningRateSchedule`.
        steps_per_epoch: int >= 1 or None. With `unit="epoch"` the epoch of a step is
            `step // steps_per_epoch`; by default the number of steps `fit` runs per epoch.
            Needed for datasets of unknown length when `fit` gets no `steps_per_epoch`.
        log_groups: bool. Add every group's rate to the epoch logs (and so to TensorBoard) as
            `lerac_lr/<index>_<layer>`; the first and last groups' rates are always logged as
            `lerac_lr_first` and `lerac_lr_last`.
        verbose: int, 0 (silent) or 1 (a line when the curriculum starts and when it ends).

    Example:

    ```python
    model.compile(optimizer=keras.optimizers.Adamax(2e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # The paper's proportions: k = 5 % of the fit, the deepest group 1e-5 below the first.
    model.fit(x_train, y_train, epochs=20, callbacks=[kc.LeRaC()])
    # Explicit: 5 epochs, from 2e-3 down to 1e-8 (counts mean the same in every fit).
    model.fit(x_train, y_train, epochs=20,
              callbacks=[kc.LeRaC(duration=5, min_learning_rate=1e-8)])
    ```

    References:
        Croitoru, Ristea, Ionescu, Sebe. "Learning Rate Curriculum", IJCV 2024.
    """

    def __init__(
        self,
        duration=length.DEFAULT_DURATION,
        min_learning_rate=None,
        max_learning_rate=None,
        unit="auto",
        c=10.0,
        update="exponential",
        groups="depth",
        base_schedule="hold",
        steps_per_epoch=None,
        log_groups=False,
        verbose=0,
        **deprecated,
    ):
        super().__init__()
        renamed = take_renamed(deprecated, _RENAMED, "LeRaC")
        duration = renamed.get("duration", duration)
        min_learning_rate = renamed.get("min_learning_rate", min_learning_rate)
        max_learning_rate = renamed.get("max_learning_rate", max_learning_rate)
        self.duration = check_duration("duration", duration)
        self.min_learning_rate = check_number(
            "min_learning_rate", min_learning_rate, low=0.0, low_open=True, allow_none=True
        )
        self.max_learning_rate = check_number(
            "max_learning_rate", max_learning_rate, low=0.0, low_open=True, allow_none=True
        )
        if None not in (min_learning_rate, max_learning_rate) and (
            min_learning_rate > max_learning_rate
        ):
            raise ValueError(
                "`min_learning_rate` must not exceed `max_learning_rate`. Received: "
                f"min_learning_rate={min_learning_rate}, max_learning_rate={max_learning_rate}"
            )
        self.unit = check_choice("unit", unit, UNITS)
        self.c = check_number("c", c, low=1.0, low_open=True)
        if isinstance(update, str) and update in schedules.DEPRECATED_UPDATES:
            import warnings

            warnings.warn(
                f"LeRaC: update={update!r} is deprecated and will be removed in the next "
                f"release; use update={schedules.DEPRECATED_UPDATES[update]!r} (the same rule).",
                DeprecationWarning,
                stacklevel=2,
            )
            update = schedules.DEPRECATED_UPDATES[update]
        self.update = check_choice("update", update, schedules.LERAC_UPDATES)
        self.groups = check_groups(groups)
        self.base_schedule = check_choice("base_schedule", base_schedule, BASE_SCHEDULES)
        self.steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, 1, allow_none=True)
        self.log_groups = check_bool("log_groups", log_groups)
        self.verbose = check_int("verbose", verbose, 0, 2)
        self._scaling = None
        self._curriculum_steps = None
        self._log_ratios = None
        self._steps = StepReuse()  # the compiled steps of its fits
        self._resolved = None  # (unit, k) of the last plan
        self._epoch_steps = None  # steps per epoch of the last plan, if known
        self._guard = FitGuard("LeRaC")
        self._first_epoch = False

    def describe_duration(self):
        """The curriculum length as given: "5 epochs", "5% of the fit"."""
        return describe_duration(self.duration, self.resolved_unit())

    def resolved_unit(self, epochs=None, steps_per_epoch=None):
        """The unit k is counted in for a fit of `epochs` x `steps_per_epoch` (see `unit`)."""
        return length.resolve_unit(
            self.duration, self.unit, epochs, self.steps_per_epoch or steps_per_epoch
        )

    def resolved_duration(self, epochs, steps_per_epoch=None):
        """k in `resolved_unit(...)`s for a fit of `epochs` epochs of `steps_per_epoch` steps."""
        steps_per_epoch = self.steps_per_epoch or steps_per_epoch
        return length.resolve_k(
            self.duration, self.resolved_unit(epochs, steps_per_epoch), epochs, steps_per_epoch
        )

    # Planning: pure with respect to the model, used by training, logs and plots -------------

    def layer_groups(self, model):
        """The model's LeRaC groups (`LayerGroup` list, input side first)."""
        if self.groups == "depth":
            return layer_groups.depth_groups(model)
        if callable(self.groups):
            return layer_groups.explicit_groups(model, self.groups(model))
        return layer_groups.pattern_groups(model, self.groups)

    def _plan(self, model, steps_per_epoch, epochs=None):
        check_model("model", model)
        optimizer = model.optimizer
        if optimizer is None:
            raise ValueError(
                "LeRaC needs a compiled model with an optimizer: call "
                "`model.compile(optimizer=...)` before `fit`."
            )
        optimizer = internals.base_optimizer(optimizer)
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        groups = self.layer_groups(model)
        group_of_variable = {id(v): g for g, group in enumerate(groups) for v in group.variables}
        group_of_index = []
        for variable in internals.optimizer_variables_in_order(optimizer):
            if id(variable) not in group_of_variable:
                raise ValueError(
                    f"The optimizer updates variable '{variable.path}', which is in no LeRaC "
                    "group: pass `groups` that cover every variable the optimizer trains."
                )
            group_of_index.append(group_of_variable[id(variable)])

        base_rate = self._initial_base_rate(optimizer)
        highest = base_rate if self.max_learning_rate is None else self.max_learning_rate
        if highest > base_rate * (1 + 1e-6):
            raise ValueError(
                f"`max_learning_rate` must not exceed the optimizer's learning rate "
                f"({base_rate:g}): LeRaC raises rates to it. Received: "
                f"max_learning_rate={highest:g}"
            )
        lowest = self.min_learning_rate
        if lowest is None:
            lowest = highest * length.DEFAULT_RATE_RATIO
        if lowest > highest:
            raise ValueError(
                "`min_learning_rate` must not exceed the initial rate of the first group "
                f"({highest:g}). Received: min_learning_rate={lowest:g}"
            )
        initial = schedules.log_spaced_rates(len(groups), highest, lowest)
        log_ratios = self._log_ratios = np.log(initial / base_rate).astype("float32")

        steps_per_epoch = self.steps_per_epoch or steps_per_epoch
        unit = self.resolved_unit(epochs, steps_per_epoch)
        if unit == "step":
            steps_per_unit = 1
        else:
            steps_per_unit = steps_per_epoch
            if not steps_per_unit:
                raise ValueError(
                    "LeRaC(unit='epoch') needs the number of steps per epoch, and this dataset's "
                    "length is unknown: pass `steps_per_epoch` to `fit` or to `LeRaC`, or use "
                    "unit='step'." + processes.LENGTH_HINT * (processes.process_count() > 1)
                )
        k = length.resolve_k(self.duration, unit, epochs, steps_per_epoch)
        update, c = self.update, self.c
        self._curriculum_steps = k * steps_per_unit
        self._epoch_steps = steps_per_epoch
        self._resolved = (unit, k)

        def scales_fn(step):
            elapsed = schedules.lerac_elapsed_units(step, steps_per_unit)
            return schedules.lerac_scales(log_ratios, elapsed, k, update, c)

        hold = self.base_schedule == "hold" and isinstance(
            internals.learning_rate_object(optimizer), LearningRateSchedule
        )
        return RateScaling(
            optimizer,
            group_of_index,
            scales_fn,
            hold_steps=k * steps_per_unit if hold else None,
        ), groups

    @staticmethod
    def _initial_base_rate(optimizer):
        rate = internals.learning_rate_object(optimizer)
        if isinstance(rate, LearningRateSchedule):
            rate = rate(0)
        elif callable(rate) and not isinstance(rate, keras.Variable):
            rate = rate()
        value = float(to_numpy(rate))
        if not math.isfinite(value) or value <= 0:
            raise ValueError(
                "The optimizer's `learning_rate` must be a finite number > 0 at step 0 for "
                f"LeRaC. Received: learning_rate={value}"
            )
        return value

    def rates(self, model, steps, steps_per_epoch=None, epochs=None):
        """Learning rate of every group at each step in `steps`, as LeRaC would set them.

        Args:
            model: a compiled, built model.
            steps: iterable of optimizer steps.
            steps_per_epoch: steps per epoch (needed with `unit="epoch"`).
            epochs: the fit's epochs (needed when `duration` is a fraction of the fit).

        Returns:
            `(group_names, rates)` with `rates` a float64 array `(len(steps), num_groups)`.
        """
        steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, 1, allow_none=True)
        epochs = check_int("epochs", epochs, 1, allow_none=True)
        scaling, groups = self._plan(model, steps_per_epoch, epochs)
        table = np.stack([scaling.group_rates_at(step) for step in steps])
        return [group.name for group in groups], table

    # Callback hooks ---------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        model = self._guard.claim(self)
        try:
            steps = check_fit_has_data("LeRaC", self.params)
            epochs = self.params.get("epochs")
            scaling, groups = self._plan(model, steps, epochs)
            length.warn_if_dominant(
                self.duration, *self._resolved, epochs, self.steps_per_epoch or steps
            )
        except Exception:
            self._guard.release()
            raise
        scaling.install()
        if self.verbose:
            print(
                f"LeRaC: {len(groups)} layer groups, rates rising over "
                f"{self._curriculum_steps} steps ({self.describe_duration()})."
            )
        self._scaling, self._group_names = scaling, [group.name for group in groups]
        self._finish_if_over()
        self._first_epoch = True
        self._steps.begin(model, self._function_key(scaling))

    def _function_key(self, scaling):
        return (
            id(scaling.optimizer),
            self._curriculum_steps,
            scaling.hold_steps,
            scaling.finished,
            tuple(scaling.group_of_index),
            self._log_ratios.tobytes(),
            self.update,
            self.c,
        )

    def _finish_if_over(self):
        """After k, hands the update back to the optimizer's own code (one retrace)."""
        if self._scaling.finished:
            return False
        step = self._scaling.current_step()
        if step < self._curriculum_steps:
            return False
        self._scaling.finish_curriculum()
        if self.verbose:
            print(f"\nLeRaC: curriculum over at step {step}; every group at the base rate.")
        return True

    def on_epoch_begin(self, epoch, logs=None):
        # Checked at epoch boundaries only: reading the step counter is free there on every
        # backend (JAX syncs its state at epoch end), and retracing once is cheap.
        if self._scaling is None:
            return
        changed = False
        if self._first_epoch:
            # After a mid-epoch `BackupAndRestore` resume, follow the epoch Keras replays.
            self._first_epoch = False
            steps = (self._guard.params or {}).get("steps")
            changed = bool(steps) and self._scaling.align(epoch, steps)
        if (epoch > 0 or changed) and self._finish_if_over():
            changed = True
        if changed:
            self._guard.model.make_train_function(force=True)

    def epoch_logs(self, epoch):
        """`lerac_lr_first`, `lerac_lr_last` (and each group's rate with `log_groups`): the
        rates of the epoch's last step."""
        if self._scaling is None:
            return {}
        step = self._scaling.current_step()
        if self._epoch_steps:
            # On a dataset of unknown length Keras's TensorFlow loop counts one step more
            # than it trains (the call that finds the data exhausted).
            step = min(step, (epoch + 1) * self._epoch_steps)
        step -= 1
        rates = self._scaling.group_rates_at(max(step, 0))
        logs = {"lerac_lr_first": float(rates[0]), "lerac_lr_last": float(rates[-1])}
        if self.log_groups:
            for index, (name, rate) in enumerate(zip(self._group_names, rates)):
                logs[f"lerac_lr/{index:02d}_{name}"] = float(rate)
        return logs

    def on_epoch_end(self, epoch, logs=None):
        self.write_epoch_logs(epoch, logs)

    def on_train_end(self, logs=None):
        if self._scaling is not None:
            model = self._guard.model
            self._scaling.remove()
            self._scaling = None
            self._steps.end(model)
        self._guard.release()

    def plot(self, path, model=None, steps=None, steps_per_epoch=None, epochs=None, title=None):
        """Saves a PNG of every group's rate against the step (`plot_lerac`).

        After a `fit`, `model`, `steps_per_epoch` and `epochs` default to that fit's, and
        `steps` to the curriculum and as long again.
        """
        from keras_curriculum.lerac.plot import plot_lerac

        params = self.params or {}
        model = model if model is not None else self.model
        steps_per_epoch = steps_per_epoch or params.get("steps")
        epochs = epochs or params.get("epochs")
        if steps is None:
            unit = self.resolved_unit(epochs or 1, steps_per_epoch)
            per_unit = 1 if unit == "step" else (steps_per_epoch or 1)
            steps = range(2 * self.resolved_duration(epochs or 1, steps_per_epoch) * per_unit + 1)
        return plot_lerac(self, model, steps, path, steps_per_epoch, title, epochs=epochs)

    @classmethod
    def from_config(cls, config):
        # keras.callbacks.Callback has no from_config: without it a serialized LeRaC cannot be
        # deserialized.
        return cls(**config)

    def get_config(self):
        return {
            "duration": self.duration,
            "min_learning_rate": self.min_learning_rate,
            "max_learning_rate": self.max_learning_rate,
            "unit": self.unit,
            "c": self.c,
            "update": self.update,
            "groups": self.groups,
            "base_schedule": self.base_schedule,
            "steps_per_epoch": self.steps_per_epoch,
            "log_groups": self.log_groups,
            "verbose": self.verbose,
        }
