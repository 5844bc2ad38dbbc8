"""DoCL's protocol in the recipes: its rows and the regime its arms (and their baseline) train in.

Paper protocol (DoCL Sec. 4 and Alg. 1, as quoted by issue 13): the official episode plan
scaled to the run; one cosine cycle per episode (and one for the warm start), start and target
rates x 0.85 per cycle; Mix-up with alpha 0.4. Official protocol (tianyizhou/DoCL): cycle rates
x 1/0.9 for episodes 1-4 then x 0.9 (start) and x 0.8 (end), a linear warm-start ramp, the
scripts' Mix-up alpha, temperature 10 and score EMA 0.5. The `conventional_docl` arm trains
with the same optimizer, cycles (counted on its own, full epochs) and Mix-up.

Scoring with Mix-up: each mixed row keeps at least half of its own example (`mixup(...,
own_weight_first=True)`), and DoCL scores that example with the logits of its mixed view and
its own label. The official code scores examples from a mean teacher's logits on a second,
unmixed view (docl.py:1063-1064), an extra forward pass this package does not make.
"""

from keras_curriculum.docl import episodes

from .protocol import ProtocolValue
from .regimes import Regime
from .regimes import docl_episodes
from .regimes import episode_cosine
from .regimes import official_docl_rates

DOCL = "tianyizhou/DoCL"
OFFICIAL_MIN_OVER_MAX = 5e-4 / 0.1  # docl.py:57, :61


def docl_rows(
    max_learning_rate,
    max_source,
    min_learning_rate=None,
    min_source=None,
    mixup_alpha=0.4,
    mixup_source="DoCL Sec. 4",
    official_alpha=0.5,
    official_alpha_source=f"{DOCL} docl.py:68",
):
    """The DoCL rows every recipe with a DoCL arm shares.

    `max_learning_rate` is the rate each episode's cosine starts from (the recipe's own
    rate); `min_learning_rate` its target (default the official 5e-4 of 0.1, scaled).
    `mixup_alpha=None` for inputs that cannot be mixed (token ids).
    """
    if min_learning_rate is None:
        min_learning_rate = max_learning_rate * OFFICIAL_MIN_OVER_MAX
        min_source = (
            f"{DOCL} docl.py:61"
            if max_learning_rate == 0.1
            else f"not given; chosen: {min_learning_rate:g}, because it keeps the official "
            f"ratio 5e-4 / 0.1 ({DOCL} docl.py:57, :61) below the recipe's rate"
        )
    rows = [
        ProtocolValue(
            "docl.tau",
            0.1,
            "DoCL Sec. 4",
            official=10.0,
            official_source=f"{DOCL} docl.py:101, :548-550",
            note="the code samples by exp(0.1 (a - min a)): `--tmpt 0.1` is 1 / temperature",
        ),
        ProtocolValue(
            "docl.gamma",
            0.9,
            "DoCL Sec. 4",
            official=0.5,
            official_source=f"{DOCL} docl.py:111, :523",
        ),
        ProtocolValue(
            "docl.fraction_decay",
            0.9,
            "DoCL Sec. 4",
            note="official: k grows from 0.2 n by x1.1 per episode up to 0.9 n "
            "(docl_cifar.sh:4, :7; docl.py:421-427), which kc.DoCL cannot "
            "express: 0.9 under both protocols",
        ),
        ProtocolValue("docl.min_fraction", 0.2, "DoCL Sec. 4"),
        ProtocolValue(
            "docl.refresh",
            True,
            "DoCL Alg. 1 l. 5-7",
            note="one full pass after each episode; the code runs it as the first "
            "epoch of the next (docl.py:502, :543)",
        ),
        ProtocolValue(
            "docl:episode_ends",
            episodes.OFFICIAL_EPISODE_ENDS,
            f"{DOCL} docl.py:43, :45",
            note="epochs of 300, scaled to the run (episodes.scaled_episodes); "
            "[0, 5) is the warm start. The paper: episodes of increasing length",
        ),
        ProtocolValue(
            "docl:warm_start",
            "task loss at the arm's batch",
            f"{DOCL} docl.py:499-500",
            note="not implemented: the paper's square loss on 4x batches in the warm "
            "start and refresh passes (DoCL Alg. 1 l. 5-7)",
        ),
        ProtocolValue(
            "docl:schedule",
            "cosine per episode",
            "DoCL Sec. 4",
            official="cosine per episode, linear warm-up",
            official_source=f"{DOCL} docl.py:500, :1551-1555, :1565-1567",
        ),
        ProtocolValue("docl:max_learning_rate", max_learning_rate, max_source),
        ProtocolValue("docl:min_learning_rate", min_learning_rate, min_source),
        ProtocolValue(
            "docl:cycle_decay",
            0.85,
            "DoCL Sec. 4",
            official=(0.9, 0.8),
            official_source=f"{DOCL} docl.py:59, :63, :405-411",
            note="official: x 1/0.9 on the start rate for episodes 1-4 "
            "(docl.py:49), then x0.9 on the start and x0.8 on the end rate",
        ),
    ]
    if mixup_alpha is None:
        rows.append(ProtocolValue("docl:mixup_alpha", None, mixup_source))
    else:
        rows.append(
            ProtocolValue(
                "docl:mixup_alpha",
                mixup_alpha,
                mixup_source,
                official=official_alpha,
                official_source=official_alpha_source,
                note="official: x0.9 per episode down to 0.2, and 0.2 in the warm start and "
                "refresh passes (docl.py:438-443, :500-504): not followed",
            )
        )
    return rows


def docl_arguments(protocol, epochs):
    """`kc.DoCL` keyword arguments: the `docl.*` rows and the episode plan of this run."""
    plan = docl_episodes(epochs, protocol["docl:episode_ends"])
    return dict(
        protocol.section("docl"),
        warmup_epochs=plan.warmup_epochs,
        episode_epochs=list(plan.episode_epochs),
    )


def docl_regime(protocol, epochs, make_optimizer):
    """The regime of the DoCL arm and of `conventional_docl`.

    Args:
        protocol: the recipe's `Protocol` (its `docl:*` rows).
        epochs: the run's epochs.
        make_optimizer: function of a learning-rate schedule returning the optimizer.
    """
    plan = docl_episodes(epochs, protocol["docl:episode_ends"])
    high = protocol["docl:max_learning_rate"]
    low = protocol["docl:min_learning_rate"]
    decay = protocol["docl:cycle_decay"]

    def optimizer(epoch_steps, callbacks):
        if isinstance(decay, (tuple, list)):  # the official per-episode rates
            return make_optimizer(official_docl_rates(plan, epoch_steps, high, low, *decay))
        return make_optimizer(episode_cosine(plan, epoch_steps, high, low, decay))

    return Regime("docl", optimizer, protocol["docl:mixup_alpha"])
