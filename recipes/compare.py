"""The comparison runner: every method x every seed on one recipe, then a paper-style table.

Each run builds a fresh model from the recipe, lets the method prepare model, data and callbacks
(only through the package's public API, see `recipes/methods.py`), trains with Keras progress bars,
and records test accuracy, wall time, per-epoch validation accuracy against elapsed time, the test
predictions (for McNemar's test against conventional training with the same seed) and what its
curriculum did (`recipes/activity.py`): an arm whose curriculum did not act is refused unless
`allow_inactive`.
"""

import csv
import json
import os
import statistics
import time

import keras
import numpy as np

from . import activity as activity_lib
from . import methods as methods_lib
from . import processes


class _Clock(keras.callbacks.Callback):
    """Validation accuracy after every epoch against training wall time (validation excluded)."""

    def __init__(self):
        super().__init__()
        self.train_seconds = 0.0
        self.points = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.train_seconds += self._last - self._start
        if logs and "val_accuracy" in logs:
            self.points.append((self.train_seconds, float(logs["val_accuracy"])))


class _ActivityProbe(keras.callbacks.Callback):
    """Counts the training steps of every epoch and, after every step, whether each LeRaC
    callback's first and last layer groups trained at different rates (its logged
    `lerac_lr_first` and `lerac_lr_last`, read through `LeRaC.epoch_logs`)."""

    def __init__(self, lerac_callbacks=()):
        super().__init__()
        self.lerac = list(lerac_callbacks)
        self.epoch_steps = []
        self.lerac_steps = []

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._read = True
        self.epoch_steps.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.epoch_steps[-1] += 1
        if self.lerac and self._read and keras.backend.backend() == "jax":
            # Mid-epoch, JAX keeps the optimizer's counter in the trainer's state and the
            # variable holds no value ("'NoneType' object is not callable" in `epoch_logs`):
            # `self.model` syncs it, a copy of every variable per step while LeRaC acts.
            self.model  # noqa: B018
        if self.lerac:
            inside = self._read and any(
                activity_lib.lerac_inside(rates["lerac_lr_first"], rates["lerac_lr_last"])
                for rates in (callback.epoch_logs(self._epoch) for callback in self.lerac)
                if rates
            )
            # The rates only rise towards the base rate: once a step is outside the curriculum,
            # the rest of the epoch is too (read again from the next epoch's first step), which
            # spares a read of the optimizer's step counter per step.
            self._read = inside
            self.lerac_steps.append(inside)


def mcnemar_pvalue(correct_a, correct_b):
    """Exact McNemar test (two-sided binomial test on the discordant pairs)."""
    from scipy.stats import binomtest

    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def run_one(recipe, method, seed, epochs, out_dir, verbose, allow_inactive=False):
    keras.utils.set_random_seed(seed)
    arm = methods_lib.prepare(method, recipe, seed, epochs)  # in the regime of its method
    model, train, callbacks, image_size = arm[:4]
    model.compile(
        optimizer=arm.optimizer,
        loss=arm.loss,
        metrics=["accuracy"] + methods_lib.extra_metrics(callbacks),
    )
    clock = _Clock()
    import keras_curriculum as kc

    probe = _ActivityProbe([cb for cb in callbacks if isinstance(cb, kc.LeRaC)])
    log_dir = os.path.join(out_dir, "tensorboard", f"{method}_seed{seed}")
    callbacks = callbacks + [clock, probe, keras.callbacks.TensorBoard(log_dir, write_graph=False)]
    print(f"[{recipe.name}] {method}, seed {seed}: training {arm.epochs} epochs", flush=True)
    start = time.perf_counter()
    history = model.fit(
        train,
        epochs=arm.epochs,
        validation_data=arm.validation,
        callbacks=callbacks,
        verbose=verbose,
    )
    wall = time.perf_counter() - start
    if seed == 0:
        methods_lib.plot_run(callbacks, os.path.join(out_dir, "plots", f"seed{seed}"))
    history_values = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    figures = activity_lib.measure(
        method,
        history_values,
        probe.epoch_steps,
        probe.lerac_steps,
        arm.image_size or getattr(recipe, "upscaled_size", None),
    )
    inactive = activity_lib.check_acts(method, seed, figures, allow_inactive)
    if inactive:
        print(
            f"[{recipe.name}] {method}, seed {seed}: INACTIVE (kept: --allow-inactive): "
            + "; ".join(inactive),
            flush=True,
        )
    x_test, y_test = recipe.test_arrays(image_size)
    predictions = np.argmax(processes.predictions(model, x_test, 512), axis=-1)
    correct = predictions == y_test
    accuracy = float(np.mean(correct))
    print(
        f"[{recipe.name}] {method}, seed {seed}: test accuracy {accuracy:.4f}, {wall:.1f} s",
        flush=True,
    )
    return {
        "method": method,
        "seed": seed,
        "accuracy": accuracy,
        "wall_seconds": wall,
        "train_seconds": clock.train_seconds,
        "curve": clock.points,
        "history": history_values,
        "epoch_steps": probe.epoch_steps,
        "activity": figures,
        "correct": correct,
    }


