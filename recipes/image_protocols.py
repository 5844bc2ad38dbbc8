"""The protocol rows of the CIFAR-10, CIFAR-100 and Tiny ImageNet recipes.

Read from the authors' code (docs/protocol_sources.md has the notes): the LeRaC code
(CroitoruAlin/LeRaC) for the conventional, LeRaC, LeRaC + CBS and EfficientTrain arms, the CBS
code (pairlab/CBS) for the CBS arm, the DoCL code (tianyizhou/DoCL) for the DoCL arm.

Epochs are Keras's 0-based epoch indices: the LeRaC trainers count from 1 and divide the rate
before training their epoch 35 (train/resnet_train.py:31-38), i.e. from Keras epoch 34 on.
"""

from .docl_protocol import DOCL
from .docl_protocol import docl_rows
from .protocol import USER_SOURCE
from .protocol import ProtocolValue
from .protocol import lerac_update_row

LERAC = "CroitoruAlin/LeRaC"
CBS = "pairlab/CBS"
R18 = "experiments/r18_experiments.py"
WRN = "experiments/wrn_experiments.py"
TRAIN = "train/resnet_train.py"
MOMENTUM = 0.9
WRN_CODE = (52, 2, 0.3)  # Wide_ResNet(52, 2, 0.3) in both codes


# What the LeRaC code runs per (dataset, model): the 0-based epochs at which the rate is divided
# by 10, the lowest initial group rate (the blocks' floor, one decade below `min_lr` because
# the float comparison at :20 / :26 sees 1.0000000000000004e-05 > 1e-5, or the head's), the
# number of x10 events that bring it to 0.1, and the events per epoch.
_LERAC_CODE = {
    ("cifar10", "resnet18"): dict(
        decays=(34, 64, 94),
        decays_at=f"{R18}:54-56",
        lowest=1e-6,
        lowest_at=f"{R18}:14-21, :60-61",
        events=5,
        per_epoch=1,
        per_epoch_at=f"{R18}:63",
        epochs=200,
        epochs_at=f"{R18}:62",
        rate_at=f"{R18}:59",
        model_at=f"{R18}:65",
    ),
    ("cifar100", "resnet18"): dict(
        decays=(35, 65, 95),
        decays_at=f"{R18}:75-77",
        lowest=1e-7,
        lowest_at=f"{R18}:14-21, :81-82",
        events=6,
        per_epoch=1,
        per_epoch_at=f"{R18}:84",
        epochs=200,
        epochs_at=f"{R18}:83",
        rate_at=f"{R18}:80",
        model_at=f"{R18}:86",
    ),
    ("tiny_imagenet", "resnet18"): dict(
        decays=(32, 62, 92),
        decays_at=f"{R18}:98-100",
        lowest=1e-8,
        lowest_at=f"{R18}:14-21, :104-105",
        events=7,
        per_epoch=4,
        per_epoch_at=f"{R18}:107",
        epochs=100,
        epochs_at=f"{R18}:106",
        rate_at=f"{R18}:103",
        model_at=f"{R18}:109",
    ),
    ("cifar10", "wrn"): dict(
        decays=(37, 67, 97),
        decays_at=f"{WRN}:45-47",
        lowest=1e-8,
        lowest_at=f"{WRN}:20-27, :51-52",
        events=7,
        per_epoch=1,
        per_epoch_at=f"{WRN}:54",
        epochs=200,
        epochs_at=f"{WRN}:53",
        rate_at=f"{WRN}:50",
        model_at=f"{WRN}:57",
    ),
    ("cifar100", "wrn"): dict(
        decays=(37, 67, 97),
        decays_at=f"{WRN}:67-69",
        lowest=1e-8,
        lowest_at=f"{WRN}:20-27, :73-74",
        events=7,
        per_epoch=1,
        per_epoch_at=f"{WRN}:76",
        epochs=200,
        epochs_at=f"{WRN}:75",
        rate_at=f"{WRN}:72",
        model_at=f"{WRN}:79",
    ),
    ("tiny_imagenet", "wrn"): dict(
        decays=(31, 61, 91),
        decays_at=f"{WRN}:89-91",
        lowest=1e-6,
        lowest_at=f"{WRN}:20-27, :95-96",
        events=5,
        per_epoch=4,
        per_epoch_at=f"{WRN}:98",
        epochs=100,
        epochs_at=f"{WRN}:97",
        rate_at=f"{WRN}:94",
        model_at=f"{WRN}:100",
    ),
}

