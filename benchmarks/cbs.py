"""CBS step-time cost on ResNet-18: smoothing active, smoothing bypassed, and a whole run.

Prints one JSON line per measurement:
1. `compare` of conventional training (A, A2) against CBS with sigma active (`cbs_active`),
   CBS after sigma has decayed past the bypass point (`cbs_bypassed`), and the alternative
   design that decides the bypass on device with an `ops.cond` per layer (`cond_active`,
   `cond_bypassed`; leave out with --no-cond).
2. The one-off cost of the retrace SigmaDecay makes when smoothing switches off.
3. The whole-run cost of a schedule (default: 200 epochs, sigma 1, factor 0.9, every 5), from
   the measured ratios and the epoch at which the bypass starts, next to the authors' code, which
   convolves for the whole run.

Usage: KERAS_BACKEND=jax python -m benchmarks.cbs [--rounds 3 --steps 5 --batch 16]
"""

import argparse
import time

import keras
from keras import ops
from keras_curriculum_recipes.models import resnet18

from benchmarks.harness import Variant
from benchmarks.harness import compare
from benchmarks.harness import print_json
from benchmarks.harness import synthetic_images
from keras_curriculum.cbs import GaussianSmoothing
from keras_curriculum.cbs import add_smoothing
from keras_curriculum.cbs import bypass_epoch
from keras_curriculum.cbs import bypass_sigma
from keras_curriculum.cbs import smoothing_layers


class CondSmoothing(GaussianSmoothing):
    """The rejected design: the bypass decided on device in every step by `ops.cond` on sigma."""

    def call(self, inputs, training=None):
        threshold = bypass_sigma(self.kernel_size, self._rank, self.bypass_tolerance)
        return ops.cond(
            self.sigma_variable <= threshold, lambda: inputs, lambda: self.smooth(inputs)
        )


def smoothed_resnet(args, sigma, layer_class=GaussianSmoothing):
    model = add_smoothing(resnet18((args.image_size, args.image_size, 3)), sigma=args.sigma)
    for layer in smoothing_layers(model):
        # Swapping the class before the first trace is enough: only `call` differs.
        layer.__class__ = layer_class
        layer.set_sigma(sigma)
    return compiled(model)


def compiled(model):
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def retrace_seconds(variant, args):
    """One-step fit time after `make_train_function(force=True)` minus the same without it."""

    def one_step_fit(force):
        if force:
            variant.model.make_train_function(force=True)
        start = time.perf_counter()
        variant.model.fit(epochs=1, steps_per_epoch=1, verbose=0, **variant.fit_kwargs)
        return time.perf_counter() - start

    one_step_fit(force=False)
    return one_step_fit(force=True) - one_step_fit(force=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--factor", type=float, default=0.9)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--no-cond", action="store_true", help="skip the ops.cond variants")
    args = parser.parse_args(argv)

    x, y = synthetic_images(args.batch * (args.warmup + args.steps), args.image_size, 3, 10)
    fit_kwargs = {"x": x, "y": y, "batch_size": args.batch}
    below = 0.5 * bypass_sigma(3, 2)  # any sigma past the bypass point
    variants = {
        "cbs_active": Variant(smoothed_resnet(args, args.sigma), fit_kwargs),
        "cbs_bypassed": Variant(smoothed_resnet(args, below), fit_kwargs),
    }
    if not args.no_cond:
        variants["cond_active"] = Variant(
            smoothed_resnet(args, args.sigma, CondSmoothing), fit_kwargs
        )
        variants["cond_bypassed"] = Variant(smoothed_resnet(args, below, CondSmoothing), fit_kwargs)
    baseline = Variant(compiled(resnet18((args.image_size, args.image_size, 3))), fit_kwargs)
    result = compare(baseline, variants, rounds=args.rounds, warmup=args.warmup, steps=args.steps)
    result.update(
        model="resnet18",
        batch=args.batch,
        image_size=args.image_size,
        smoothing_layers=len(smoothing_layers(variants["cbs_active"].model)),
    )
    print_json(result)

    retrace = retrace_seconds(variants["cbs_bypassed"], args)
    print_json(
        {
            "measurement": "bypass_retrace",
            "backend": result["backend"],
            "retrace_s": round(retrace, 3),
            "retrace_in_steps": round(retrace * 1e3 / result["baseline_step_ms"], 1),
        }
    )

    active_epochs = bypass_epoch(args.sigma, args.factor, args.every)
    share = min(active_epochs, args.epochs) / args.epochs

    def whole_run(active, bypassed):
        return round(
            share * result[f"{active}_ratio"] + (1 - share) * result[f"{bypassed}_ratio"], 4
        )

    cost = {
        "measurement": "whole_run",
        "backend": result["backend"],
        "epochs": args.epochs,
        "sigma": args.sigma,
        "factor": args.factor,
        "every": args.every,
        "bypass_sigma": round(bypass_sigma(3, 2), 4),
        "bypass_epoch": active_epochs,
        "cbs_run_ratio": whole_run("cbs_active", "cbs_bypassed"),
        "always_convolving_run_ratio": result["cbs_active_ratio"],
    }
    if not args.no_cond:
        cost["cond_run_ratio"] = whole_run("cond_active", "cond_bypassed")
    print_json(cost)


if __name__ == "__main__":
    main()
