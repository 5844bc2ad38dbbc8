"""Audio recipes (spoken_digit, crema_d): the spectrogram front end against numpy, the FSDD
split, errors, the paper's audio protocol (issue 13 item 5: N = 1024, DenseNet-121 with Adam
1e-4, augmentation, one regime for every curriculum arm and its conventional arm), and both
recipes end to end under a mocked TFDS (random audio). The augmentation steps themselves:
tests/test_audio_augment.py."""

import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from keras_curriculum_recipes import audio
from keras_curriculum_recipes import compare
from keras_curriculum_recipes import data
from keras_curriculum_recipes import methods as methods_lib
from keras_curriculum_recipes import spectrogram
from keras_curriculum_recipes.protocol import cites_paper
from keras_curriculum_recipes.protocol import format_value

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
        ({"augment": "yes"}, "`augment` must be None or a bool"),
    ],
)
def test_bad_audio_arguments_are_refused_before_loading(kwargs, message):
    with pytest.raises(ValueError, match=message):
        audio.SpokenDigit(**kwargs)


def _bare_recipe(cls=audio.CremaD, model="densenet121", augment=True):
    """A recipe object with its protocol but no data (models, optimizers, regimes only)."""
    recipe = object.__new__(cls)
    recipe.model, recipe.width, recipe.augment = model, None, augment
    recipe.protocol_table = cls.protocol("paper", model=model)
    recipe.frames = spectrogram.num_frames(
        int(cls.default_duration * cls.sample_rate), cls.frame_length, cls.frame_step
    )
    return recipe


def test_audio_resnet18_takes_one_channel_spectrograms():
    recipe = _bare_recipe(model="resnet18")
    model = recipe.build_model()
    assert model.input_shape == (None, 985, 128, 1) and model.output_shape == (None, 6)


def test_crema_d_default_model_is_densenet121_returning_logits():
    recipe = _bare_recipe()
    model = recipe.build_model()
    assert model.name == "densenet121"
    assert model.input_shape == (None, 985, 128, 1) and model.output_shape == (None, 6)
    assert model.layers[-1].activation is keras.activations.linear  # logits, as the loss wants
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) == 120


def test_crema_d_protocol_is_the_quoted_paper_protocol_with_honest_sources():
    table = audio.CremaD.protocol("paper")
    # 4 s at 16 kHz, N = L = 1024, hop 64: 1 + (64000 - 1024) // 64 frames.
    assert (table["stft_size"], table["stft_window"], table["stft_hop"]) == (1024, 1024, 64)
    assert table["optimizer"] == "Adam" and table["learning_rate"] == 1e-4
    assert table["model"].startswith("DenseNet-121")
    assert 1 <= table["cbs.every"] <= 3 and table["cbs.sigma"] == 0.8  # Table 1, audio
    assert table["augmentation"] and table["mixup_alpha"] > 0
    # The paper's text is not stored: nothing issue 13 quotes without a location, and nothing
    # chosen here, may read as a paper location.
    for name in ["model", "optimizer", "learning_rate", "stft_size", "augmentation"] + [
        n for n in table if n.startswith("augment.")
    ]:
        assert table.source(name).startswith("not given; chosen:"), name
        assert not cites_paper(table.source(name)), name
    # No audio code: `official` changes only what the authors' image code defines.
    official = audio.CremaD.protocol("official")
    changed = [n for n in table if table[n] != official[n]]
    assert changed and all(n == "lerac.update" or n.startswith("docl") for n in changed)
    assert audio.SpokenDigit.protocol("paper")["stft_size"] == 256  # not in the paper


DOCS = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "recipes_images_audio.md")


def _doc_rows():
    """Cells of the markdown table rows of docs/recipes_images_audio.md, by first cell."""
    with open(DOCS, encoding="utf-8") as handle:
        lines = [line for line in handle if line.startswith("| ")]
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    return {row[0]: row[1:] for row in cells}


