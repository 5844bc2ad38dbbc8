"""EfficientTrain: cost of the crop stage, and the wall-time speed-up of a whole `fit`.

Prints one JSON line per measurement:
1. `crop_stage`: images/s of the `tf.data` low-frequency crop (224 -> 160 px, batches of
   --crop-batch, all CPU threads tf.data uses) and of the resize stage of ET++, next to the
   images/s of the training step it feeds (the benchmark model on 160 px batches). A ratio
   `crop_over_step` well above 1 means the crop keeps up with training.
2. `fit_speedup`: wall time of `fit` for --epochs epochs with the ET paper table (5 stages,
   B = 160,160,160,192,224 scaled to --image-size) against the same epochs at full size, on
   the same compute-bound model and data. Rounds interleave baseline (A), EfficientTrain and a
   second baseline (A2); medians are reported, `aa_ratio` = A2 / A is the noise floor. Fits
   after the first reuse the compiled steps (one per input size), so `speedup` is steady
   state; `speedup_first_fit` includes the compilation of the three sizes. `flop_bound` is
   1 / compute fraction of the table (1.531 at 224 px).

Usage: KERAS_BACKEND=jax python -m benchmarks.efficient_train [--image-size 64 --epochs 5]
"""

import argparse
import statistics
import time

import keras
import tensorflow as tf
from keras_curriculum_recipes.models import small_cnn

from benchmarks.harness import _device
from benchmarks.harness import print_json
from benchmarks.harness import synthetic_images
from keras_curriculum.efficient_train import EfficientTrain
from keras_curriculum.efficient_train import Stage
from keras_curriculum.efficient_train import compute_fraction
from keras_curriculum.efficient_train import paper_stages
from keras_curriculum.efficient_train.frequency_crop import low_frequency_crop


def model_for(args):
    model = small_cnn((None, None, 3), num_classes=10, width=args.width)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def images_per_second(dataset, batches, batch_size):
    iterator = iter(dataset)
    next(iterator)  # tracing and the first batch stay out of the figure
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def crop_stage(args):
    x, _ = synthetic_images(args.crop_batch, 224, 3, 10)
    source = tf.data.Dataset.from_tensors(x * 64 + 128).repeat()
    crop = source.map(lambda t: low_frequency_crop(t, 160), num_parallel_calls=tf.data.AUTOTUNE)
    resize = keras.layers.Resizing(160, 160, interpolation="lanczos3", antialias=True)
    resized = source.map(resize, num_parallel_calls=tf.data.AUTOTUNE)
    crop_rate = images_per_second(crop.prefetch(2), args.crop_batches, args.crop_batch)
    resize_rate = images_per_second(resized.prefetch(2), args.crop_batches, args.crop_batch)

    model = model_for(args)
    small, labels = synthetic_images(args.crop_batch, 160, 3, 10, seed=1)
    model.train_on_batch(small, labels)  # compile
    start = time.perf_counter()
    for _ in range(args.step_batches):
        loss = model.train_on_batch(small, labels)
    keras.ops.convert_to_numpy(loss)
    step_rate = args.step_batches * args.crop_batch / (time.perf_counter() - start)
    return {
        "measurement": "crop_stage",
        "backend": keras.backend.backend(),
        "device": _device(),
        "input_px": 224,
        "output_px": 160,
        "batch": args.crop_batch,
        "crop_images_per_s": round(crop_rate, 1),
        "resize_images_per_s": round(resize_rate, 1),
        "train_step_images_per_s_at_160": round(step_rate, 1),
        "crop_over_step": round(crop_rate / step_rate, 2),
    }


def fit_seconds(model, dataset, epochs, callbacks):
    start = time.perf_counter()
    history = model.fit(dataset, epochs=epochs, callbacks=callbacks, verbose=0)
    keras.ops.convert_to_numpy(model.trainable_variables[0])  # wait for the device
    return time.perf_counter() - start, history


def fit_speedup(args):
    x, y = synthetic_images(args.samples, args.image_size, 3, 10, seed=2)
    source = tf.data.Dataset.from_tensor_slices((x * 64 + 128, y)).batch(args.batch).cache()
    baseline_data = source.map(lambda a, b: (tf.cast(a, tf.float32), b)).prefetch(2)
    stages = [
        Stage(s.epochs, s.size, s.magnitude if args.augment else None)
        for s in paper_stages(args.epochs, args.image_size)
    ]
    et = EfficientTrain(stages, image_size=args.image_size, seed=0)
    et_data = et.apply(source)
    if args.augment:  # the paper's baseline trains with RandAugment m = 9 throughout
        baseline = EfficientTrain([(args.epochs, None, 9)], seed=0)
        baseline_data, baseline_callbacks = baseline.apply(source), [baseline]
    else:
        baseline_callbacks = []

    models = {"A": model_for(args), "et": model_for(args), "A2": model_for(args)}
    runs = {
        "A": (baseline_data, baseline_callbacks),
        "et": (et_data, [et]),
        "A2": (baseline_data, baseline_callbacks),
    }
    first, times = {}, {name: [] for name in models}
    for name, model in models.items():
        first[name], history = fit_seconds(model, *runs[name][:1], args.epochs, runs[name][1])
        if name == "et":
            sizes = history.history["et_height"]
    for _ in range(args.rounds):
        for name, model in models.items():
            times[name].append(fit_seconds(model, runs[name][0], args.epochs, runs[name][1])[0])
    median = {name: statistics.median(values) for name, values in times.items()}
    return {
        "measurement": "fit_speedup",
        "backend": keras.backend.backend(),
        "device": _device(),
        "model": f"small_cnn(width={args.width})",
        "image_size": args.image_size,
        "epochs": args.epochs,
        "samples": args.samples,
        "batch": args.batch,
        "augment": bool(args.augment),
        "et_heights_per_epoch": sizes,
        "rounds": args.rounds,
        "baseline_fit_s": round(median["A"], 3),
        "et_fit_s": round(median["et"], 3),
        "aa_ratio": round(median["A2"] / median["A"], 4),
        "speedup": round(median["A"] / median["et"], 3),
        "speedup_first_fit": round(first["A"] / first["et"], 3),
        "flop_bound": round(1 / compute_fraction(stages, args.image_size), 3),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--augment",
        action="store_true",
        help="RandAugment in both arms (ET ramps m = 1..9, baseline m = 9)",
    )
    parser.add_argument("--crop-batch", type=int, default=32)
    parser.add_argument("--crop-batches", type=int, default=10)
    parser.add_argument("--step-batches", type=int, default=3)
    parser.add_argument("--skip-crop", action="store_true")
    parser.add_argument("--skip-fit", action="store_true")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    if not args.skip_crop:
        print_json(crop_stage(args))
    if not args.skip_fit:
        print_json(fit_speedup(args))


if __name__ == "__main__":
    main()
