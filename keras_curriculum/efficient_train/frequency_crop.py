"""Low-frequency cropping (EfficientTrain): the FFT crop op and a layer that runs it anywhere.

One implementation of the math, written against a Keras backend namespace, serves three places:
eager or compiled calls on the configured backend (JAX, TensorFlow, PyTorch), and `tf.data`
pipelines on every backend, where the TensorFlow namespace is used as Keras's own preprocessing
layers do.
"""

import numbers

import keras

from keras_curriculum import _keras_internals as internals
from keras_curriculum._keras_internals import DataLayer
from keras_curriculum._validation import check_data_format
from keras_curriculum._validation import check_int


def normalize_size(size, name="size"):
    """`size` as a `(height, width)` pair of ints >= 1; errors name `name`."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (size, size)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise TypeError(
            f"`{name}` must be an integer >= 1 or a (height, width) pair of them. "
            f"Received: {name}={size!r}"
        )
    return tuple(check_int(name, s, 1) for s in size)


def _check_rank(shape, data_format):
    if len(shape) not in (3, 4):
        layout = "(H, W, C)" if data_format == "channels_last" else "(C, H, W)"
        raise ValueError(
            f"`images` must have rank 3 {layout} or 4 (batch first). "
            f"Received: images.shape={tuple(shape)}"
        )


def _keep_low_frequencies(t, keep, axis, backend):
    # Unshifted FFT order is 0, 1, ..., -2, -1: the band -floor(B/2) .. ceil(B/2)-1 is the first
    # ceil(B/2) entries and the last floor(B/2) ones, already in the order a length-B FFT uses.
    positive, negative = (keep + 1) // 2, keep // 2
    head = t[..., :positive, :] if axis == -2 else t[..., :positive]
    if negative == 0:
        return head
    tail = t[..., -negative:, :] if axis == -2 else t[..., -negative:]
    return backend.numpy.concatenate([head, tail], axis=axis)


def _crop(images, size, backend, data_format=None):
    """The FFT crop with the ops of `backend` (a Keras `DynamicBackend`)."""
    data_format = check_data_format(data_format)
    out_h, out_w = normalize_size(size)
    x = backend.convert_to_tensor(images)
    _check_rank(x.shape, data_format)
    h_axis = -3 if data_format == "channels_last" else -2
    height, width = x.shape[h_axis], x.shape[h_axis + 1]
    for name, keep, full in (("height", out_h, height), ("width", out_w, width)):
        if full is not None and keep > full:
            raise ValueError(
                f"`size` must not exceed the image {name} ({full}): low-frequency cropping "
                f"keeps a band of the spectrum. Received: size={size!r}"
            )

    dtype = keras.backend.standardize_dtype(x.dtype)
    out_dtype = dtype if keras.backend.is_float_dtype(dtype) else "float32"
    compute_dtype = "float64" if dtype == "float64" else "float32"
    if (out_h, out_w) == (height, width):
        return backend.cast(x, out_dtype)

    x = backend.cast(x, compute_dtype)
    if data_format == "channels_last":
        x = backend.numpy.moveaxis(x, -1, -3)  # FFT over the last two axes
    shape = backend.shape(x)
    real, imag = backend.math.fft2((x, backend.numpy.zeros_like(x)))
    for axis, keep in ((-2, out_h), (-1, out_w)):
        real = _keep_low_frequencies(real, keep, axis, backend)
        imag = _keep_low_frequencies(imag, keep, axis, backend)
    real, _ = backend.math.ifft2((real, imag))
    # ifft2 divides by B_h * B_w, fft2 did not divide by H * W: the DC term, and so the mean, is
    # preserved by the factor (B_h / H) * (B_w / W).
    pixels = shape[-2] * shape[-1]
    if isinstance(pixels, numbers.Integral):
        scale = (out_h * out_w) / pixels
    else:
        scale = float(out_h * out_w) / backend.cast(pixels, compute_dtype)
    y = real * scale
    if data_format == "channels_last":
        y = backend.numpy.moveaxis(y, -3, -1)
    return backend.cast(y, out_dtype)


def _backend_for(images):
    backend = internals.DynamicBackend()
    # Inside a tf.data function on a JAX or PyTorch backend the tensors are TF graph tensors.
    if (
        not isinstance(images, keras.KerasTensor)
        and internals.in_tf_graph()
        and not internals.is_in_jax_tracing_scope(images)
    ):
        backend.set_backend("tensorflow")
    return backend


def low_frequency_crop(images, size, data_format=None):
    """Keeps the `size` lowest spatial frequencies of images: a smaller image, mean preserved.

    With F = FFT2(x) over the spatial axes of an `H x W` image, the output is

        y = real(IFFT2(F restricted to frequencies -floor(B_h/2) .. ceil(B_h/2) - 1 on the
            height axis and likewise on the width axis)) * (B_h / H) * (B_w / W)

    which is the centre `B_h x B_w` crop of the `fftshift`-ed spectrum (for even sizes, the
    frequencies -B/2 .. B/2 - 1; for odd sizes the symmetric band -(B-1)/2 .. (B-1)/2) turned back
    into a `B_h x B_w` image. The output is a true down-sampled image: a model fed it computes on
    `B_h * B_w` pixels. The scale makes the mean of every channel equal to the input's, and at
    full size the op is the identity.

    Works on the configured backend (eager or inside a compiled step) and inside `tf.data`
    pipelines on every backend. Floating inputs keep their dtype (the FFT runs in float32, or
    float64 for float64 inputs); integer inputs give float32.

    Args:
        images: tensor `(H, W, C)` or `(batch, H, W, C)` (`(..., C, H, W)` with
            `data_format="channels_first"`).
        size: int or `(height, width)`, each in `[1, H]` (`[1, W]`).
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.

    Returns:
        Real tensor of the same rank with spatial size `size`.

    Example:

    ```python
    x = np.random.uniform(0, 255, (8, 224, 224, 3)).astype("float32")
    y = kc.low_frequency_crop(x, 160)          # (8, 160, 160, 3), same channel means
    ds = ds.map(lambda x, y: (kc.low_frequency_crop(x, 160), y))
    ```

    References:
        Wang, Ni, Song, Yang, Huang, Wu, Huang. "EfficientTrain: Exploring Generalized Curriculum
        Learning for Training Visual Backbones", ICCV 2023.
    """
    return _crop(images, size, _backend_for(images), data_format)


@keras.saving.register_keras_serializable(package="keras_curriculum")
class LowFrequencyCrop(DataLayer):
    """Layer form of `kc.low_frequency_crop`: on the accelerator inside a model, or in `tf.data`.

    Places the EfficientTrain down-sampling where the official code runs it, on the batch on the
    device (`model = keras.Sequential([kc.LowFrequencyCrop(160), backbone])`), or in a `tf.data`
    pipeline on any backend (`ds.map(kc.LowFrequencyCrop(160))`). It has no weights.

    Args:
        size: int or `(height, width)`, the output spatial size, at most the input's.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.
        **kwargs: base layer arguments (`name`, `dtype`).

    Call arguments:
        inputs: images `(batch, H, W, C)` or `(H, W, C)`.

    Example:

    ```python
    inputs = keras.Input((224, 224, 3))
    x = kc.LowFrequencyCrop(160)(inputs)        # (None, 160, 160, 3)
    outputs = backbone(x)
    ```

    References:
        Wang et al. "EfficientTrain: Exploring Generalized Curriculum Learning for Training
        Visual Backbones", ICCV 2023.
    """

    def __init__(self, size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.size = normalize_size(size)
        self.data_format = check_data_format(data_format)

    def call(self, inputs):
        return _crop(inputs, self.size, self.backend, self.data_format)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        _check_rank(shape, self.data_format)
        h_axis = len(shape) - 3 if self.data_format == "channels_last" else len(shape) - 2
        for offset, keep in enumerate(self.size):
            full = shape[h_axis + offset]
            if full is not None and keep > full:
                raise ValueError(
                    f"`size` must not exceed the input's spatial size {tuple(shape)}. "
                    f"Received: size={self.size}"
                )
            shape[h_axis + offset] = keep
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update({"size": self.size, "data_format": self.data_format})
        return config
