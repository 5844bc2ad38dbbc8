"""EfficientTrain stage tables: pure functions of the epoch (sizes, magnitudes, compute).

The ET (ICCV 2023) and ET++ (TPAMI 2024) tables, the epoch -> stage map and the compute of a
table relative to full-resolution training. No Keras object is involved.
"""

import math
import warnings
from typing import NamedTuple

import numpy as np

from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_number
from keras_curriculum._validation import check_sequence
from keras_curriculum.efficient_train.frequency_crop import normalize_size

PAPER_SIZES_224 = (160, 160, 160, 192, 224)
PAPER_MAGNITUDES = (1, 3, 5, 7, 9)
PLUS_SIZES_224 = (96,) * 2 + (160,) * 4 + (224,) * 4
PLUS_MAGNITUDES = tuple(range(10))
SCHEDULES = ("paper", "plus")
DOWNSAMPLE = ("fft", "resize")


class _StageFields(NamedTuple):
    epochs: int
    size: object = None
    magnitude: object = None


class Stage(_StageFields):
    """One row of an EfficientTrain table: `epochs` at `size` with RandAugment `magnitude`.

    `epochs` is an int >= 1 (a stage of 0 epochs is refused: it would never act); `size` an int, a
    `(height, width)` pair (kept as given) or None
    (the full image); `magnitude` a RandAugment magnitude on the 0..10 scale, or None for no
    augmentation. The fields are checked here, so a bad row fails where it is written.
    """

    __slots__ = ()

    def __new__(cls, epochs, size=None, magnitude=None):
        if check_int("epochs", epochs, 0) == 0:
            raise ValueError(
                "`epochs` of a stage must be >= 1: a stage of 0 epochs never runs; drop it "
                "from `stages`. Received: epochs=0"
            )
        if size is not None:
            normalize_size(size)
        check_number("magnitude", magnitude, 0.0, 10.0, allow_none=True)
        return super().__new__(cls, epochs, size, magnitude)


def scale_size(size_at_224, image_size):
    """A published size for 224 px inputs scaled to `image_size`: round(B * S / 224) per axis."""
    height, width = normalize_size(image_size, "image_size")
    return (
        max(1, int(math.floor(size_at_224 * height / 224 + 0.5))),
        max(1, int(math.floor(size_at_224 * width / 224 + 0.5))),
    )


def _without_empty_stages(lengths, rows, where):
    """`Stage(n, size, m)` for each row that lasts n >= 1 epochs; a warning names the others."""
    dropped = [i for i, n in enumerate(lengths) if n == 0]
    if dropped:
        warnings.warn(
            f"{where}: stage(s) {', '.join(str(i) for i in dropped)} of {len(rows)} round to 0 "
            "epochs and are dropped; the other stages still act. Train for more epochs to run "
            "every stage.",
            stacklevel=3,
        )
    return [Stage(int(n), *row) for n, row in zip(lengths, rows) if n > 0]


def stage_magnitudes(magnitudes, count):
    """`count` RandAugment magnitudes, one per stage: a sequence as given, or None (no
    augmentation in any stage)."""
    if magnitudes is None:
        return [None] * count
    magnitudes = list(check_sequence("magnitudes", magnitudes))
    if len(magnitudes) != count:
        raise ValueError(
            f"`magnitudes` must list {count} magnitudes, one per stage, or be None. "
            f"Received: magnitudes={magnitudes!r}"
        )
    for magnitude in magnitudes:
        check_number("magnitudes", magnitude, 0.0, 10.0, allow_none=True)
    return magnitudes


