"""The protocol rows of the Fashion-MNIST recipe (the offline main job).

Fashion-MNIST is in none of the four papers, so every value is "not given; chosen", with why.
`FashionMNIST.protocol_rows` returns these rows; its constructor sets the same values
(tests/test_protocols.py checks that the built recipe matches them).
"""

from .protocol import ProtocolValue

NOT_IN_PAPERS = "Fashion-MNIST is in none of the papers"


def fashion_mnist_rows():
    return [
        ProtocolValue("model", "small CNN, width 16",
                      f"not given; chosen: three conv-BN-ReLU stages, because {NOT_IN_PAPERS} "
                      "and the main job runs on a CPU"),
        ProtocolValue("optimizer", "Adamax",
                      "not given; chosen: Adamax, because the LeRaC code fine-tunes BERT with it "
                      "(CroitoruAlin/LeRaC experiments/bert_experiments.py:22) and LeRaC's "
                      "per-layer rates act on an adaptive optimizer there"),
        ProtocolValue("learning_rate", 2e-3,
                      f"not given; chosen: 2e-3, because {NOT_IN_PAPERS}; Keras's Adamax "
                      "default, doubled for short runs"),
        ProtocolValue("batch", 128, f"not given; chosen: 128, because {NOT_IN_PAPERS}"),
        ProtocolValue("lerac.duration", 2,
                      f"not given; chosen: 2 epochs, because {NOT_IN_PAPERS} and the main job "
                      "runs a few epochs"),
        ProtocolValue("lerac.min_learning_rate", 1e-8,
                      "not given; chosen: 1e-8, because it is the lowest rate of the LeRaC "
                      "code's ResNet-18 on Tiny ImageNet (CroitoruAlin/LeRaC "
                      "experiments/r18_experiments.py:104-105)"),
        ProtocolValue("cbs.sigma", 1.0, "pairlab/CBS arguments.py:20"),
        ProtocolValue("cbs.kernel_size", 3, "pairlab/CBS arguments.py:23"),
        ProtocolValue("cbs.factor", 0.9, "pairlab/CBS arguments.py:21"),
        ProtocolValue("cbs.every", 1,
                      "not given; chosen: every epoch, because the main job runs a few epochs "
                      "(the CBS code: every 5, pairlab/CBS arguments.py:22)"),
        ProtocolValue("docl.warmup_epochs", 1,
                      "not given; chosen: 1 epoch, because the main job runs a few epochs "
                      "(the DoCL code: 5 of 300, tianyizhou/DoCL docl.py:45)"),
        ProtocolValue("docl.episode_epochs", 2,
                      "not given; chosen: 2 sampling epochs, because the main job runs a few "
                      "epochs"),
        ProtocolValue("upscaled_size", 56,
                      "not given; chosen: 56 px (28 x 2), because EfficientTrain needs room to "
                      "crop; its arm and its own baseline train on the upscaled images"),
    ]
