"""LeRaC overhead: step time of `fit` with LeRaC against conventional training, same process.

    KERAS_BACKEND=jax python -m benchmarks.lerac --model resnet18 --batch 32

Prints one JSON line: `lerac_active_ratio` (inside the curriculum, per-group rates computed every
step), `lerac_after_k_ratio` (past k, the patch still installed), and `aa_ratio`, the baseline
timed against itself in the same rounds: the noise floor to read the other ratios against.
"""

import argparse

import keras
from keras_curriculum_recipes.models import resnet18
from keras_curriculum_recipes.models import small_cnn

import keras_curriculum as kc
from benchmarks.harness import Variant
from benchmarks.harness import compare
from benchmarks.harness import print_json
from benchmarks.harness import synthetic_images

MODELS = {
    "small_cnn": (lambda: small_cnn((28, 28, 1), 10), (28, 1)),
    "resnet18": (lambda: resnet18((32, 32, 3), 10), (32, 3)),
}


def build(model_name, jit_compile, steps_per_execution):
    make_model, _ = MODELS[model_name]
    model = make_model()
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3, weight_decay=5e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="small_cnn")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        default=1,
        help="> 1 takes the Python loop out of the figure (JAX, TF)",
    )
    parser.add_argument("--jit-compile", default="auto", choices=["auto", "true", "false"])
    args = parser.parse_args(argv)
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]

    size, channels = MODELS[args.model][1]
    # In-memory arrays, exactly one fit's worth of batches: no TensorFlow needed (GPU runs use
    # JAX alone) and no input-pipeline cost in the figures.
    spe = args.steps_per_execution
    x, y = synthetic_images(args.batch * spe * (3 + args.steps), size, channels, 10)
    data = {"x": x, "y": y, "batch_size": args.batch, "shuffle": False}

    keras.utils.set_random_seed(0)
    baseline = Variant(build(args.model, jit, args.steps_per_execution), dict(data))
    # k far beyond the run: every timed step computes in-curriculum rates.
    active = Variant(
        build(args.model, jit, args.steps_per_execution),
        {**data, "callbacks": [kc.LeRaC(duration=10**6, min_learning_rate=1e-8, unit="step")]},
    )
    # k = 1 step: the patch is installed but every scale is exactly 1.
    after = Variant(
        build(args.model, jit, args.steps_per_execution),
        {**data, "callbacks": [kc.LeRaC(duration=1, min_learning_rate=1e-8, unit="step")]},
    )
    result = compare(
        baseline,
        {"lerac_active": active, "lerac_after_k": after},
        rounds=args.rounds,
        warmup=3 * spe,
        steps=args.steps * spe,
    )
    result.update(
        benchmark="lerac",
        model=args.model,
        batch=args.batch,
        groups=len(kc.depth_groups(baseline.model)),
        jit_compile=str(jit),
        optimizer="AdamW",
        steps_per_execution=spe,
    )
    print_json(result)


if __name__ == "__main__":
    main()