# Per dataset: training transform lines (no augmentation), batch, EfficientTrain sizes and
# their rounding multiple, the DoCL code's Mix-up alpha and weight decay (scripts for CIFAR).
_DATA = {
    "cifar10": dict(
        transform="data_handlers.py:41-45",
        cbs_transform="data.py:32-36",
        batch="data_handlers.py:40",
        side=32,
        multiple=4,
        docl_alpha=1.0,
        docl_alpha_at=f"{DOCL} docl_cifar.sh:7",
        docl_decay=2e-4,
        docl_decay_at=f"{DOCL} docl_cifar.sh:7",
    ),
    "cifar100": dict(
        transform="data_handlers.py:41-45",
        cbs_transform="data.py:53-57",
        batch="data_handlers.py:40",
        side=32,
        multiple=4,
        docl_alpha=1.2,
        docl_alpha_at=f"{DOCL} docl_cifar.sh:4",
        docl_decay=2e-4,
        docl_decay_at=f"{DOCL} docl_cifar.sh:4",
    ),
    "tiny_imagenet": dict(
        transform="data_handlers.py:148-152",
        cbs_transform="data.py:73-76",
        batch="data_handlers.py:147",
        side=64,
        multiple=8,
        docl_alpha=0.5,
        docl_alpha_at=f"{DOCL} docl.py:68",
        docl_decay=1e-4,
        docl_decay_at=f"{DOCL} docl.py:66",
    ),
}


def decoupled(coupled):
    """Keras's decoupled weight decay equivalent to PyTorch's coupled L2 under momentum 0.9:
    at steady state the momentum buffer amplifies the coupled term by 1 / (1 - momentum)."""
    return coupled / (1 - MOMENTUM)


def _model_row(model, code, wrn):
    if model == "resnet18":
        return ProtocolValue("model", "ResNet-18, CIFAR stem", f"{LERAC} {code['model_at']}")
    text = "WRN-{}-{}, dropout {:g}".format(*wrn)
    source = f"{LERAC} {code['model_at']}" if tuple(wrn) == WRN_CODE else USER_SOURCE
    return ProtocolValue("model", text, source)


