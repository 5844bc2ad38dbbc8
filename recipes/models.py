"""Models of the papers' protocols, as plain Keras Functional models (random initialisation)."""

import keras
from keras import layers
from keras import ops


def _inputs(input_shape, preprocess):
    """The model input and, when given, a preprocessing layer (e.g. normalisation) on it.

    Preprocessing lives inside the model, not in `tf.data`, so that every pipeline (and
    EfficientTrain's RandAugment, which needs the raw pixel range) feeds raw pixels.
    """
    inputs = keras.Input(input_shape)
    return inputs, (inputs if preprocess is None else preprocess(inputs))


def small_cnn(
    input_shape=(28, 28, 1), num_classes=10, width=32, preprocess=None, name="small_cnn", head="gap"
):
    """Three conv-BN-ReLU stages and a linear head: a quick CPU model for tests and benchmarks.

    `head="gap"` pools globally before the linear layer (any input size); `head="flatten"`
    flattens the last feature map (a fixed input size, more parameters, higher accuracy on
    Fashion-MNIST in a short run).

    BatchNormalization uses momentum 0.9 (not Keras's 0.99): the recipes train for a few hundred
    steps, and slower moving statistics would leave evaluation with untrained statistics.
    `preprocess` is an optional layer applied to the inputs (e.g. normalisation).
    """
    inputs, x = _inputs(input_shape, preprocess)
    for stage, filters in enumerate((width, 2 * width, 4 * width)):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{stage + 1}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{stage + 1}")(x)
        x = layers.ReLU(name=f"relu{stage + 1}")(x)
        if stage < 2:
            x = layers.MaxPooling2D(name=f"pool{stage + 1}")(x)
    if head == "flatten":
        x = layers.Flatten(name="flatten")(x)
    elif head == "gap":
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    else:
        raise ValueError(f"`head` must be 'gap' or 'flatten'. Received: head={head!r}")
    outputs = layers.Dense(num_classes, name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def _basic_block(x, filters, stride, name):
    shortcut = x
    y = layers.Conv2D(
        filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1"
    )(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(
            filters, 1, strides=stride, use_bias=False, name=f"{name}_shortcut_conv"
        )(x)
        shortcut = layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def resnet18(input_shape=(32, 32, 3), num_classes=10, width=64, preprocess=None, name="resnet18"):
    """ResNet-18 for CIFAR-sized inputs (3x3 stem, no max-pool), as in the LeRaC and CBS papers.

    The official LeRaC code uses this network unchanged on 64 px Tiny ImageNet (global average
    pooling over the 8x8 final map) and it takes spectrograms with `input_shape=(T, F, 1)`.
    Spatial input dimensions may be None, so the model also takes EfficientTrain's smaller
    crops. `width` is the first stage's channel count (64 in the paper; stages double it), a
    knob for quick tests; `preprocess` is an optional layer applied to the inputs.
    """
    inputs, x = _inputs(input_shape, preprocess)
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, filters in enumerate((width, 2 * width, 4 * width, 8 * width)):
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


def lstm_classifier(
    vocabulary_size,
    sequence_length,
    num_classes=2,
    embedding_dim=128,
    lstm_units=256,
    dense_units=128,
    smoothing=None,
    name="lstm_classifier",
):
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
        return {
            "token_ids": packed[:, 0],
            "segment_ids": packed[:, 1],
            "padding_mask": packed[:, 2],
        }

    def compute_output_spec(self, packed):
        shape = (packed.shape[0], packed.shape[2])
        return {
            key: keras.KerasTensor(shape, dtype=packed.dtype)
            for key in ("token_ids", "segment_ids", "padding_mask")
        }


def packed_bert_classifier(classifier, sequence_length, name="bert_classifier"):
    """A keras-hub text classifier (no preprocessor) taking one `(batch, 3, length)` id array."""
    packed = keras.Input((3, sequence_length), dtype="int32", name="packed_ids")
    return keras.Model(packed, classifier(UnpackBertInputs(name="unpack")(packed)), name=name)


def _wide_block(x, filters, stride, dropout, name):
    # Pre-activation: BN -> ReLU -> conv, twice; the shortcut is a 1x1 conv when the shape
    # changes. `kc.add_smoothing` then puts the Gaussian right after each 3x3 conv (CBS's
    # BN -> ReLU -> conv -> Gaussian) and skips the 1x1 shortcut.
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn1")(x)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv1")(y)
    if dropout:
        y = layers.Dropout(dropout, name=f"{name}_dropout")(y)
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn2")(y)
    y = layers.ReLU(name=f"{name}_relu2")(y)
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", name=f"{name}_conv2")(y)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_shortcut_conv")(x)
    return layers.Add(name=f"{name}_add")([y, shortcut])


def wide_resnet(
    input_shape=(32, 32, 3),
    num_classes=10,
    depth=28,
    width=10,
    dropout=0.0,
    preprocess=None,
    name=None,
):
    """Pre-activation Wide-ResNet WRN-depth-width (Zagoruyko & Komodakis, 2016).

    As in the CBS and LeRaC code (`wide_resnet.py`, after meliketoy/wide-resnet.pytorch): a 3x3
    stem with 16 channels, three groups of (depth - 4) / 6 blocks with 16k, 32k, 64k channels
    (the second and third groups halve the resolution in each group's first block, on its second
    conv), convolutions with biases, then BN -> ReLU -> global average pooling -> linear.
    WRN-28-10 is the standard CIFAR model; the papers' code runs WRN-52-2 with dropout 0.3.

    Args:
        input_shape: `(H, W, C)`; H and W may be None.
        num_classes: int, outputs (logits).
        depth: int with (depth - 4) % 6 == 0, e.g. 16, 28, 40, 52.
        width: int >= 1, the widening factor k.
        dropout: float in [0, 1), between the two convolutions of each block.
        preprocess: None or a layer applied to the inputs (e.g. normalisation).
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ValueError(
            f"`depth` must be an int >= 10 with (depth - 4) % 6 == 0 (16, 28, 40, "
            f"52...). Received: depth={depth!r}"
        )
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"`width` must be an int >= 1. Received: width={width!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    blocks = (depth - 4) // 6
    inputs, x = _inputs(input_shape, preprocess)
    x = layers.Conv2D(16, 3, padding="same", name="stem_conv")(x)
    for group, filters in enumerate((16 * width, 32 * width, 64 * width)):
        for block in range(blocks):
            stride = 2 if group > 0 and block == 0 else 1
            x = _wide_block(x, filters, stride, dropout, name=f"group{group + 1}_block{block + 1}")
    x = layers.BatchNormalization(momentum=0.9, name="final_bn")(x)
    x = layers.ReLU(name="final_relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(num_classes, name="head")(x)
    return keras.Model(inputs, outputs, name=name or f"wrn_{depth}_{width}")


def resnet50(input_shape=(None, None, 3), num_classes=1000, preprocess=None, name="resnet50"):
    """`keras.applications.ResNet50(weights=None)` with a linear head and variable input size.

    Keras's ResNet50 is v1 (stride in the first 1x1 conv of a bottleneck); torchvision's, used by
    the EfficientTrain code, is v1.5 (stride in the 3x3). Same parameter count (25.6M at 1000
    classes).
    """
    inputs, x = _inputs(input_shape, preprocess)
    backbone = keras.applications.ResNet50(
        include_top=False, weights=None, input_tensor=x, pooling="avg"
    )
    outputs = layers.Dense(num_classes, name="head")(backbone.output)
    return keras.Model(inputs, outputs, name=name)
