"""What each curriculum did in a run, measured from the run's own logs (not from its plan).

The curriculum callbacks write their state into the epoch logs (`lerac_lr_first` and
`lerac_lr_last`, `cbs_sigma` and `cbs_active_layers`, `et_height` and `et_width`,
`docl_fraction`); the runner's probe (`compare._ActivityProbe`) also counts the training steps
of every epoch and, for LeRaC, reads the same two rates after every step. From these:

- LeRaC: the fraction of the run's training steps taken inside the curriculum (a step whose
  first and last layer groups trained at different rates). Acts when in [2 %, 50 %]: the paper
  holds it for k = 5-7 of 100-200 epochs (LeRaC Table 1), and a curriculum longer than half
  the run is what issue 12 calls dominant.
- CBS: sigma at the end of the first and of the last epoch (`cbs_sigma`) and the first epoch in
  which every smoothing layer passes its input through (the bypass). Acts when the last sigma is
  at most half the first.
- EfficientTrain: the mean over training steps of the pixels of a training image relative to
  the full size (`et_height * et_width / full**2`, each epoch weighted by its steps). Acts when
  at most 0.85. Its wall time relative to its conventional baseline is shown, not judged.
- DoCL: the mean over epochs of the fraction of the data the epoch trains (`docl_fraction`).
  Acts when at most 0.85.

An arm that does not act is refused by the runner unless `--allow-inactive`
(`InactiveArm`). This module imports neither Keras nor TensorFlow.
"""

import statistics

LERAC_RANGE = (0.02, 0.50)
CBS_MAX_RATIO = 0.5
ET_MAX_PIXELS = 0.85
DOCL_MAX_FRACTION = 0.85

CURRICULA = ("lerac", "cbs", "efficient_train", "docl")
_NAMES = {"lerac": "LeRaC", "cbs": "CBS", "efficient_train": "EfficientTrain", "docl": "DoCL"}


class InactiveArm(RuntimeError):
    """A curriculum arm that did not act in its run (the message says how, and the fix)."""


def curricula_of(method):
    """The curricula an arm runs: `"lerac+cbs"` -> ("lerac", "cbs"); () for conventional."""
    return tuple(part for part in method.split("+") if part in CURRICULA)


def lerac_inside(first, last, tolerance=1e-6):
    """Whether a step trained inside LeRaC's curriculum: its first and last groups' rates differ."""
    return abs(first - last) > tolerance * max(abs(first), abs(last))


def lerac_figures(inside_steps):
    """`{"fraction": steps inside / all steps}` from one bool per training step."""
    steps = list(inside_steps)
    if not steps:
        return {}
    return {"fraction": sum(bool(s) for s in steps) / len(steps), "steps": len(steps)}


def cbs_figures(sigma, active_layers):
    """`{"sigma_first", "sigma_last", "bypass_epoch"}` (1-based; None: never bypassed)."""
    if not sigma:
        return {}
    bypass = next(
        (epoch + 1 for epoch, active in enumerate(active_layers or []) if active == 0), None
    )
    return {"sigma_first": float(sigma[0]), "sigma_last": float(sigma[-1]), "bypass_epoch": bypass}


def efficient_train_figures(heights, widths, epoch_steps, full_size):
    """`{"pixels"}`: mean over training steps of (h * w) / full_size**2."""
    if not heights or not full_size:
        return {}
    full = full_size * full_size if isinstance(full_size, int) else full_size[0] * full_size[1]
    steps = list(epoch_steps)[: len(heights)] if epoch_steps else [1] * len(heights)
    if sum(steps) == 0:
        steps = [1] * len(heights)
    total = sum(n * h * w / full for n, h, w in zip(steps, heights, widths))
    return {"pixels": total / sum(steps)}


def docl_figures(fractions):
    """`{"fraction"}`: mean over epochs of the fraction of the data each epoch trains."""
    if not fractions:
        return {}
    return {"fraction": statistics.mean(float(f) for f in fractions)}


def measure(method, history, epoch_steps=None, lerac_steps=None, full_size=None):
    """The activity figures of one run: `{curriculum: figures}` for each curriculum of `method`.

    Args:
        method: the arm's name (`"lerac+cbs"`, `"docl"`, ...).
        history: the fit's `history.history` (per-epoch lists of the logged values).
        epoch_steps: the training steps of each epoch, counted during the fit.
        lerac_steps: one bool per training step, inside LeRaC's curriculum or not.
        full_size: the full image side of EfficientTrain's arm.
    """
    figures = {}
    for curriculum in curricula_of(method):
        if curriculum == "lerac":
            figures["lerac"] = lerac_figures(lerac_steps or [])
        elif curriculum == "cbs":
            figures["cbs"] = cbs_figures(history.get("cbs_sigma"), history.get("cbs_active_layers"))
        elif curriculum == "efficient_train":
            figures["efficient_train"] = efficient_train_figures(
                history.get("et_height"), history.get("et_width"), epoch_steps, full_size
            )
        else:
            figures["docl"] = docl_figures(history.get("docl_fraction"))
    return figures


