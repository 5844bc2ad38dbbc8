"""EfficientTrain with and without saturation: end-to-end `fit` speed-up of the ET schedule.

At a fixed batch a low-resolution step leaves an accelerator under-used (ResNet-50 on an H100:
32.8 ms at 160 px against 46.8 ms at 224 px for 51 % of the pixels), so the ET table reaches
1.28x of its 1.53x bound. `EfficientTrain(saturate=...)` grows the per-device batch as the image
shrinks. Prints one JSON line: wall time of `fit` for the ET paper table (5 stages,
B = 160,160,160,192,224 scaled to --image-size) at a fixed batch ("et_fixed", `saturate=None`)
and saturated ("et_saturated", `saturate=--saturate`), against the same epochs at full size
(baseline A, and A2 for the noise floor `aa_ratio`), all with the same optimizer (SGD with
momentum, `gradient_accumulation_steps=--accumulation`). Rounds interleave the arms; medians are
reported. Fits after the first reuse the compiled steps (one per size and batch, kept across fits
by the EfficientTrain object), so `speedup_*` is steady state and `first_fit_speedup_*` includes
compilation. `flop_bound` = 1 / compute fraction of the table (1.531 at 224 px).

Default: ResNet-50 (`keras.applications.ResNet50(weights=None, input_shape=(None, None, 3))`)
at 224 px, per-device batch 128, accumulation 2 ("exact": the 160 px stages run 256 x 1). On a
CPU use a small setting, e.g.
`--model small_cnn --image-size 32 --batch 8 --samples 64 --rounds 1`.

Usage: KERAS_BACKEND=jax python -m benchmarks.efficient_train_saturation [options]
"""

import argparse
import statistics

import keras
import tensorflow as tf
from keras_curriculum_recipes.models import small_cnn

from benchmarks.efficient_train import fit_seconds
from benchmarks.harness import _device
from benchmarks.harness import print_json
from benchmarks.harness import synthetic_images
from keras_curriculum.efficient_train import EfficientTrain
from keras_curriculum.efficient_train import Stage
from keras_curriculum.efficient_train import compute_fraction
from keras_curriculum.efficient_train import paper_stages


def model_for(args):
    if args.model == "resnet50":
        model = keras.applications.ResNet50(
            weights=None, input_shape=(None, None, 3), classes=args.classes
        )
    else:
        model = small_cnn((None, None, 3), num_classes=args.classes, width=args.width)
    accumulation = args.accumulation if args.accumulation > 1 else None
    model.compile(
        optimizer=keras.optimizers.SGD(
            0.01, momentum=0.9, gradient_accumulation_steps=accumulation
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=args.model != "resnet50"),
        jit_compile=args.jit_compile,
    )
    return model


def speedup(args):
    x, y = synthetic_images(args.samples, args.image_size, 3, args.classes, seed=2)
    source = tf.data.Dataset.from_tensor_slices((x * 64 + 128, y)).cache()
    baseline_data = source.batch(args.batch).prefetch(tf.data.AUTOTUNE)
    stages = [Stage(s.epochs, s.size, None) for s in paper_stages(args.epochs, args.image_size)]

    def curriculum(saturate):
        return EfficientTrain(
            stages,
            image_size=args.image_size,
            downsample=args.downsample,
            saturate=saturate,
            max_batch_size=args.max_batch_size,
        )

    fixed, saturated = curriculum(None), curriculum(args.saturate)
    runs = {
        "A": (model_for(args), baseline_data, []),
        "et_fixed": (model_for(args), fixed.apply(source, batch_size=args.batch), [fixed]),
        "et_saturated": (
            model_for(args),
            saturated.apply(source, batch_size=args.batch),
            [saturated],
        ),
        "A2": (model_for(args), baseline_data, []),
    }
    first, times, histories = {}, {name: [] for name in runs}, {}
    for name, (model, data, callbacks) in runs.items():
        first[name], histories[name] = fit_seconds(model, data, args.epochs, callbacks)
    names = list(runs)
    for round_index in range(args.rounds):
        shift = round_index % len(names)  # rotate the order: no arm always runs first
        for name in names[shift:] + names[:shift]:
            model, data, callbacks = runs[name]
            times[name].append(fit_seconds(model, data, args.epochs, callbacks)[0])
    median = {name: statistics.median(values) for name, values in times.items()}
    saturated_logs = histories["et_saturated"].history
    return {
        "measurement": "et_saturation_speedup",
        "backend": keras.backend.backend(),
        "device": _device(),
        "model": args.model,
        "dtype_policy": keras.config.dtype_policy().name,
        "jit_compile": args.jit_compile,
        "image_size": args.image_size,
        "batch": args.batch,
        "accumulation": args.accumulation,
        "saturate": args.saturate,
        "samples": args.samples,
        "epochs": args.epochs,
        "et_heights_per_epoch": saturated_logs["et_height"],
        "saturated_batch_per_epoch": saturated_logs["et_batch_size"],
        "saturated_accumulation_per_epoch": saturated_logs["et_accumulation"],
        "rounds": args.rounds,
        "baseline_fit_s": round(median["A"], 3),
        "et_fixed_fit_s": round(median["et_fixed"], 3),
        "et_saturated_fit_s": round(median["et_saturated"], 3),
        "aa_ratio": round(median["A2"] / median["A"], 4),
        "speedup_fixed": round(median["A"] / median["et_fixed"], 3),
        "speedup_saturated": round(median["A"] / median["et_saturated"], 3),
        "first_fit_speedup_fixed": round(first["A"] / first["et_fixed"], 3),
        "first_fit_speedup_saturated": round(first["A"] / first["et_saturated"], 3),
        "flop_bound": round(1 / compute_fraction(stages, args.image_size), 3),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("resnet50", "small_cnn"), default="resnet50")
    parser.add_argument("--width", type=int, default=32, help="small_cnn width")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=128, help="global batch at full size")
    parser.add_argument(
        "--accumulation",
        type=int,
        default=2,
        help="gradient_accumulation_steps of every arm (1: none)",
    )
    parser.add_argument("--saturate", choices=("exact", "scaled"), default="exact")
    parser.add_argument("--max-batch-size", type=int, default=None)
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        help="examples per epoch (default: 4 effective batches)",
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--downsample", choices=("fft", "resize"), default="fft")
    parser.add_argument("--dtype-policy", default="float32", help="e.g. mixed_bfloat16")
    parser.add_argument(
        "--jit-compile",
        default="auto",
        type=lambda v: {"true": True, "false": False}.get(v.lower(), "auto"),
    )
    args = parser.parse_args(argv)
    if args.samples is None:
        args.samples = 4 * args.batch * max(args.accumulation, 1)
    keras.config.set_dtype_policy(args.dtype_policy)
    keras.utils.set_random_seed(0)
    print_json(speedup(args))


if __name__ == "__main__":
    main()
