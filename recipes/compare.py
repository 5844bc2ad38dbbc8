"""The comparison runner: every method x every seed on one recipe, then a paper-style table.

Each run builds a fresh model from the recipe, lets the method prepare model, data and callbacks
(only through the package's public API, see `recipes/methods.py`), trains with Keras progress bars,
and records test accuracy, wall time, per-epoch accuracy against elapsed time and the test
predictions (for McNemar's test against conventional training with the same seed).
"""

import csv
import json
import os
import statistics
import time

import keras
import numpy as np

from . import methods as methods_lib


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


def mcnemar_pvalue(correct_a, correct_b):
    """Exact McNemar test (two-sided binomial test on the discordant pairs)."""
    from scipy.stats import binomtest

    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def run_one(recipe, method, seed, epochs, out_dir, verbose):
    keras.utils.set_random_seed(seed)
    arm = methods_lib.prepare(method, recipe, seed, epochs)  # in the regime of its method
    model, train, callbacks, image_size = arm[:4]
    model.compile(optimizer=arm.optimizer, loss=arm.loss,
                  metrics=["accuracy"] + methods_lib.extra_metrics(callbacks))
    clock = _Clock()
    log_dir = os.path.join(out_dir, "tensorboard", f"{method}_seed{seed}")
    callbacks = callbacks + [clock, keras.callbacks.TensorBoard(log_dir, write_graph=False)]
    print(f"[{recipe.name}] {method}, seed {seed}: training {arm.epochs} epochs", flush=True)
    start = time.perf_counter()
    history = model.fit(train, epochs=arm.epochs, validation_data=arm.validation,
                        callbacks=callbacks, verbose=verbose)
    wall = time.perf_counter() - start
    if seed == 0:
        methods_lib.plot_run(callbacks, os.path.join(out_dir, "plots", f"seed{seed}"))
    x_test, y_test = recipe.test_arrays(image_size)
    predictions = np.argmax(model.predict(x_test, batch_size=512, verbose=0), axis=-1)
    correct = predictions == y_test
    accuracy = float(np.mean(correct))
    print(f"[{recipe.name}] {method}, seed {seed}: test accuracy {accuracy:.4f}, "
          f"{wall:.1f} s", flush=True)
    return {
        "method": method, "seed": seed, "accuracy": accuracy, "wall_seconds": wall,
        "train_seconds": clock.train_seconds, "curve": clock.points,
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "correct": correct,
    }


def summarize(results, methods, recipe=None):
    rows = []
    for method in methods:
        # Each arm is compared with conventional training in its regime (`conventional_docl`
        # for DoCL, ...), EfficientTrain with conventional training at its (upscaled) size.
        reference = (methods_lib.reference(recipe, method, methods) if recipe is not None
                     else "conventional")
        baseline = {r["seed"]: r["correct"] for r in results if r["method"] == reference}
        runs = [r for r in results if r["method"] == method]
        accuracies = [100 * r["accuracy"] for r in runs]
        row = {
            "method": method,
            "seeds": len(runs),
            "accuracy_mean": statistics.mean(accuracies),
            "accuracy_std": statistics.stdev(accuracies) if len(runs) > 1 else 0.0,
            "train_seconds_mean": statistics.mean(r["train_seconds"] for r in runs),
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
    lines = [f"### {title}", "",
             "| method | accuracy (%) mean ± std | seeds | train time (s) | McNemar p (vs) |",
             "|---|---|---|---|---|"]
    for row in rows:
        p = "—" if row["mcnemar_p"] is None else f"{row['mcnemar_p']:.3g} ({row['mcnemar_vs']})"
        lines.append(
            f"| {row['method']} | {row['accuracy_mean']:.2f} ± {row['accuracy_std']:.2f} | "
            f"{row['seeds']} | {row['train_seconds_mean']:.1f} | {p} |"
        )
    return "\n".join(lines) + "\n"


def plot_accuracy_vs_time(results, methods, path):
    from keras_curriculum.plotting import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for index, method in enumerate(methods):
        for r, run in enumerate(res for res in results if res["method"] == method):
            if run["curve"]:
                t, acc = zip(*run["curve"])
                ax.plot(t, acc, color=f"C{index}", alpha=0.8, marker="o", markersize=3,
                        label=method if r == 0 else None)
    ax.set_xlabel("training wall time (s)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy against wall time (one line per seed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def compare(recipe, methods, seeds, epochs, out_dir, verbose=1):
    """Runs every method for every seed; writes table.md, table.csv, results.json and plots."""
    os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
    methods = methods_lib.arm_names(recipe, methods)  # + conventional arms of other regimes
    results = []
    for seed in seeds:
        for method in methods:
            results.append(run_one(recipe, method, seed, epochs, out_dir, verbose))
    rows = summarize(results, methods, recipe)
    title = (f"{recipe.name}: {recipe.description}, {epochs} epochs, seeds {list(seeds)} "
             f"({keras.backend.backend()} backend)")
    table = markdown_table(rows, title)
    with open(os.path.join(out_dir, "table.md"), "w") as handle:
        handle.write(table)
    with open(os.path.join(out_dir, "table.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(out_dir, "results.json"), "w") as handle:
        json.dump([{k: v for k, v in r.items() if k != "correct"} for r in results], handle)
    plot_accuracy_vs_time(results, methods, os.path.join(out_dir, "plots",
                                                         "accuracy_vs_time.png"))
    methods_lib.plot_curricula(recipe, methods, epochs, os.path.join(out_dir, "plots"))
    print(table, flush=True)
    print(f"Written to {out_dir}: table.md, table.csv, results.json, plots/, tensorboard/")
    return rows