def small_image_rows(dataset, model="resnet18", wrn=WRN_CODE, et_sizes=None):
    """The protocol rows of one small-image recipe (`dataset` in `_DATA`, `model` resnet18 or
    wrn, `wrn` = (depth, width, dropout), `et_sizes` its EfficientTrain table)."""
    code, data = _LERAC_CODE[(dataset, model)], _DATA[dataset]
    events = code["events"]
    per_epoch = code["per_epoch"]
    k_note = (
        f"{events} x10 events from the lowest rate to 0.1, {per_epoch} per epoch "
        f"({events / per_epoch:g} epochs)"
    )
    et_table = "LeapLabTHU/EfficientTrain ET_training.py:51"
    return [
        _model_row(model, code, wrn),
        ProtocolValue("optimizer", "SGD", f"{LERAC} {R18}:39-43"),
        ProtocolValue("momentum", MOMENTUM, f"{LERAC} {R18}:39-43"),
        ProtocolValue("learning_rate", 0.1, f"{LERAC} {code['rate_at']}"),
        ProtocolValue(
            "weight_decay",
            decoupled(1e-4),
            f"{LERAC} {R18}:39-43",
            note="PyTorch's coupled 1e-4 as Keras's decoupled decay, x 1 / (1 - 0.9)",
        ),
        ProtocolValue("batch", 64, f"{LERAC} {data['batch']}"),
        ProtocolValue(
            "epochs",
            code["epochs"],
            f"{LERAC} {code['epochs_at']}",
            note="the run's `--epochs`; epoch-valued rows scale with it",
        ),
        ProtocolValue(
            "decay_epochs",
            code["decays"],
            f"{LERAC} {code['decays_at']}, {TRAIN}:33-38",
            note="rate / 10 from these 0-based epochs (the code's 1-based "
            + ", ".join(str(e + 1) for e in code["decays"])
            + ")",
        ),
        ProtocolValue(
            "augmentation",
            False,
            f"LeRaC Sec. 4.2; {LERAC} {data['transform']}; {CBS} {data['cbs_transform']}",
        ),
        ProtocolValue("normalisation", "(x / 255 - 0.5) / 0.5", f"{LERAC} data_handlers.py:44"),
        ProtocolValue(
            "lerac.duration", events, f"{LERAC} {R18}:58, :64, {TRAIN}:47-48, :82-86", note=k_note
        ),
        ProtocolValue(
            "lerac_events_per_epoch",
            per_epoch,
            f"{LERAC} {code['per_epoch_at']}, {TRAIN}:56-61, :76-77",
        ),
        ProtocolValue(
            "lerac.min_learning_rate",
            code["lowest"],
            f"{LERAC} {code['lowest_at']}",
            note="initial rates log-spaced over the depth groups; the code gives "
            "whole decades per residual block and starts the head at base x "
            "clf_lr",
        ),
        lerac_update_row(
            f"{LERAC} {TRAIN}:82-86", note="stepwise: x c per event, capped at the base rate"
        ),
        ProtocolValue("lerac.c", 10.0, f"{LERAC} {R18}:58"),
        ProtocolValue(
            "lerac.base_schedule",
            "multiply",
            f"{LERAC} {TRAIN}:33-38",
            note="the ResNet trainer decays at fixed epochs whatever k (not shifted); "
            "only its CvT trainer starts its scheduler at k (train/cvt_train.py:58-62)",
        ),
        ProtocolValue("cbs.sigma", 1.0, f"{CBS} arguments.py:20"),
        ProtocolValue("cbs.kernel_size", 3, f"{CBS} arguments.py:23"),
        ProtocolValue("cbs.factor", 0.9, f"{CBS} arguments.py:21"),
        ProtocolValue("cbs.every", 5, f"{CBS} arguments.py:22, resnet.py:119-120"),
        ProtocolValue("cbs:learning_rate", 0.1, f"{CBS} arguments.py:17"),
        ProtocolValue(
            "cbs:weight_decay",
            decoupled(5e-4),
            f"{CBS} solver_base.py:37-42",
            note="PyTorch's coupled 5e-4 as Keras's decoupled decay",
        ),
        ProtocolValue("cbs:decay_epochs", (30, 60, 90), f"{CBS} solver_cbs.py:18-19, :30-33"),
        ProtocolValue("cbs:epochs", 200, f"{CBS} arguments.py:13"),
        ProtocolValue(
            "docl:optimizer", "SGD, momentum 0.9, Nesterov", f"DoCL Sec. 4; {DOCL} docl.py:65, :365"
        ),
        ProtocolValue(
            "docl:weight_decay",
            decoupled(data["docl_decay"]),
            data["docl_decay_at"],
            note=f"PyTorch's coupled {data['docl_decay']:g} as Keras's decoupled decay",
        ),
        ProtocolValue(
            "docl:batch",
            "the recipe's batch",
            f"not given; chosen: the recipe's batch ({LERAC} {data['batch']}), because "
            f"the DoCL arm and its baseline train the recipe's data and model; the "
            f"DoCL code trains WRN-28-10 at batch 128 for 300 epochs with AutoAugment "
            f"and Cutout ({DOCL} docl.py:43, :51, :77-80, :187-196)",
        ),
        *docl_rows(
            0.1,
            f"{DOCL} docl.py:57",
            official_alpha=data["docl_alpha"],
            official_alpha_source=data["docl_alpha_at"],
        ),
        ProtocolValue(
            "efficient_train.sizes",
            et_sizes,
            f"not given; chosen: the ET table 160, 160, 160, 192, 224 of 224 px "
            f"({et_table}) scaled to {data['side']} px and rounded to multiples of "
            f"{data['multiple']}, because the ET paper has no experiment at this size",
        ),
        ProtocolValue(
            "efficient_train.magnitudes",
            None,
            f"not given; chosen: none, because the recipe's other arms train "
            f"without augmentation ({LERAC} {data['transform']})",
        ),
    ]