def reasons(figures):
    """Why the curricula of a run did not act: a list of sentences (empty: every one acted)."""
    found = []
    for curriculum, values in figures.items():
        name = _NAMES[curriculum]
        if not values:
            found.append(f"{name} logged no values in this run (is its callback in the fit?)")
        elif curriculum == "lerac":
            low, high = LERAC_RANGE
            if not low <= values["fraction"] <= high:
                found.append(
                    f"LeRaC trained {100 * values['fraction']:.1f} % of the steps inside its "
                    f"curriculum, outside [{100 * low:.0f} %, {100 * high:.0f} %]: set its "
                    "`duration` to a fraction of the fit (the default, 5 %) or a run long enough"
                )
        elif curriculum == "cbs":
            if not values["sigma_last"] <= CBS_MAX_RATIO * values["sigma_first"]:
                found.append(
                    f"CBS's sigma went {values['sigma_first']:.3g} -> {values['sigma_last']:.3g}, "
                    f"not below {CBS_MAX_RATIO:g} of its start: use SigmaDecay's default decay "
                    "(the paper's curve over the run) or more epochs"
                )
        elif curriculum == "efficient_train":
            if not values["pixels"] <= ET_MAX_PIXELS:
                found.append(
                    f"EfficientTrain trained on {values['pixels']:.2f} of the full image's "
                    f"pixels per step, above {ET_MAX_PIXELS:g}: give its stages smaller sizes "
                    "or the run more epochs (paper_stages needs >= 2)"
                )
        elif not values["fraction"] <= DOCL_MAX_FRACTION:
            found.append(
                f"DoCL trained on a mean {values['fraction']:.2f} of the data per epoch, above "
                f"{DOCL_MAX_FRACTION:g}: use DoCL's default schedule (fractions of the fit) or "
                "more epochs"
            )
    return found


def check_acts(method, seed, figures, allow_inactive=False):
    """Raises `InactiveArm` when a curriculum of the run did not act; returns the reasons."""
    found = reasons(figures)
    if found and not allow_inactive:
        raise InactiveArm(
            f"Arm {method!r} (seed {seed}) did not act: "
            + "; ".join(found)
            + ". Its row would be conventional training under another name; the runner refuses "
            "it (pass --allow-inactive to keep it, marked inactive in the table)."
        )
    return found


def _mean(runs, curriculum, key):
    values = [
        r[curriculum][key] for r in runs if r.get(curriculum) and r[curriculum].get(key) is not None
    ]
    return statistics.mean(values) if values else None


def describe(method, runs, wall_ratio=None):
    """The table's activity cell of an arm: each curriculum's figures, means over its runs.

    `runs` is the list of the arm's `measure` results (one per seed); `wall_ratio` the arm's
    mean training time over its baseline's (shown for EfficientTrain).
    """
    parts = []
    for curriculum in curricula_of(method):
        if not any(r.get(curriculum) for r in runs):
            parts.append(f"{_NAMES[curriculum]}: no values logged")
            continue
        if curriculum == "lerac":
            parts.append(f"{100 * _mean(runs, 'lerac', 'fraction'):.1f} % of steps in curriculum")
        elif curriculum == "cbs":
            bypass = [r["cbs"].get("bypass_epoch") for r in runs if r.get("cbs")]
            when = (
                ("never" if bypass[0] is None else f"epoch {bypass[0]}")
                if len(set(bypass)) == 1
                else "epochs " + "/".join(str(b) for b in bypass)
            )
            parts.append(
                f"sigma {_mean(runs, 'cbs', 'sigma_first'):.3g} -> "
                f"{_mean(runs, 'cbs', 'sigma_last'):.3g}, bypass {when}"
            )
        elif curriculum == "efficient_train":
            text = f"pixels {_mean(runs, 'efficient_train', 'pixels'):.2f} of full"
            if wall_ratio is not None:
                text += f", wall time {wall_ratio:.2f}x baseline"
            parts.append(text)
        else:
            parts.append(f"data {_mean(runs, 'docl', 'fraction'):.2f} per epoch")
    text = "; ".join(parts) if parts else "—"
    if any(reasons(r) for r in runs):
        text += " (INACTIVE)"
    return text
