"""Soak: a long run through every curriculum boundary, watching memory and retraces.

Two `fit` calls on a tiny CNN and synthetic images, each crossing every boundary of its methods:

1. LeRaC + CBS (`kc.add_smoothing` + `kc.SigmaDecay`) + EfficientTrain (its `tf.data` stage and
   callback; the model takes variable-size input), in one `fit`: the ET stages (one input size
   each), LeRaC's end of curriculum at epoch k, and the CBS bypass epoch (the first epoch whose
   kernel is the identity within tolerance, `kc.bypass_epoch`).
2. DoCL (its stage, metric, callback and `learning_rate_schedule`): warm-up, the sampling epochs
   of several episodes with shrinking subsets, and the refresh pass after each episode.

The soak runs DoCL and EfficientTrain in two fits. They compose in one as
`et.apply(docl.apply(...))` (ET keeps DoCL's batches and reports its full-pass cardinality;
see docs/efficient_train.md); `--probe-combined` runs that composition and reports what happened.

What it reports, as one JSON object:

- Resident memory (VmRSS from /proc/self/status) at every epoch end, and its growth from the
  first completed epoch to the last as the slope of a least-squares line against the step
  count, in MB per 1000 steps (`rss_slope_mb_per_1000_steps`); also over the last stage only
  and from the epoch of the last trace on (`..._after_last_trace`: no compile in that span, so
  growth there is what a longer run would keep adding).
- Traces of the train step per stage. `model.train_step` is wrapped (see `harness.TraceCounter`) so
  that each run appends (epoch, input shape) to a list and calls the original. On TensorFlow and
  JAX the Python body of the step runs only while the compiled train function is being traced
  (`tf.function` / `jax.jit`), so each entry is one trace (on JAX one compile); on PyTorch the
  body runs every step, so the count is not a trace count there and the soak refuses that
  backend. The train function is rebuilt at LeRaC's end of curriculum (`on_epoch_begin` of
  epoch k) and at the CBS bypass (`SigmaDecay`), and the expected traces follow from the plan:
  - JAX traces each build once per concrete input shape it meets: one per ET stage size, plus
    one at LeRaC's k and one at the CBS bypass (the default plan puts both inside a stage).
  - TensorFlow traces each build once against the dataset's element spec, whose spatial size
    EfficientTrain leaves unknown (one stage switch feeds every size): one per build, so three.
    (Under XLA, `jit_compile=True`, TF would compile per shape below that one trace; the
    counter does not see those compiles.)
  DoCL's fit uses `drop_remainder=True`, so every batch has one shape: one trace on JAX, two on
  TF, where DoCL's metric creates its variables in the first traced step and a `tf.function`
  whose first call creates variables is traced a second time. `traces_match` compares the
  measured list with the expected one.

    KERAS_BACKEND=tensorflow python -m benchmarks.soak                  # ~1540 + ~1070 steps
    KERAS_BACKEND=jax python -m benchmarks.soak --examples 1024         # a quicker pass
"""

import argparse
import json
import os
import resource
import time

import keras
import numpy as np
import tensorflow as tf
from keras_curriculum_recipes.models import small_cnn

import keras_curriculum as kc
from benchmarks.harness import TraceCounter
from benchmarks.harness import _device
from benchmarks.harness import synthetic_images


