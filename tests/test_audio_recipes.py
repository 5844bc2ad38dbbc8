"""Audio recipes (spoken_digit, crema_d): the spectrogram front end against numpy, the FSDD
split, errors, and both recipes end to end under a mocked TFDS (random audio)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from keras_curriculum_recipes import audio
from keras_curriculum_recipes import compare
from keras_curriculum_recipes import data
from keras_curriculum_recipes import spectrogram

# The recipes' own tests: scripts/test_floor.sh leaves them out (-m "not recipes").
pytestmark = pytest.mark.recipes

# The front end against a numpy implementation of its definition ---------------------------------


def _hz_to_mel(hz):
    return 1127.0 * np.log1p(hz / 700.0)  # HTK Mel scale


def _mel_filterbank(num_mel, num_bins, sample_rate, low_hz, high_hz):
    """Triangular filters equally spaced in Mel between low_hz and high_hz, evaluated at the
    FFT bin frequencies (the DC bin gets no weight)."""
    bin_mel = _hz_to_mel(np.linspace(0.0, sample_rate / 2, num_bins))[1:]
    edges = np.linspace(_hz_to_mel(low_hz), _hz_to_mel(high_hz), num_mel + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - lower) / (centre - lower)
    falling = (upper - bin_mel[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.concatenate([np.zeros((1, num_mel)), weights])


def _numpy_spectrogram_image(pcm, sample_rate, length, frame, hop, fft, num_mel):
    x = np.zeros(length)
    clip = pcm[:length] / 32768.0
    x[: len(clip)] = clip
    window = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(frame) / frame)  # periodic Hamming
    starts = range(0, length - frame + 1, hop)
    frames = np.stack([x[s : s + frame] * window for s in starts])
    magnitude = np.abs(np.fft.rfft(frames, n=fft)) ** 0.5
    mel = magnitude @ _mel_filterbank(num_mel, fft // 2 + 1, sample_rate, 0.0, sample_rate / 2)
    log_mel = np.log(mel + 1e-6)
    return (log_mel - log_mel.min()) / (log_mel.max() - log_mel.min())


@pytest.mark.parametrize("samples", [900, 3000])  # padded / clipped to 2,000 samples
def test_spectrogram_image_matches_numpy_stft_and_mel_filterbank(samples):
    pcm = np.random.default_rng(samples).integers(-20000, 20000, samples)
    args = dict(
        sample_rate=8000,
        length=2000,
        frame_length=256,
        frame_step=32,
        fft_length=256,
        num_mel_bins=32,
    )
    image = spectrogram.spectrogram_image(tf.constant(pcm), **args).numpy()
    frames = spectrogram.num_frames(2000, 256, 32)
    assert image.shape == (frames, 32, 1) and frames == 1 + (2000 - 256) // 32
    expected = _numpy_spectrogram_image(pcm, 8000, 2000, 256, 32, 256, 32)
    np.testing.assert_allclose(image[..., 0], expected, atol=2e-4)


def test_fix_length_pads_with_zeros_and_clips():
    clip = tf.constant([1, 2, 3])
    np.testing.assert_array_equal(spectrogram.fix_length(clip, 5), [1, 2, 3, 0, 0])
    np.testing.assert_array_equal(spectrogram.fix_length(clip, 2), [1, 2])


def test_fsdd_split_rule_keeps_recordings_0_to_4_for_testing():
    names = [
        "3_jackson_0.wav",
        "3_jackson_4.wav",
        "3_jackson_5.wav",
        "9_theo_49.wav",
        "dir/0_nicolas_2.wav",
        "0_nicolas_14.wav",
    ]
    got = [bool(audio._is_fsdd_test_file(tf.constant(n))) for n in names]
    assert got == [True, True, False, False, True, False]


# Errors -----------------------------------------------------------------------------------------


def test_missing_audio_data_names_the_build_command(tmp_path):
    with pytest.raises(data.DatasetUnavailable, match="tfds build crema_d"):
        audio.CremaD(data_dir=str(tmp_path), download=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model": "sept"}, "`model` must be one of"),
        ({"duration": 0.01}, "`duration` must cover one STFT window"),
        ({"batch_size": 0}, "`batch_size` must be an int"),
    ],
)
def test_bad_audio_arguments_are_refused_before_loading(kwargs, message):
    with pytest.raises(ValueError, match=message):
        audio.SpokenDigit(**kwargs)


def test_audio_resnet18_takes_one_channel_spectrograms():
    recipe = object.__new__(audio.CremaD)  # the model only: no data needed
    recipe.model, recipe.width, recipe.frames = "resnet18", None, 993
    model = recipe.build_model()
    assert model.input_shape == (None, 993, 128, 1) and model.output_shape == (None, 6)


# End to end under a mocked TFDS -----------------------------------------------------------------


def _mock_clips(num_examples, classes):
    """A mocked `as_dataset`: random int16-range clips of random length, FSDD-style names."""

    def as_dataset(self, *args, **kwargs):
        rng = np.random.default_rng(0)
        features = self.info.features

        def examples():
            for i in range(num_examples):
                example = {
                    "audio": rng.integers(-3000, 3000, rng.integers(300, 3000)),
                    "label": i % classes,
                }
                if "audio/filename" in features:
                    example["audio/filename"] = f"{i % 10}_george_{i % 7}.wav"
                if "speaker_id" in features:
                    example["speaker_id"] = str(1001 + i % 3)
                yield example

        return tf.data.Dataset.from_generator(examples, output_signature=features.get_tensor_spec())

    return tfds.testing.mock_data(as_dataset_fn=as_dataset)


def _history(out):
    return {r["method"]: r["history"] for r in json.load(open(os.path.join(out, "results.json")))}


def test_spoken_digit_splits_by_file_name_and_runs_cbs(tmp_path):
    with _mock_clips(28, 10):
        recipe = audio.SpokenDigit(batch_size=4, duration=0.1, model="small_cnn", width=4)
    # Names i % 7 in 0..4 are test recordings: 20 of 28.
    assert recipe.num_train == 8 and recipe.x_test.shape == (20, 18, 64, 1)
    assert recipe.x_test.min() >= 0.0 and recipe.x_test.max() == pytest.approx(1.0)
    rows = compare.compare(
        recipe, ["conventional", "cbs"], range(1), 1, str(tmp_path), verbose=0, allow_inactive=True
    )
    assert rows[1]["mcnemar_vs"] == "conventional"
    assert _history(str(tmp_path))["cbs"]["cbs_sigma"] == [0.8]


def test_crema_d_runs_lerac(tmp_path):
    with _mock_clips(12, 6):
        recipe = audio.CremaD(train_size=8, batch_size=4, duration=0.1, model="small_cnn", width=4)
    assert recipe.num_train == 8 and recipe.x_test.shape == (12, 18, 128, 1)
    compare.compare(
        recipe,
        ["conventional", "lerac"],
        range(1),
        1,
        str(tmp_path),
        verbose=0,
        allow_inactive=True,
    )
    # The audio protocol takes the CIFAR-10 ResNet-18 minimum of the official code: 1e-6.
    assert _history(str(tmp_path))["lerac"]["lerac_lr_last"][0] == pytest.approx(1e-6, rel=1e-3)
