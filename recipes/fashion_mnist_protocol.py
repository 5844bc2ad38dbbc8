"""The protocol rows of the Fashion-MNIST recipe (the offline main job).

Fashion-MNIST is in none of the four papers, so the model, data and optimizer values are "not
given; chosen", with why; the curricula run at the package's defaults, which are their papers'
proportions of the run, and the rows say so. `FashionMNIST.protocol_rows` returns these rows;
its constructor reads its values from them (tests/test_protocols.py checks the built recipe).

How the protocol was chosen: on the validation split (held-out training images), never on the
test set. A plain CNN of width 16 with batch normalisation and a Flatten head, Adam 2e-3, 8
epochs, reached 87.8 % validation accuracy (last epoch) on 12,000 training images, 88.5 % on
15,000 and 89.3 % on 18,000 at a constant rate, and 90.4 % on 15,000 with a cosine decay to 0
(one seed each, TensorFlow CPU, 5,000 held-out training images); 15,000 with the cosine keeps
the 3-seed main job inside 20 minutes on a 2-core machine.
"""

from .protocol import ProtocolValue

NOT_IN_PAPERS = "Fashion-MNIST is in none of the papers"
CHOSEN_ON_VALIDATION = "chosen on the validation split, never on the test set"


def fashion_mnist_rows():
    return [
        ProtocolValue(
            "model",
            "small CNN, Flatten head",
            f"not given; chosen: three conv-BN-ReLU stages and a Flatten head, because "
            f"{NOT_IN_PAPERS} and the main job runs on a CPU ({CHOSEN_ON_VALIDATION})",
        ),
        ProtocolValue(
            "width",
            16,
            f"not given; chosen: 16 channels in the first stage, because {NOT_IN_PAPERS}"
            " and it reaches 87 % in a few CPU minutes",
        ),
        ProtocolValue(
            "train_size",
            15000,
            f"not given; chosen: 15,000 class-balanced training images, because "
            f"{NOT_IN_PAPERS}; validation 87.8 % at 12,000 and 89.3 % at 18,000, "
            "and 15,000 keeps the main job inside 20 minutes",
        ),
        ProtocolValue(
            "validation_size",
            2000,
            "not given; chosen: 2,000 class-balanced training images outside the "
            "training subset, because the protocol is chosen on them and not on the "
            "test set; small, as it is evaluated after every epoch of every run",
        ),
        ProtocolValue(
            "optimizer",
            "Adam",
            f"not given; chosen: Adam, because {NOT_IN_PAPERS} and it trains this "
            f"model to 87 % in 8 epochs ({CHOSEN_ON_VALIDATION})",
        ),
        ProtocolValue(
            "learning_rate",
            2e-3,
            f"not given; chosen: 2e-3, because {NOT_IN_PAPERS} ({CHOSEN_ON_VALIDATION})",
        ),
        ProtocolValue(
            "schedule",
            "cosine to 0 over the arm's steps",
            "not given; chosen: a cosine decay (no restarts, no warm-up), because "
            f"{NOT_IN_PAPERS}; validation 90.4 % against 88.5 % at a constant rate "
            "(15,000 images, 8 epochs, one seed)",
        ),
        ProtocolValue("batch", 128, f"not given; chosen: 128, because {NOT_IN_PAPERS}"),
        ProtocolValue(
            "epochs",
            8,
            f"not given; chosen: 8 epochs, because {NOT_IN_PAPERS}; the main job "
            "(`--length default`) must fit in 20 minutes for 3 seeds of every arm",
        ),
        ProtocolValue(
            "paper_epochs",
            200,
            f"not given; chosen: 200 epochs for `--length paper`, because "
            f"{NOT_IN_PAPERS}: it is the CBS code's CIFAR epoch count (the longest of "
            "the image papers' CIFAR schedules)",
        ),
        ProtocolValue(
            "lerac_duration",
            "package default: 5 % of the fit",
            "LeRaC Table 1",
            note="k = 5-7 of 100-200 epochs; kc.LeRaC's default duration=0.05 "
            "(in steps when the fit is short)",
        ),
        ProtocolValue(
            "lerac.min_learning_rate",
            1e-8,
            "CroitoruAlin/LeRaC experiments/r18_experiments.py:104-105",
            note="the lowest rate of the LeRaC code's ResNet-18 on Tiny ImageNet",
        ),
        ProtocolValue("cbs.sigma", 1.0, "pairlab/CBS arguments.py:20"),
        ProtocolValue("cbs.kernel_size", 3, "pairlab/CBS arguments.py:23"),
        ProtocolValue("cbs.factor", 0.9, "pairlab/CBS arguments.py:21"),
        ProtocolValue(
            "cbs.every",
            5 / 200,
            "pairlab/CBS arguments.py:22",
            note="every 5 epochs of the code's 200, as a fraction of the fit "
            "(kc.SigmaDecay's default): sigma_0 * 0.9 ** (40 t / T) per epoch",
        ),
        ProtocolValue(
            "docl_schedule",
            "package default",
            "tianyizhou/DoCL docl.py:45",
            note="kc.DoCL's defaults: 5 of 300 epochs of warm-up, then the official "
            "episode ends scaled to the run",
        ),
        ProtocolValue(
            "upscaled_size",
            42,
            "not given; chosen: 42 px (28 x 1.5), because EfficientTrain needs room to "
            "crop (stages 30, 30, 30, 36, 42: the paper's 160-224 of 224 scaled) and "
            "56 px does not fit the main job's 20 minutes; its arm and its own "
            "baseline train on the upscaled images",
        ),
        ProtocolValue(
            "upscaled_train_size",
            6000,
            "not given; chosen: 6,000 of the training images for the EfficientTrain "
            "pair (a global-average-pooling head, for images of every stage's size), "
            "because upscaled images cost 2.25x per image and the main job must fit "
            "in 20 minutes: the pair is its own protocol, compared with each other "
            "only",
        ),
    ]