def rss_mb():
    """Current resident set size in MB, from /proc/self/status (ru_maxrss peak elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def slope_per_1000_steps(steps, values):
    """Least-squares slope of `values` against `steps`, per 1000 steps (None below 2 points)."""
    if len(steps) < 2 or steps[-1] == steps[0]:
        return None
    return float(np.polyfit(np.asarray(steps, float), np.asarray(values, float), 1)[0] * 1000.0)


class Recorder(keras.callbacks.Callback):
    """Epoch-end memory and step count; keeps the current epoch for the trace counter."""

    def __init__(self):
        super().__init__()
        self.epoch = -1
        self.rows = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        steps = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.rows.append(
            {
                "epoch": epoch,
                "steps": steps,
                "rss_mb": round(rss_mb(), 1),
                "loss": round(float(logs.get("loss", float("nan"))), 4),
            }
        )


def memory_report(rows, first_epoch_of_last_stage=None, last_trace_epoch=None):
    steps = [r["steps"] for r in rows]
    rss = [r["rss_mb"] for r in rows]
    report = {
        "rss_mb_per_epoch": rss,
        "steps_per_epoch_end": steps,
        "rss_growth_mb_first_to_last_epoch": round(rss[-1] - rss[0], 1),
        "rss_slope_mb_per_1000_steps": _round(slope_per_1000_steps(steps, rss)),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
    for key, first in (
        ("last_stage", first_epoch_of_last_stage),
        ("after_last_trace", last_trace_epoch),
    ):
        # From the end of that epoch on: a retrace (a new compiled step) is not a leak.
        tail = [r for r in rows if first is not None and r["epoch"] >= first]
        report[f"rss_slope_mb_per_1000_steps_{key}"] = _round(
            slope_per_1000_steps([r["steps"] for r in tail], [r["rss_mb"] for r in tail])
        )
    return report


def _round(value):
    return None if value is None else round(value, 2)


# Fit 1: LeRaC + CBS + EfficientTrain ----------------------------------------------------------


def expected_traces(sizes_per_epoch, rebuild_epochs):
    """(epoch, size) of every trace: each build of the train function, once per new size."""
    expected, seen = [], set()
    for epoch, size in enumerate(sizes_per_epoch):
        if epoch in rebuild_epochs:
            seen = set()
        if size not in seen:
            seen.add(size)
            expected.append((epoch, size))
    return expected


def lerac_cbs_et(args, x, y):
    stages = [kc.Stage(args.stage_epochs, size) for size in args.sizes]
    et = kc.EfficientTrain(stages, image_size=args.image_size, seed=0)
    train = et.apply(tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch_size))
    keras.utils.set_random_seed(0)
    model = kc.add_smoothing(
        small_cnn((None, None, 3), args.classes, width=args.width), sigma=args.sigma
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    lerac = kc.LeRaC(duration=args.lerac_k, min_learning_rate=1e-6)
    decay = kc.SigmaDecay(factor=args.sigma_factor, every=args.sigma_every)
    bypass = kc.bypass_epoch(args.sigma, args.sigma_factor, args.sigma_every)
    recorder = Recorder()
    traces = TraceCounter(model, lambda: recorder.epoch).traces

    start = time.perf_counter()
    model.fit(train, epochs=et.epochs, verbose=0, callbacks=[lerac, decay, et, recorder])
    wall = time.perf_counter() - start

    stage_of = [int(s) for s in np.repeat(np.arange(len(stages)), args.stage_epochs)]
    sizes = [args.sizes[s] for s in stage_of]
    rebuilds = {0, args.lerac_k, bypass}
    # TF traces against the dataset's element spec, whose spatial size ET leaves unknown (one
    # stage switch feeds every size): one trace per build. JAX traces each concrete shape.
    per_size = keras.backend.backend() == "jax"
    expected = expected_traces(sizes if per_size else [None] * len(sizes), rebuilds)
    measured = [(epoch, shape[1]) for epoch, shape in traces]
    per_stage = [sum(stage_of[e] == s for e, _ in measured) for s in range(len(stages))]
    return {
        "fit": "LeRaC + CBS + EfficientTrain",
        "epochs": et.epochs,
        "steps": recorder.rows[-1]["steps"],
        "wall_s": round(wall, 1),
        "boundaries": {
            "et_stage_sizes": list(args.sizes),
            "et_epochs_per_stage": args.stage_epochs,
            "lerac_k_epoch": args.lerac_k,
            "cbs_bypass_epoch": bypass,
        },
        **memory_report(
            recorder.rows,
            first_epoch_of_last_stage=stage_of.index(len(stages) - 1),
            last_trace_epoch=traces[-1][0],
        ),
        "traces": [{"epoch": e, "input_shape": s} for e, s in traces],
        "traces_per_stage": per_stage,
        "expected_traces_per_stage": [
            sum(stage_of[e] == s for e, _ in expected) for s in range(len(stages))
        ],
        "expected_traces": [{"epoch": e, "size": s} for e, s in expected],
        "traces_match": measured == expected,
        "loss_per_epoch": [r["loss"] for r in recorder.rows],
    }


# Fit 2: DoCL ---------------------------------------------------------------------------------


def docl_fit(args, x, y):
    docl = kc.DoCL(
        warmup_epochs=args.docl_warmup,
        episode_epochs=args.docl_episode_epochs,
        fraction_decay=args.docl_gamma_k,
        seed=0,
    )
    train = docl.apply((x, y), batch_size=args.batch_size, drop_remainder=True)
    epochs = args.docl_warmup + args.docl_episodes * (args.docl_episode_epochs + 1)
    keras.utils.set_random_seed(0)
    model = small_cnn((args.image_size, args.image_size, 3), args.classes, width=args.width)
    schedule = docl.learning_rate_schedule(0.05, epochs, min_learning_rate=1e-3)
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[docl.metric()],
    )
    recorder = Recorder()
    traces = TraceCounter(model, lambda: recorder.epoch).traces

    start = time.perf_counter()
    model.fit(train, epochs=epochs, verbose=0, callbacks=[docl, recorder])
    wall = time.perf_counter() - start

    # On TF the first call creates DoCL's metric variables inside the traced step, and a
    # tf.function whose first call creates variables is traced a second time: 2. JAX: 1.
    expected = 2 if keras.backend.backend() == "tensorflow" else 1
    plans = [docl.epoch_plan(e) for e in range(epochs)]
    phases = [p.phase if p.phase == "warmup" else f"{p.phase}{p.episode}" for p in plans]
    names = list(dict.fromkeys(phases))
    return {
        "fit": "DoCL",
        "epochs": epochs,
        "steps": recorder.rows[-1]["steps"],
        "wall_s": round(wall, 1),
        "phase_per_epoch": phases,
        "subset_size_per_epoch": [p.size for p in plans],
        "steps_trained_per_epoch": [h["steps"] for h in docl.history],
        # The last "stage" here is the last episode: its sampling epochs and its refresh.
        **memory_report(
            recorder.rows,
            first_epoch_of_last_stage=phases.index(names[max(len(names) - 2, 0)]),
            last_trace_epoch=traces[-1][0],
        ),
        "traces": [{"epoch": e, "input_shape": s} for e, s in traces],
        "traces_per_phase": {n: sum(phases[e] == n for e, _ in traces) for n in names},
        "expected_traces": expected,
        "traces_match": len(traces) == expected,
        "loss_per_epoch": [r["loss"] for r in recorder.rows],
    }


def probe_combined(args, x, y):
    """Tries EfficientTrain over DoCL's batches in one pipeline; returns what happened."""
    # Epochs: warm-up, episode 0 (k = n), its refresh, then episode 1 on half the data.
    docl = kc.DoCL(warmup_epochs=1, episode_epochs=1, fraction_decay=0.5, seed=0)
    et = kc.EfficientTrain([(2, args.sizes[0]), (2, args.sizes[-1])])
    train = et.apply(docl.apply((x, y), batch_size=args.batch_size, drop_remainder=True))
    model = small_cnn((None, None, 3), args.classes, width=args.width)
    model.compile(
        optimizer="sgd",
        metrics=[docl.metric()],
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: history.append(epoch))
    try:
        model.fit(train, epochs=et.epochs, verbose=0, callbacks=[docl, et, record])
    except Exception as error:  # noqa: BLE001 - reported, not handled
        lines = str(error).strip().splitlines()
        cause = next((line for line in lines if "expected to" in line), lines[0])
        return {
            "combined_pipeline": "failed",
            "epochs_completed": len(history),
            "epoch_sizes": [docl.epoch_plan(e).size for e in range(et.epochs)],
            "error": f"{type(error).__name__}: {cause.strip()[:300]}",
        }
    return {
        "combined_pipeline": "ran",
        "epochs_completed": len(history),
        "epoch_sizes": [docl.epoch_plan(e).size for e in range(et.epochs)],
        "steps_trained_per_epoch": [h["steps"] for h in docl.history],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 12, 16])
    parser.add_argument("--stage-epochs", type=int, default=4)
    parser.add_argument("--lerac-k", type=int, default=5)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--sigma-factor", type=float, default=0.75)
    parser.add_argument("--sigma-every", type=int, default=2)
    parser.add_argument("--docl-warmup", type=int, default=1)
    parser.add_argument("--docl-episodes", type=int, default=3)
    parser.add_argument("--docl-episode-epochs", type=int, default=2)
    parser.add_argument("--docl-gamma-k", type=float, default=0.7)
    parser.add_argument("--skip", choices=("et", "docl"), default=None)
    parser.add_argument("--probe-combined", action="store_true")
    args = parser.parse_args(argv)
    if keras.backend.backend() == "torch":
        parser.error("the trace count needs a tracing backend (tensorflow or jax)")
    if args.examples % args.batch_size:
        parser.error("--examples must be a multiple of --batch-size (one batch shape per size)")

    x, y = synthetic_images(args.examples, args.image_size, 3, args.classes)
    result = {
        "backend": keras.backend.backend(),
        "device": _device(),
        "cpu_count": os.cpu_count(),
        "examples": args.examples,
        "batch_size": args.batch_size,
    }
    start = time.perf_counter()
    fits = []
    if args.skip != "et":
        fits.append(lerac_cbs_et(args, x, y))
    if args.skip != "docl":
        fits.append(docl_fit(args, x, y))
    result["fits"] = fits
    result["total_steps"] = sum(f["steps"] for f in fits)
    result["all_traces_match"] = all(f["traces_match"] for f in fits)
    if args.probe_combined:
        result["probe"] = probe_combined(args, x, y)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
