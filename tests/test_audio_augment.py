"""Audio augmentation (recipes/audio_augment.py): each step against numpy or a property it must
keep (issue 13 item 5): a time shift is a zero-filled np.pad, speed perturbation is np.interp at
n * factor (1.0 the identity), noise at level 0 the identity, a mask zeroes exactly its band."""

import numpy as np
import pytest
import tensorflow as tf
from keras_curriculum_recipes import audio_augment

pytestmark = pytest.mark.recipes

RNG = np.random.default_rng(13)
WAVE = RNG.uniform(-1, 1, 40).astype(np.float32)


def _shifted(x, s):
    """numpy: x delayed by s samples (advanced when s < 0), zeros where nothing was recorded."""
    if s >= 0:
        return np.pad(x, (s, 0))[: len(x)]
    return np.pad(x, (0, -s))[-s:]


@pytest.mark.parametrize("shift", [-45, -7, -1, 0, 3, 39, 40, 50])
def test_time_shift_is_a_zero_filled_pad(shift):
    got = audio_augment.time_shift(tf.constant(WAVE), shift).numpy()
    np.testing.assert_array_equal(got, _shifted(WAVE, shift))


@pytest.mark.parametrize("factor", [0.5, 0.9, 1.1, 1.7, 2.0])
def test_change_speed_resamples_at_n_times_factor(factor):
    count = int(np.floor((len(WAVE) - 1) / factor)) + 1
    # Positions in float32 as in the pipeline: n * 0.9 in float64 lies up to 1e-6 away.
    positions = np.arange(count, dtype=np.float32) * np.float32(factor)
    expected = np.interp(positions, np.arange(len(WAVE)), WAVE)
    got = audio_augment.change_speed(tf.constant(WAVE), factor).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_speed_one_is_the_identity_and_two_keeps_every_other_sample():
    np.testing.assert_array_equal(audio_augment.change_speed(WAVE, 1.0).numpy(), WAVE)
    np.testing.assert_array_equal(audio_augment.change_speed(WAVE, 2.0).numpy(), WAVE[::2])


def test_noise_is_level_times_the_clip_rms_and_level_zero_is_the_identity():
    noise = RNG.normal(size=WAVE.shape).astype(np.float32)
    np.testing.assert_array_equal(audio_augment.add_noise(WAVE, noise, 0.0).numpy(), WAVE)
    rms = np.sqrt(np.mean(WAVE.astype(np.float64) ** 2))
    got = audio_augment.add_noise(WAVE, noise, 0.25).numpy()
    np.testing.assert_allclose(got, WAVE + 0.25 * rms * noise, atol=1e-6)


@pytest.mark.parametrize("axis, start, width", [(0, 3, 4), (1, 0, 2), (1, 5, 1), (0, 2, 0)])
def test_mask_band_zeroes_exactly_the_band(axis, start, width):
    image = RNG.uniform(0.1, 1.0, (9, 6, 1)).astype(np.float32)
    expected = image.copy()
    band = [slice(None)] * 3
    band[axis] = slice(start, start + width)
    expected[tuple(band)] = 0.0
    got = audio_augment.mask_band(tf.constant(image), axis, start, width).numpy()
    np.testing.assert_array_equal(got, expected)


def test_augment_waveform_with_neutral_values_is_the_identity():
    got = audio_augment.augment_waveform(WAVE, tf.constant([1, 2]), 0.0, 0.0, (1.0, 1.0))
    np.testing.assert_array_equal(got.numpy(), WAVE)


@pytest.mark.parametrize("seed", range(6))
def test_augment_waveform_shifts_by_a_drawn_whole_number_within_the_range(seed):
    got = audio_augment.augment_waveform(WAVE, tf.constant([seed, 7]), 0.0, 0.2, (1.0, 1.0))
    largest = int(np.floor(0.2 * len(WAVE)))  # 8 samples
    matches = [s for s in range(-largest, largest + 1) if np.array_equal(got, _shifted(WAVE, s))]
    assert len(matches) == 1


def test_augment_waveform_keeps_the_length_after_a_speed_change():
    got = audio_augment.augment_waveform(WAVE, tf.constant([3, 4]), 0.0, 0.0, (2.0, 2.0))
    expected = np.zeros_like(WAVE)
    expected[:20] = WAVE[::2]  # twice as fast: half the clip, then silence
    np.testing.assert_array_equal(got.numpy(), expected)


@pytest.mark.parametrize("seed", range(5))
def test_spec_augment_zeroes_only_whole_bands_no_wider_than_drawn(seed):
    image = np.ones((50, 40, 1), np.float32)
    got = audio_augment.spec_augment(image, tf.constant([seed, 1]), 2, 0.15, 2, 0.1).numpy()
    zero = got[..., 0] == 0
    frames, bins = zero.all(axis=1), zero.all(axis=0)
    # Every zero lies in a fully masked frame or bin; at most 2 masks of 5 frames, of 6 bins.
    np.testing.assert_array_equal(zero, frames[:, None] | bins[None, :])
    assert frames.sum() <= 2 * 5 and bins.sum() <= 2 * 6
    again = audio_augment.spec_augment(image, tf.constant([seed, 1]), 2, 0.15, 2, 0.1).numpy()
    np.testing.assert_array_equal(got, again)  # a stateless seed repeats


def test_spec_augment_without_masks_is_the_identity():
    image = RNG.uniform(size=(7, 5, 1)).astype(np.float32)
    got = audio_augment.spec_augment(image, tf.constant([0, 0]), 0, 0.5, 0, 0.5)
    np.testing.assert_array_equal(np.asarray(got), image)
