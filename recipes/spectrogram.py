"""Waveform -> log-Mel spectrogram image, in `tf.signal` so that it runs inside `tf.data` on
every Keras backend.

The steps follow the audio preprocessing the LeRaC paper takes from SepTr (Ristea et al., 2022):
fix the clip length by zero-padding or clipping, STFT with a Hamming window, the square root of
the magnitude, a Mel filter bank, a logarithm, and a min-max normalisation to [0, 1].
"""

import tensorflow as tf

LOG_FLOOR = 1e-6  # added before the logarithm: silent frames (zero padding) stay finite


def fix_length(waveform, length):
    """Zero-pads the end of a 1-D waveform, or clips it, to exactly `length` samples."""
    waveform = waveform[:length]
    padded = tf.pad(waveform, [[0, length - tf.shape(waveform)[0]]])
    return tf.ensure_shape(padded, [length])


def mel_spectrogram(
    waveform,
    sample_rate,
    frame_length,
    frame_step,
    fft_length,
    num_mel_bins,
    magnitude_power=0.5,
    lower_hz=0.0,
    upper_hz=None,
):
    """Mel-scaled STFT magnitudes of a 1-D float waveform: `(frames, num_mel_bins)`.

    frames = 1 + (len(waveform) - frame_length) // frame_step (no padding at the ends). The
    window is the periodic Hamming window of `frame_length` samples, zero-padded to
    `fft_length`; |STFT| ** magnitude_power is projected on `num_mel_bins` triangular filters
    (HTK Mel scale, `tf.signal.linear_to_mel_weight_matrix`) from `lower_hz` to `upper_hz`
    (default: sample_rate / 2).
    """
    stft = tf.signal.stft(
        waveform,
        frame_length,
        frame_step,
        fft_length,
        window_fn=tf.signal.hamming_window,
        pad_end=False,
    )
    magnitude = tf.abs(stft) ** magnitude_power
    weights = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins,
        fft_length // 2 + 1,
        sample_rate,
        lower_hz,
        sample_rate / 2 if upper_hz is None else upper_hz,
    )
    return tf.matmul(magnitude, weights)


def pcm_to_float(waveform):
    """Integer PCM samples (TFDS audio: int16 values in int64) or floats, scaled by 1 / 32768."""
    return tf.cast(waveform, tf.float32) / 32768.0


def log_mel_image(
    waveform,
    sample_rate,
    length,
    frame_length,
    frame_step,
    fft_length,
    num_mel_bins,
    magnitude_power=0.5,
):
    """The model input for one float waveform: `(frames, num_mel_bins, 1)` float32 in [0, 1].

    The waveform is fixed to `length` samples, turned into a Mel spectrogram, then
    log(x + 1e-6) and min-max normalised per clip (a constant clip maps to 0).
    """
    mel = mel_spectrogram(
        fix_length(waveform, length),
        sample_rate,
        frame_length,
        frame_step,
        fft_length,
        num_mel_bins,
        magnitude_power,
    )
    log_mel = tf.math.log(mel + LOG_FLOOR)
    low, high = tf.reduce_min(log_mel), tf.reduce_max(log_mel)
    scaled = tf.math.divide_no_nan(log_mel - low, high - low)
    return scaled[..., tf.newaxis]


def spectrogram_image(waveform, sample_rate, length, *args, **kwargs):
    """`log_mel_image` of integer PCM samples (`pcm_to_float` first)."""
    return log_mel_image(pcm_to_float(waveform), sample_rate, length, *args, **kwargs)


def num_frames(length, frame_length, frame_step):
    """Frames of an un-padded STFT of `length` samples."""
    return 1 + (length - frame_length) // frame_step