def test_audio_docs_state_the_protocol_rows():
    rows = _doc_rows()
    for column, cls in enumerate([audio.CremaD, audio.SpokenDigit]):
        assert cls.frame_length == cls.fft_length
        window = rows["window L = FFT N, hop R"][column]
        assert window == f"{cls.fft_length}, {cls.frame_step}"
        assert rows["Mel bins"][column].split()[0] == str(cls.num_mel_bins)
        length = int(cls.default_duration * cls.sample_rate)
        frames = spectrogram.num_frames(length, cls.frame_length, cls.frame_step)
        assert rows["input"][column] == f"{frames} x {cls.num_mel_bins}"
    table = audio.CremaD.protocol("paper")
    documented = [row for row in rows.values() if row and row[0].startswith("`")]
    names = []
    for row in documented:
        row_names = re.findall(r"`([^`]+)`", row[0])
        assert row[1] == ", ".join(format_value(table[name]) for name in row_names), row_names
        names += row_names
    assert sorted(names) == sorted(
        n for n in table if n.startswith("augment.") or n == "mixup_alpha"
    )


def test_every_curriculum_arm_trains_with_the_augmentation_and_optimizer_of_its_baseline():
    recipe = _bare_recipe(model="small_cnn")
    methods = ["conventional", "lerac", "cbs", "lerac+cbs", "docl"]
    assert methods_lib.arm_names(recipe, methods) == [
        "conventional",
        "conventional_docl",
        "lerac",
        "cbs",
        "lerac+cbs",
        "docl",
    ]
    for method in ["lerac", "cbs", "lerac+cbs"]:
        assert methods_lib.reference(recipe, method, methods) == "conventional"
        assert recipe.regime_of(method) == recipe.regime_of("conventional") == "default"
    assert methods_lib.reference(recipe, "docl", methods) == "conventional_docl"
    default = recipe.regime("default", 4)
    optimizer = default.optimizer([2] * 4, [])
    assert isinstance(optimizer, keras.optimizers.Adam)
    assert float(optimizer.learning_rate) == pytest.approx(1e-4)
    assert default.mixup_alpha == 0.2
    docl = recipe.regime("docl", 4)
    assert isinstance(docl.optimizer([2] * 4, []), keras.optimizers.SGD)
    assert docl.mixup_alpha == 0.4
    assert _bare_recipe(model="small_cnn", augment=False).regime("default", 4).mixup_alpha is None


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
    # 0.1 s = 1,600 samples, N = 1024, hop 64: 10 frames.
    assert recipe.num_train == 8 and recipe.x_test.shape == (12, 10, 128, 1)
    _check_training_inputs_are_augmented_and_seeded(recipe)
    compare.compare(
        recipe,
        ["conventional", "lerac"],
        range(1),
        1,
        str(tmp_path),
        verbose=0,
        allow_inactive=True,
    )
    # The head starts 5 decades below Adam's 1e-4 (lerac.min_learning_rate).
    assert _history(str(tmp_path))["lerac"]["lerac_lr_last"][0] == pytest.approx(1e-9, rel=1e-3)


def _check_training_inputs_are_augmented_and_seeded(recipe):
    clip, label = next(iter(recipe._train))
    plain, _ = recipe._features(clip, label)
    seed = tf.constant([5, 6], tf.int64)
    augmented, same_label = recipe._augmented((clip, label), seed)
    assert same_label == label and augmented.shape == plain.shape
    assert not np.allclose(augmented, plain)
    assert np.array_equal(augmented, recipe._augmented((clip, label), seed)[0])
    first = [x.numpy() for x, _ in recipe.train_dataset(3).take(2)]
    again = [x.numpy() for x, _ in recipe.train_dataset(3).take(2)]
    np.testing.assert_array_equal(first, again)  # a seeded run repeats
    recipe.augment = False
    np.testing.assert_array_equal(recipe._augmented((clip, label), seed)[0], plain)
    recipe.augment = True
