"""Models of the papers' protocols, as plain Keras Functional models (random initialisation)."""

import keras
from keras import layers
from keras import ops


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


@keras.saving.register_keras_serializable(package="recipes")
class PaddingMask(layers.Layer):
    """True at tokens, False at padding (token id 0), for the LSTMs to skip the padding.

    The mask is passed to the LSTMs explicitly rather than through `Embedding(mask_zero=True)`,
    so that it survives layers placed between the embedding and the LSTMs (CBS's smoothing).
    """

    def call(self, tokens):
        return ops.not_equal(tokens, 0)

    def compute_output_spec(self, tokens):
        return keras.KerasTensor(tokens.shape, dtype="bool")


def lstm_classifier(vocabulary_size, sequence_length, num_classes=2, embedding_dim=128,
                    lstm_units=256, dense_units=128, smoothing=None, name="lstm_classifier"):
    """The LeRaC paper's recurrent text classifier: embedding, two LSTMs, two dense layers.

    Token ids (0 = padding) -> embedding (`embedding_dim`, paper 128) -> LSTM (`lstm_units`,
    paper 256, whole sequence) -> LSTM (`lstm_units`, last state) -> dense (`dense_units`, ReLU;
    the paper does not give this width) -> dense logits. Both LSTMs skip the padding.

    Args:
        smoothing: None, or a layer applied to the token embeddings before the LSTMs (CBS's
            `kc.GaussianSmoothing`, which smooths `(batch, steps, channels)` along the steps).
    """
    tokens = keras.Input((sequence_length,), dtype="int32", name="tokens")
    mask = PaddingMask(name="padding_mask")(tokens)
    x = layers.Embedding(vocabulary_size, embedding_dim, name="embedding")(tokens)
    if smoothing is not None:
        x = smoothing(x)
    x = layers.LSTM(lstm_units, return_sequences=True, name="lstm1")(x, mask=mask)
    x = layers.LSTM(lstm_units, name="lstm2")(x, mask=mask)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    outputs = layers.Dense(num_classes, name="head")(x)
    return keras.Model(tokens, outputs, name=name)


@keras.saving.register_keras_serializable(package="recipes")
class UnpackBertInputs(layers.Layer):
    """`(batch, 3, length)` int ids -> BERT's dict of token ids, segment ids and padding mask.

    The text recipes keep BERT's three inputs in one array so that every method sees plain
    `(x, y)` arrays (DoCL's sampler and the runner's `predict` take arrays, not dicts).
    """

    def call(self, packed):
        return {"token_ids": packed[:, 0], "segment_ids": packed[:, 1],
                "padding_mask": packed[:, 2]}

    def compute_output_spec(self, packed):
        shape = (packed.shape[0], packed.shape[2])
        return {key: keras.KerasTensor(shape, dtype=packed.dtype)
                for key in ("token_ids", "segment_ids", "padding_mask")}


def packed_bert_classifier(classifier, sequence_length, name="bert_classifier"):
    """A keras-hub text classifier (no preprocessor) taking one `(batch, 3, length)` id array."""
    packed = keras.Input((3, sequence_length), dtype="int32", name="packed_ids")
    return keras.Model(packed, classifier(UnpackBertInputs(name="unpack")(packed)), name=name)
