"""Audio augmentation in `tf.data` (so every Keras backend trains on the same inputs): additive
noise, time shift and speed perturbation on the waveform, SpecAugment's time and frequency
masks on the spectrogram image. Mix-up is the regime's (recipes/mixup.py, on batches).

Each augmentation is a pure function of its input and its drawn value (`add_noise`,
`time_shift`, `change_speed`, `mask_band`), tested against numpy; `augment_waveform` and
`spec_augment` draw those values from a stateless seed (int tensor of shape [2]), so a seeded
pipeline repeats run to run.

The values (`AudioRecipe`'s `augment.*` rows) are not given by a source this project could
read: the LeRaC paper lists the five augmentations (as quoted by issue 13) without values here.
"""

import tensorflow as tf


def add_noise(waveform, noise, level):
    """`waveform + level * rms(waveform) * noise`: noise `level` times the clip's RMS."""
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    rms = tf.sqrt(tf.reduce_mean(tf.square(waveform)))
    return waveform + tf.cast(level, tf.float32) * rms * tf.cast(noise, tf.float32)


def time_shift(waveform, shift):
    """Moves a 1-D waveform `shift` samples later (earlier when negative), zero-filled, same
    length: a delayed or advanced recording, not a rotation (no wrap-around of the clip's end)."""
    waveform = tf.convert_to_tensor(waveform)
    length = tf.shape(waveform)[0]
    shift = tf.clip_by_value(tf.cast(shift, tf.int32), -length, length)
    before, after = tf.maximum(shift, 0), tf.maximum(-shift, 0)
    padded = tf.pad(waveform, [[before, after]])
    return padded[after : after + length]


def change_speed(waveform, factor):
    """The waveform played `factor` times faster: y[n] = x(n * factor), linear interpolation
    between samples, for n * factor within the clip (so the length becomes about L / factor).

    Pitch moves with the speed, as in speed perturbation (Ko et al., 2015), which resamples.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    length = tf.shape(waveform)[0]
    factor = tf.cast(factor, tf.float32)
    last = tf.cast(length - 1, tf.float32)
    count = tf.cast(tf.floor(last / factor), tf.int32) + 1
    positions = tf.minimum(tf.range(count, dtype=tf.float32) * factor, last)
    lower = tf.cast(tf.floor(positions), tf.int32)
    upper = tf.minimum(lower + 1, length - 1)
    fraction = positions - tf.cast(lower, tf.float32)
    return tf.gather(waveform, lower) * (1.0 - fraction) + tf.gather(waveform, upper) * fraction


def mask_band(image, axis, start, width):
    """`image` (frames, bins, channels) with rows `start .. start + width - 1` of `axis` (0:
    time, 1: frequency) set to 0, the value of the quietest bin after min-max scaling."""
    image = tf.convert_to_tensor(image)
    index = tf.range(tf.shape(image)[axis])
    inside = (index >= start) & (index < start + width)
    inside = inside[:, None, None] if axis == 0 else inside[None, :, None]
    return tf.where(inside, tf.zeros_like(image), image)


def _uniform_int(seed, low, high):
    """One integer in [low, high] (inclusive) from a stateless seed."""
    return tf.random.stateless_uniform([], seed, low, high + 1, dtype=tf.int32)


def augment_waveform(waveform, seed, noise, shift, speed):
    """Speed perturbation, time shift, then noise on a float waveform of length L.

    Args:
        waveform: 1-D float tensor.
        seed: int tensor of shape [2] (stateless).
        noise: float >= 0, the largest noise level (`add_noise`): level ~ U(0, noise).
        shift: float in [0, 1), the largest shift as a fraction of L: s ~ U{-shift L..shift L}.
        speed: (low, high), factor ~ U(low, high); the result is fixed back to L samples
            (clipped, or zero-padded at the end).

    Returns:
        The augmented waveform, still L samples long.
    """
    seeds = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4))
    length = tf.shape(waveform)[0]
    factor = tf.random.stateless_uniform([], seeds[0], speed[0], speed[1])
    faster = change_speed(waveform, factor)[:length]
    waveform = tf.pad(faster, [[0, length - tf.shape(faster)[0]]])
    largest = tf.cast(tf.floor(shift * tf.cast(length, tf.float32)), tf.int32)
    waveform = time_shift(waveform, _uniform_int(seeds[1], -largest, largest))
    level = tf.random.stateless_uniform([], seeds[2], 0.0, float(noise))
    return add_noise(waveform, tf.random.stateless_normal([length], seeds[3]), level)


def spec_augment(image, seed, freq_masks, freq_width, time_masks, time_width):
    """SpecAugment's masking (Park et al., 2019; no time warping) on one spectrogram image.

    Args:
        image: (frames, bins, channels).
        seed: int tensor of shape [2] (stateless).
        freq_masks, time_masks: int >= 0, masks per axis.
        freq_width, time_width: float in [0, 1], the widest mask as a fraction of its axis:
            width ~ U{0..floor(fraction * size)}, start ~ U{0..size - width}.
    """
    count = freq_masks + time_masks
    if count == 0:
        return image
    seeds = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2 * count))
    plan = [(1, freq_width)] * freq_masks + [(0, time_width)] * time_masks
    for i, (axis, fraction) in enumerate(plan):
        size = tf.shape(image)[axis]
        widest = tf.cast(tf.floor(fraction * tf.cast(size, tf.float32)), tf.int32)
        width = _uniform_int(seeds[2 * i], 0, widest)
        start = _uniform_int(seeds[2 * i + 1], 0, size - width)
        image = mask_band(image, axis, start, width)
    return image
