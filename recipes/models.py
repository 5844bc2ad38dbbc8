"""Models of the papers' protocols, as plain Keras Functional models (random initialisation)."""

import keras
from keras import layers


def small_cnn(input_shape=(28, 28, 1), num_classes=10, width=32, name="small_cnn"):
    """Three conv-BN-ReLU stages and a linear head: a quick CPU model for tests and benchmarks.

    BatchNormalization uses momentum 0.9 (not Keras's 0.99): the recipes train for a few hundred
    steps, and slower moving statistics would leave evaluation with untrained statistics.
    """
    inputs = keras.Input(input_shape)
    x = inputs
    for stage, filters in enumerate((width, 2 * width, 4 * width)):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{stage + 1}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{stage + 1}")(x)
        x = layers.ReLU(name=f"relu{stage + 1}")(x)
        if stage < 2:
            x = layers.MaxPooling2D(name=f"pool{stage + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(num_classes, name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def _basic_block(x, filters, stride, name):
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                      name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                                 name=f"{name}_shortcut_conv")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def resnet18(input_shape=(32, 32, 3), num_classes=10, name="resnet18"):
    """ResNet-18 for CIFAR-sized inputs (3x3 stem, no max-pool), as in the LeRaC and CBS papers.

    Spatial input dimensions may be None, so the model also takes EfficientTrain's smaller crops.
    """
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(64, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, filters, stride, name=f"stage{stage + 1}_block{block + 1}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(num_classes, name="head")(x)
    return keras.Model(inputs, outputs, name=name)
