"""DoCL's host memory: resident memory of a `fit` with DoCL above the same `fit` without it.

Each variant runs in a fresh process, on the same in-memory arrays (`--examples` examples, 4
float32 features, `--classes` classes), with the same linear model, batch size and epochs.
DoCL feeds `docl.apply((x, y))` with its metric and callback; three conventional baselines:

- `gather`: the arrays as tensors gathered in the graph batch by batch, the way DoCL's stage
  feeds in-memory arrays, so the difference is DoCL's own (state, draws, metric);
- `dataset`: `tf.data.Dataset.from_tensor_slices((x, y)).batch(...)`;
- `arrays`: `model.fit(x, y, shuffle=True)`.

Each process reports VmRSS after the arrays are made ("arrays"), after the data are prepared,
after every epoch, at the end, and its peak (VmHWM); growth is counted from "arrays". Two sizes
(`--small-examples`, `--examples`) separate the per-example cost (slope) from the fixed one
(intercept: the compiled metric, the pipeline's functions). The per-example figure is compared
with the documented one, `docl.memory_per_example(C)` = 2 C + 12 bytes.

    python -m benchmarks.docl_memory --classes 10
    python -m benchmarks.docl_memory --classes 100

DoCL's epochs: the first `--epochs - 1` are the warm start (every example trained and scored),
the last samples half of them, so both the scoring and the sampling paths are in the figure.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

VARIANTS = ("gather", "dataset", "arrays", "docl")


def rss_mb():
    """(VmRSS, VmHWM) of this process in MiB (Linux)."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def _worker(args):
    import keras
    import numpy as np

    from keras_curriculum.docl import DoCL

    keras.utils.set_random_seed(0)
    marks = {"start": rss_mb()[0]}
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.examples, args.features)).astype("float32")
    y = rng.integers(0, args.classes, size=args.examples).astype("int32")
    marks["arrays"] = rss_mb()[0]
    model = keras.Sequential([keras.Input((args.features,)), keras.layers.Dense(args.classes)])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    class Marks(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            marks[f"epoch_{epoch}"] = rss_mb()[0]

    fit = {"epochs": args.epochs, "verbose": 0, "callbacks": [Marks()]}
    if args.variant == "docl":
        docl = DoCL(
            warmup_epochs=args.epochs - 1,
            episode_epochs=1,
            initial_fraction=0.5,
            refresh=False,
            seed=0,
        )
        data = docl.apply((x, y), batch_size=args.batch_size)
        model.compile(keras.optimizers.SGD(0.01), loss, metrics=[docl.metric()])
        fit["callbacks"].insert(0, docl)
        marks["prepared"] = rss_mb()[0]
        model.fit(data, **fit)
        extra = {
            "documented_bytes_per_example": docl.memory_per_example(args.classes),
            "fractions": [h["fraction"] for h in docl.history],
        }
    elif args.variant == "gather":
        import tensorflow as tf

        tensors = (tf.constant(x), tf.constant(y))
        data = (
            tf.data.Dataset.range(args.examples)
            .batch(args.batch_size)
            .map(lambda index: (tf.gather(tensors[0], index), tf.gather(tensors[1], index)))
        )
        model.compile(keras.optimizers.SGD(0.01), loss)
        marks["prepared"] = rss_mb()[0]
        model.fit(data, **fit)
        extra = {}
    elif args.variant == "dataset":
        import tensorflow as tf

        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch_size)
        model.compile(keras.optimizers.SGD(0.01), loss)
        marks["prepared"] = rss_mb()[0]
        model.fit(data, **fit)
        extra = {}
    else:
        model.compile(keras.optimizers.SGD(0.01), loss)
        marks["prepared"] = rss_mb()[0]
        model.fit(x, y, batch_size=args.batch_size, shuffle=True, **fit)
        extra = {}
    rss, peak = rss_mb()
    print(json.dumps({"marks_mb": marks, "end_mb": rss, "peak_mb": peak, **extra}))


def _run(args, variant, examples):
    argv = [sys.executable, "-m", "benchmarks.docl_memory", "--variant", variant]
    argv += ["--examples", str(examples)]
    for name in ("features", "classes", "batch_size", "epochs"):
        argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _above(runs, size, baseline, key):
    """Median MiB of DoCL's processes above the baseline's, at `size` examples, each counted
    from its own arrays (the imports' few MiB of process-to-process noise cancel out)."""

    def growth(variant):
        return statistics.median([r[key] - r["marks_mb"]["arrays"] for r in runs[variant][size]])

    return growth("docl") - growth(baseline)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument(
        "--small-examples",
        type=int,
        default=10_000,
        help="the second size, from which the fixed overhead is separated",
    )
    parser.add_argument("--features", type=int, default=4)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="processes per variant and size")
    parser.add_argument("--variant", choices=VARIANTS, default=None)
    args = parser.parse_args(argv)
    if args.variant:
        return _worker(args)

    import keras

    sizes = (args.small_examples, args.examples)
    runs = {variant: {size: [] for size in sizes} for variant in VARIANTS}
    for round_ in range(args.rounds):
        for size in sizes:
            for variant in VARIANTS:
                runs[variant][size].append(_run(args, variant, size))
                print(
                    f"[docl_memory] round {round_ + 1}/{args.rounds}, {size} examples, "
                    f"{variant} done",
                    file=sys.stderr,
                    flush=True,
                )
    mib = 1 << 20
    small, large = sizes
    documented = runs["docl"][large][0]["documented_bytes_per_example"]
    result = {
        "benchmark": "docl_memory",
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "examples": sizes,
        "features": args.features,
        "classes": args.classes,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "rounds": args.rounds,
        "documented_bytes_per_example": documented,
        "documented_mib_at_examples": round(documented * large / mib, 1),
    }
    for baseline in ("gather", "dataset", "arrays"):
        for key, label in (("end_mb", "end"), ("peak_mb", "peak")):
            above = {size: _above(runs, size, baseline, key) for size in sizes}
            per_example = (above[large] - above[small]) * mib / (large - small)
            fixed = above[small] - per_example * small / mib
            result[f"vs_{baseline}_{label}"] = {
                "mib_above_at_examples": round(above[large], 1),
                "mib_above_at_small_examples": round(above[small], 1),
                "bytes_per_example": round(per_example, 1),
                "ratio_to_documented": round(per_example / documented, 3),
                "fixed_mib": round(fixed, 1),
            }
    result["runs"] = {v: {str(k): r for k, r in by.items()} for v, by in runs.items()}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