def paper_stage_epochs(epochs=300):
    """The epochs of each of the paper table's 5 stages in a run of `epochs` (0 for a stage
    that rounds away): stage i ends after epoch int(epochs * (i + 1) / 5)."""
    check_int("epochs", epochs, 1)
    return np.diff([0] + [epochs * (i + 1) // 5 for i in range(5)]).astype(int)


def paper_stages(epochs=300, image_size=224, magnitudes=PAPER_MAGNITUDES):
    """The EfficientTrain (ICCV 2023) table: 5 stages, B = 160,160,160,192,224, m = 1,3,5,7,9.

    Stage i ends after epoch int(epochs * (i + 1) / 5), as in the official launcher
    (`ET_training.py`, `--end_epoch`); B is scaled to `image_size`. `magnitudes` replaces the
    RandAugment magnitudes (5 values in [0, 10], None entries for none); None trains every
    stage without augmentation (sizes only). In a run of fewer than 5 epochs, stages that round
    to 0 epochs are dropped with a warning.
    """
    magnitudes = stage_magnitudes(magnitudes, len(PAPER_SIZES_224))
    lengths = paper_stage_epochs(epochs)
    rows = [(scale_size(b, image_size), m) for b, m in zip(PAPER_SIZES_224, magnitudes)]
    return _without_empty_stages(lengths, rows, f"paper_stages(epochs={epochs})")


def compute_clock_epochs(budget_epochs, sizes, image_size):
    """Epochs of each stage under the EfficientTrain++ compute clock.

    Every one of the n stages spends budget/n of a compute budget counted in full-resolution
    image-epochs: an epoch at B_h x B_w costs (B_h * B_w) / (H * W), so stage i lasts
    (budget / n) * (H * W) / (B_h * B_w) epochs (the official launcher's `rp_epoch / 10`).
    Stage ends are rounded on the cumulative sum, so the table's total is the rounded total.
    """
    height, width = normalize_size(image_size, "image_size")
    check_number("budget_epochs", budget_epochs, low=0.0, low_open=True)
    sizes = [normalize_size(s, "sizes") for s in check_sequence("sizes", sizes)]
    weights = np.array([height * width / (h * w) for h, w in sizes])
    ends = np.floor(budget_epochs / len(sizes) * np.cumsum(weights) + 0.5).astype(int)
    return np.diff(np.concatenate([[0], ends])).astype(int)


def plus_stages(budget_epochs=200, image_size=224, sizes=None, magnitudes=PLUS_MAGNITUDES):
    """The EfficientTrain++ table: 10 stages, magnitude m = stage index, the compute clock.

    Args:
        budget_epochs: compute budget in full-resolution epochs (the official `--epoch`; 200
            against a 300-epoch baseline is the paper's 1.5x). The table runs longer than this
            in epochs, since low-resolution epochs are cheaper.
        image_size: full input size; the default sizes [96]*2 + [160]*4 + [224]*4 are scaled to
            it.
        sizes: 10 absolute sizes (int or pairs) instead of the default.
        magnitudes: 10 RandAugment magnitudes in [0, 10] (None entries for none), or None for
            no augmentation in any stage.

    Stages that round to 0 epochs (tiny budgets) are dropped with a warning.
    """
    if sizes is None:
        sizes = [scale_size(b, image_size) for b in PLUS_SIZES_224]
    if len(check_sequence("sizes", sizes)) != 10:
        raise ValueError(f"`sizes` must list 10 stage sizes. Received {len(sizes)}: {sizes!r}")
    magnitudes = stage_magnitudes(magnitudes, 10)
    lengths = compute_clock_epochs(budget_epochs, sizes, image_size)
    rows = [(normalize_size(s, "sizes"), m) for s, m in zip(sizes, magnitudes)]
    return _without_empty_stages(lengths, rows, f"plus_stages(budget_epochs={budget_epochs})")


def stage_of_epoch(stages):
    """Index of the stage in force in each epoch: int32 array of length sum(epochs)."""
    return np.repeat(np.arange(len(stages), dtype="int32"), [s.epochs for s in stages])


def stage_compute(stages, image_size):
    """Compute of one epoch of each stage relative to a full-resolution epoch."""
    height, width = normalize_size(image_size, "image_size")
    fractions = []
    for stage in stages:
        h, w = (height, width) if stage.size is None else normalize_size(stage.size)
        fractions.append(h * w / (height * width))
    return np.array(fractions)


def compute_fraction(stages, image_size):
    """Compute of the whole table relative to as many epochs at full resolution."""
    per_epoch = stage_compute(stages, image_size)[stage_of_epoch(stages)]
    return float(per_epoch.mean())


def normalize_stages(stages):
    if isinstance(stages, str) or not isinstance(stages, (list, tuple)):
        raise TypeError(
            "`stages` must be a non-empty list of (epochs, size, magnitude) rows; for the "
            "published schedules use `EfficientTrain.paper()` or `EfficientTrain.plus()`. "
            f"Received: stages={stages!r}"
        )
    rows = []
    for row in stages:
        if isinstance(row, dict):
            row = Stage(**row)
        elif isinstance(row, (list, tuple)) and 1 <= len(row) <= 3:
            row = Stage(*row)
        else:
            raise TypeError(
                f"Each of `stages` must be (epochs, size, magnitude). Received: {row!r}"
            )
        size = None if row.size is None else normalize_size(row.size)
        rows.append(Stage(int(row.epochs), size, row.magnitude))
    if sum(row.epochs for row in rows) < 1:
        raise ValueError(f"`stages` must cover at least one epoch. Received: stages={stages!r}")
    return rows
