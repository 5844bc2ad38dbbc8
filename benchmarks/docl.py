"""DoCL overhead: step time of `fit` with DoCL's stage, metric and callback vs conventional `fit`.

Both variants train the same model on the same in-memory data with the same batch size: the
baseline on `tf.data.Dataset.from_tensor_slices(...).shuffle().batch()`, DoCL on
`docl.apply((x, y), batch_size)` with `docl.metric()` compiled in and the callback attached.
The timed steps are warm-start steps (every example is trained and scored), so the figure
includes everything DoCL adds per step: the batch gather, the on-device copy of the logits and
the host-side score update. Also reports DoCL's host memory per example.

    KERAS_BACKEND=jax python -m benchmarks.docl --steps 20 --rounds 5

`--compare-buffer-steps 1` adds a second DoCL variant that reads the device buffer after every
step, to show what the once-per-`buffer_steps` read saves.
"""

import argparse

import keras
import numpy as np
import tensorflow as tf
from keras_curriculum_recipes import models

from benchmarks import harness
from keras_curriculum.docl import DoCL


def _model(args, metrics):
    keras.utils.set_random_seed(0)
    model = models.small_cnn((args.size, args.size, 3), args.classes, width=args.width)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=metrics,
        jit_compile="auto",
    )
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--buffer-steps", type=int, default=16)
    parser.add_argument("--compare-buffer-steps", type=int, default=None)
    args = parser.parse_args(argv)

    # One epoch must hold every fit's warm-up and timed steps (plus the harness's first pass).
    n = (args.warmup + args.steps + 1) * args.batch_size
    x, y = harness.synthetic_images(n, args.size, 3, args.classes)
    baseline_data = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(n, seed=0)
        .batch(args.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )

    def docl_variant(buffer_steps):
        docl = DoCL(seed=0, buffer_steps=buffer_steps)
        data = docl.apply((x, y), batch_size=args.batch_size)
        return docl, harness.Variant(
            _model(args, [docl.metric()]), {"x": data, "callbacks": [docl]}
        )

    docl, variant = docl_variant(args.buffer_steps)
    variants = {"docl": variant}
    if args.compare_buffer_steps is not None:
        variants[f"docl_buffer{args.compare_buffer_steps}"] = docl_variant(
            args.compare_buffer_steps
        )[1]
    baseline = harness.Variant(_model(args, []), {"x": baseline_data})
    result = harness.compare(
        baseline, variants, rounds=args.rounds, warmup=args.warmup, steps=args.steps
    )
    state = docl.state_dict()
    measured = sum(state[k].nbytes for k in ("previous", "last_step", "scores", "labels"))
    result.update(
        {
            "batch_size": args.batch_size,
            "buffer_steps": args.buffer_steps,
            "classes": args.classes,
            "examples": n,
            "scored_examples": int(np.sum(~np.isnan(docl.scores))),
            "host_bytes_per_example": measured / n,
            "host_bytes_per_example_imagenet_1k": docl.memory_per_example(1000),
            "host_gb_imagenet_1k": round(docl.memory_per_example(1000) * 1_281_167 / 1e9, 3),
            "goal_ratio": 1.02,
        }
    )
    harness.print_json(result)
    return result


if __name__ == "__main__":
    main()
