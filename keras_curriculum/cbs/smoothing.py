"""Gaussian smoothing of feature maps for Curriculum by Smoothing (Sinha, Garg, Larochelle 2020).

The kernel math comes first as small functions of sigma (usable on the host and inside a traced
step), then the `GaussianSmoothing` layer that applies it.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_curriculum._validation import check_bool
from keras_curriculum._validation import check_data_format
from keras_curriculum._validation import check_int
from keras_curriculum._validation import check_number
from keras_curriculum._validation import take_renamed

# Below this, 2 * sigma**2 is treated as 0 so that sigma == 0 gives the exact identity kernel
# (0 / tiny = 0 at the centre, -inf elsewhere) instead of 0 / 0. Representable in float32.
_TINY = 1e-30

DEFAULT_BYPASS_TOLERANCE = 1e-3
_RENAMED = {"tolerance": "bypass_tolerance"}


def check_sigma(sigma, name="sigma"):
    """`sigma` as a float; TypeError unless a number, ValueError unless finite and >= 0."""
    return check_number(name, sigma, low=0.0)


def check_kernel_size(kernel_size):
    """`kernel_size` as an int; it must be odd and >= 1 so that 'same' padding is symmetric."""
    kernel_size = check_int("kernel_size", kernel_size, 1)
    if kernel_size % 2 == 0:
        raise ValueError(
            "`kernel_size` must be an odd integer >= 1 (1, 3, 5, ...), so that 'same' padding "
            f"is symmetric. Received: kernel_size={kernel_size!r}"
        )
    return kernel_size


def check_tolerance(tolerance, name="bypass_tolerance"):
    """None (never bypass) or a float in [0, 1)."""
    return check_number(name, tolerance, low=0.0, high=1.0, high_open=True, allow_none=True)


def check_rank(rank):
    return check_int("rank", rank, 1, 2)


def gaussian_weights_1d(sigma, kernel_size):
    """The normalised 1-D Gaussian weights exp(-i^2 / (2 sigma^2)), i = -(k-1)/2 .. (k-1)/2.

    Written with `keras.ops` so the same function builds the kernel inside a compiled step from
    the sigma variable; on the host pass a number and convert the result with
    `keras.ops.convert_to_numpy`. Computed in float32; sigma == 0 gives the unit impulse.

    Args:
        sigma: float >= 0 or a scalar tensor.
        kernel_size: odd int >= 1.

    Returns:
        float32 tensor `(kernel_size,)` summing to 1.
    """
    half = (kernel_size - 1) // 2
    offsets = ops.convert_to_tensor(np.arange(-half, half + 1, dtype="float32"))
    sigma = ops.cast(sigma, "float32")
    two_variance = ops.maximum(2.0 * sigma * sigma, _TINY)
    weights = ops.exp(-ops.square(offsets) / two_variance)
    return weights / ops.sum(weights)


def gaussian_kernel(sigma, kernel_size, rank=2):
    """The CBS kernel: a normalised Gaussian on integer offsets, `(kernel_size,) * rank`.

    The 2-D kernel exp(-(x^2 + y^2) / (2 sigma^2)) / Z is the outer product of two normalised 1-D
    kernels (the Gaussian and its normaliser both factorise), which is how it is built here.
    At sigma=1, k=3 its centre, edge and corner weights are 0.2042, 0.1238 and 0.0751.

    Args:
        sigma: float >= 0 or a scalar tensor.
        kernel_size: odd int >= 1.
        rank: 1 (sequences) or 2 (images).

    Returns:
        float32 tensor of shape `(kernel_size,) * rank`.
    """
    # A tensor sigma is the layer's weight inside a traced step: only host values are checked.
    if not (isinstance(sigma, (keras.Variable, np.ndarray)) or ops.is_tensor(sigma)):
        check_sigma(sigma)
    kernel_size, rank = check_kernel_size(kernel_size), check_rank(rank)
    weights = gaussian_weights_1d(sigma, kernel_size)
    if rank == 1:
        return weights
    return weights[:, None] * weights[None, :]


def off_centre_mass(sigma, kernel_size, rank=2):
    """1 - (centre weight) of the kernel: how far smoothing is from the identity (host, float64).

    For any input, |smooth(x) - x| <= 2 * off_centre_mass * max|x| at every position, so this is
    the relative change smoothing can still make. About 0.0153 at sigma=0.3 and 1e-3 at
    sigma=0.246 (k=3, 2-D).
    """
    return _off_centre_mass(check_sigma(sigma), check_kernel_size(kernel_size), check_rank(rank))


def _off_centre_mass(sigma, kernel_size, rank):
    half = (kernel_size - 1) // 2
    if sigma == 0.0:
        return 0.0
    offsets = np.arange(1, half + 1, dtype="float64")
    # Centre weight of the 1-D kernel is 1 / (1 + 2 * sum_i exp(-i^2 / 2 sigma^2)).
    centre_1d = 1.0 / (1.0 + 2.0 * np.sum(np.exp(-(offsets**2) / (2.0 * sigma**2))))
    return float(1.0 - centre_1d**rank)


def is_identity(
    sigma, kernel_size, rank=2, bypass_tolerance=DEFAULT_BYPASS_TOLERANCE, **deprecated
):
    """Whether the kernel is the identity within `bypass_tolerance` (off-centre mass at most
    `bypass_tolerance`).

    `bypass_tolerance=None` means never (smoothing is always computed, as in the authors' code).
    """
    bypass_tolerance = take_renamed(deprecated, _RENAMED, "is_identity").get(
        "bypass_tolerance", bypass_tolerance
    )
    if bypass_tolerance is None:
        return False
    return _off_centre_mass(float(sigma), kernel_size, rank) <= bypass_tolerance


def bypass_sigma(kernel_size, rank=2, bypass_tolerance=DEFAULT_BYPASS_TOLERANCE, **deprecated):
    """The largest sigma at which `is_identity` holds (bisection; off-centre mass rises with sigma).

    Returns 0.0 for `bypass_tolerance=None` (no bypass) and `inf` for kernel_size=1 (always the
    identity).
    With `bypass_tolerance=0` it is the sigma below which the float64 centre weight rounds to 1.
    """
    bypass_tolerance = take_renamed(deprecated, _RENAMED, "bypass_sigma").get(
        "bypass_tolerance", bypass_tolerance
    )
    kernel_size, rank = check_kernel_size(kernel_size), check_rank(rank)
    bypass_tolerance = check_tolerance(bypass_tolerance)
    if bypass_tolerance is None:
        return 0.0
    if kernel_size == 1:
        return math.inf
    low, high = 0.0, 1.0
    while is_identity(high, kernel_size, rank, bypass_tolerance):
        high *= 2.0
    for _ in range(60):
        middle = 0.5 * (low + high)
        if is_identity(middle, kernel_size, rank, bypass_tolerance):
            low = middle
        else:
            high = middle
    return low


@keras.saving.register_keras_serializable(package="keras_curriculum")
class GaussianSmoothing(keras.layers.Layer):
    """Depthwise Gaussian smoothing of feature maps, the layer of Curriculum by Smoothing.

    Every channel is convolved with the normalised Gaussian kernel of standard deviation `sigma`
    on integer offsets (`gaussian_kernel`), stride 1, zero "same" padding, so the output has the
    input's shape. Inputs `(batch, height, width, channels)` are smoothed in 2-D, inputs
    `(batch, steps, channels)` (tokens, audio frames) along the steps axis; `data_format`
    `"channels_first"` puts channels second instead.

    The current sigma is a non-trainable float32 weight named `sigma`, saved with the model; the
    kernel is rebuilt from it inside every call (k or k*k exponentials), so `kc.SigmaDecay` can
    lower it between epochs. Change it with `set_sigma`, not by assigning the weight: the layer
    decides on the host whether to convolve at all. Once the kernel is the identity within
    `bypass_tolerance` (its off-centre mass, see `off_centre_mass`; 1e-3 is reached at
    sigma <= 0.246 for k=3 in 2-D), the layer returns its input unchanged and costs nothing.
    `SigmaDecay` retraces the compiled functions at the step where that switch happens.

    Smoothing is applied in training and at inference, as in the authors' code;
    `smooth_at_inference=False` smooths only when called with `training=True`.

    Masks (e.g. from `Embedding(mask_zero=True)`) pass through to the next layers unchanged. The
    masked positions enter the convolution as zeros, so at the real positions a padded sequence
    gives the output of the same sequence unpadded (padding contributes nothing, exactly as the
    zero padding past the real end); the masked positions themselves keep their input values,
    which is what the identity does, so the bypass stays a plain pass-through. The same rule
    holds for a mask over the pixels of a 2-D input `(batch, height, width)`.

    Args:
        sigma: float >= 0, the initial standard deviation in pixels (paper: 1, audio 0.8).
            0 is the identity.
        kernel_size: odd int >= 1, the kernel's width (paper: 3).
        smooth_at_inference: bool, smooth also when `training` is false (default, as the
            authors' code).
        bypass_tolerance: float in [0, 1) or None. The layer passes its input through when the
            kernel's off-centre mass is at most this; None convolves at every sigma.
        data_format: `"channels_last"` (default from `keras.config.image_data_format()`) or
            `"channels_first"`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: tensor of rank 3 or 4.
        training: bool, whether the call is a training call (only read when
            `smooth_at_inference=False`).
        mask: optional boolean tensor of the input's shape without the channel axis
            (`(batch, steps)` or `(batch, height, width)`); False marks a padded position.

    Example:

    ```python
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(64, 3, padding="same", use_bias=False)(inputs)
    x = kc.GaussianSmoothing(sigma=1.0, kernel_size=3)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    ```

    References:
        Sinha, Garg, Larochelle. "Curriculum By Smoothing", NeurIPS 2020.
    """

    def __init__(
        self,
        sigma=1.0,
        kernel_size=3,
        smooth_at_inference=True,
        bypass_tolerance=DEFAULT_BYPASS_TOLERANCE,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.supports_masking = True  # the mask passes through (default `compute_mask`)
        self.sigma = check_sigma(sigma)
        self.kernel_size = check_kernel_size(kernel_size)
        self.smooth_at_inference = check_bool("smooth_at_inference", smooth_at_inference)
        self.bypass_tolerance = check_tolerance(bypass_tolerance)
        self.data_format = check_data_format(data_format)
        # float32 whatever the dtype policy, and not autocast: at small sigma the exponent
        # -i^2 / (2 sigma^2) needs float32 range; the finished kernel is cast to the compute dtype.
        self.sigma_variable = self.add_weight(
            name="sigma",
            shape=(),
            initializer=keras.initializers.Constant(self.sigma),
            trainable=False,
            dtype="float32",
            autocast=False,
        )
        self._host_sigma = self.sigma
        self._rank = None
        self._update_pass_through()

    @property
    def current_sigma(self):
        """The sigma the layer applies now (host value, float)."""
        return self._host_sigma

    @property
    def passes_through(self):
        """True when the current kernel is the identity within `bypass_tolerance`."""
        return self._passes_through

    def _update_pass_through(self):
        # Cached because eager backends (torch) read it in every call. Before build the rank is
        # unknown; the 2-D kernel is the further from identity, so answering for it never
        # claims a bypass the built layer would not make.
        self._passes_through = is_identity(
            self._host_sigma, self.kernel_size, self._rank or 2, self.bypass_tolerance
        )

    def set_sigma(self, sigma):
        """Sets the current sigma; returns True if this switched the pass-through on or off.

        A switch changes the computation graph: compiled train/test/predict functions must be
        retraced to see it (`SigmaDecay` does this).
        """
        sigma = check_sigma(sigma)
        before = self.passes_through
        self.sigma_variable.assign(sigma)
        self._host_sigma = sigma
        self._update_pass_through()
        return before != self.passes_through

    def load_own_variables(self, store):
        super().load_own_variables(store)
        # Loading a `.keras` file or a BackupAndRestore checkpoint sets the weight directly: keep
        # the host copy (which decides the bypass) in step with it.
        self._host_sigma = float(ops.convert_to_numpy(self.sigma_variable))
        self._update_pass_through()

    def build(self, input_shape):
        rank = len(input_shape) - 2
        if rank not in (1, 2):
            raise ValueError(
                "GaussianSmoothing smooths `inputs` of rank 3 (batch, steps, channels) or 4 "
                f"(batch, height, width, channels). Received: inputs.shape={tuple(input_shape)}"
            )
        channel_axis = -1 if self.data_format == "channels_last" else 1
        if input_shape[channel_axis] is None:
            raise ValueError(
                "GaussianSmoothing needs the number of channels of `inputs` to be known. "
                f"Received: inputs.shape={tuple(input_shape)}"
            )
        self._rank = rank
        self._channels = int(input_shape[channel_axis])
        self._update_pass_through()

    def _check_built_shape(self, shape):
        # The kernel is built for one rank and channel count: another input would fail deep
        # inside the backend's convolution (or, passed through, hide the mismatch).
        channel_axis = -1 if self.data_format == "channels_last" else 1
        if len(shape) != self._rank + 2 or shape[channel_axis] not in (None, self._channels):
            raise ValueError(
                f"`inputs` must have rank {self._rank + 2} and {self._channels} channels, as when "
                f"this GaussianSmoothing layer was built. Received: inputs.shape={tuple(shape)}"
            )

    def call(self, inputs, training=None, mask=None):
        self._check_built_shape(inputs.shape)
        if mask is not None:
            self._check_mask_shape(inputs.shape, mask.shape)
        if self.passes_through or (not training and not self.smooth_at_inference):
            return inputs
        # Without a mask, the call `smooth` had before masks existed (subclasses may override it).
        return self.smooth(inputs) if mask is None else self.smooth(inputs, mask)

    def _check_mask_shape(self, shape, mask_shape):
        channel_axis = len(shape) - 1 if self.data_format == "channels_last" else 1
        expected = tuple(shape[:channel_axis]) + tuple(shape[channel_axis + 1 :])
        if len(mask_shape) != len(expected) or any(
            None not in (m, e) and m != e for m, e in zip(mask_shape, expected)
        ):
            raise ValueError(
                f"`mask` must have the shape of `inputs` without the channel axis, {expected}. "
                f"Received: mask.shape={tuple(mask_shape)}"
            )

    def smooth(self, inputs, mask=None):
        """Convolves `inputs` with the kernel of the sigma weight (no bypass check).

        With a `mask`, masked positions enter the convolution as zeros and keep their input
        values in the output (see the class docstring).
        """
        kernel = gaussian_kernel(self.sigma_variable, self.kernel_size, self._rank)
        kernel = ops.cast(kernel, inputs.dtype)
        # Depthwise kernel layout: spatial dims, input channels, channel multiplier 1.
        kernel = ops.broadcast_to(
            kernel[..., None, None], (self.kernel_size,) * self._rank + (self._channels, 1)
        )
        if mask is None:
            return self._convolve(inputs, kernel)
        keep = ops.expand_dims(
            ops.cast(mask, "bool"), -1 if self.data_format == "channels_last" else 1
        )
        smoothed = self._convolve(ops.where(keep, inputs, ops.zeros_like(inputs)), kernel)
        return ops.where(keep, smoothed, inputs)

    def _convolve(self, inputs, kernel):
        return ops.depthwise_conv(
            inputs, kernel, strides=1, padding="same", data_format=self.data_format
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sigma": self.sigma,
                "kernel_size": self.kernel_size,
                "smooth_at_inference": self.smooth_at_inference,
                "bypass_tolerance": self.bypass_tolerance,
                "data_format": self.data_format,
            }
        )
        return config