def summarize(results, methods, recipe=None):
    rows = []
    train_seconds = {
        m: statistics.mean(r["train_seconds"] for r in results if r["method"] == m)
        for m in methods
        if any(r["method"] == m for r in results)
    }
    for method in methods:
        # Each arm is compared with conventional training in its regime (`conventional_docl`
        # for DoCL, ...), EfficientTrain with conventional training at its (upscaled) size.
        reference = (
            methods_lib.reference(recipe, method, methods) if recipe is not None else "conventional"
        )
        baseline = {r["seed"]: r["correct"] for r in results if r["method"] == reference}
        runs = [r for r in results if r["method"] == method]
        accuracies = [100 * r["accuracy"] for r in runs]
        wall_ratio = (
            train_seconds[method] / train_seconds[reference]
            if reference in train_seconds and train_seconds[reference] > 0
            else None
        )
        row = {
            "method": method,
            "seeds": len(runs),
            "accuracy_mean": statistics.mean(accuracies),
            "accuracy_std": statistics.stdev(accuracies) if len(runs) > 1 else 0.0,
            "train_seconds_mean": train_seconds[method],
            "activity": activity_lib.describe(
                method, [r.get("activity", {}) for r in runs], wall_ratio
            ),
            "mcnemar_p": None,
        }
        row["mcnemar_vs"] = reference if method != reference and baseline else None
        if method != reference and baseline:
            paired = [r for r in runs if r["seed"] in baseline]
            if paired:
                row["mcnemar_p"] = mcnemar_pvalue(
                    np.concatenate([r["correct"] for r in paired]),
                    np.concatenate([baseline[r["seed"]] for r in paired]),
                )
        rows.append(row)
    return rows


def markdown_table(rows, title):
    lines = [
        f"### {title}",
        "",
        "| method | accuracy (%) mean ± std | seeds | train time (s) | McNemar p (vs) "
        "| activity (measured) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        p = "—" if row["mcnemar_p"] is None else f"{row['mcnemar_p']:.3g} ({row['mcnemar_vs']})"
        lines.append(
            f"| {row['method']} | {row['accuracy_mean']:.2f} ± {row['accuracy_std']:.2f} | "
            f"{row['seeds']} | {row['train_seconds_mean']:.1f} | {p} | "
            f"{row.get('activity', '—')} |"
        )
    return "\n".join(lines) + "\n"


def mean_curve(runs):
    """`(time, mean, low, high)` per epoch over the runs of one method: mean elapsed training
    time, mean validation accuracy and its min and max over seeds (epochs all runs reached)."""
    curves = [run["curve"] for run in runs if run["curve"]]
    if not curves:
        return None
    length = min(len(curve) for curve in curves)
    times = np.array([[point[0] for point in curve[:length]] for curve in curves])
    accuracy = np.array([[point[1] for point in curve[:length]] for curve in curves])
    return (times.mean(axis=0), accuracy.mean(axis=0), accuracy.min(axis=0), accuracy.max(axis=0))


def plot_accuracy_vs_time(results, methods, path):
    """One line per method: the mean over seeds, with a band from the seeds' min to max."""
    from keras_curriculum.plotting import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for index, method in enumerate(methods):
        curve = mean_curve([res for res in results if res["method"] == method])
        if curve is None:
            continue
        t, mean, low, high = curve
        ax.plot(t, mean, color=f"C{index}", marker="o", markersize=3, label=method)
        ax.fill_between(t, low, high, color=f"C{index}", alpha=0.2, linewidth=0)
    seeds = len({res["seed"] for res in results})
    ax.set_xlabel("training wall time (s), mean over seeds")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"Validation accuracy against wall time (mean of {seeds} seed(s); band: min-max)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def compare(recipe, methods, seeds, epochs, out_dir, verbose=1, allow_inactive=False):
    """Runs every method for every seed; writes table.md, table.csv, results.json and plots.

    Raises `activity.InactiveArm` as soon as a curriculum arm's run shows that its curriculum
    did not act (`recipes/activity.py`), unless `allow_inactive`.
    """
    os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
    methods = methods_lib.arm_names(recipe, methods)  # + conventional arms of other regimes
    results = []
    for seed in seeds:
        for method in methods:
            results.append(run_one(recipe, method, seed, epochs, out_dir, verbose, allow_inactive))
    rows = summarize(results, methods, recipe)
    title = (
        f"{recipe.name}: {recipe.description}, {epochs} epochs, seeds {list(seeds)} "
        f"({keras.backend.backend()} backend"
        + (f", {processes.count()} processes)" if processes.count() > 1 else ")")
    )
    table = markdown_table(rows, title)
    with open(os.path.join(out_dir, "table.md"), "w") as handle:
        handle.write(table)
    with open(os.path.join(out_dir, "table.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(out_dir, "results.json"), "w") as handle:
        json.dump([{k: v for k, v in r.items() if k != "correct"} for r in results], handle)
    plot_accuracy_vs_time(results, methods, os.path.join(out_dir, "plots", "accuracy_vs_time.png"))
    methods_lib.plot_curricula(recipe, methods, epochs, os.path.join(out_dir, "plots"))
    print(table, flush=True)
    print(f"Written to {out_dir}: table.md, table.csv, results.json, plots/, tensorboard/")
    return rows
