"""Audio recipes: Free Spoken Digit (TFDS `spoken_digit`, 8 kHz) and CREMA-D (TFDS `crema_d`,
16 kHz), classified from log-Mel spectrogram images.

Front end (`recipes/spectrogram.py`), after the LeRaC paper's description of SepTr's (Ristea et
al., 2022) as this recipe's author recalled it: clips zero-padded or clipped to a fixed length
(CREMA-D: 4 s), STFT with a Hamming window of L = 512 samples, N = 512 FFT points and hop
R = 64 (32 ms / 4 ms at 16 kHz), square root of the magnitude, 128 Mel bins, logarithm,
min-max scaling to [0, 1]. None of these values could be checked (no stored paper text past
its introduction, no audio code in the authors' repositories); issue 13 quotes the paper's
STFT size as N_x = 1024. The protocol table (`kc-recipes --recipe crema_d --print-protocol`)
marks every such value "not given; chosen". Spoken digits (not in the paper) use the same
window and hop durations at 8 kHz (L = N = 256, R = 32), 64 Mel bins (a 256-point FFT has 129
bins: 128 Mel filters would be narrower than a bin) and 1 s clips. Spectrograms are computed in
`tf.data`, so every backend trains on the same inputs.

Model: ResNet-18 (CIFAR stem) on the 1-channel spectrogram, or `model="small_cnn"` for quick
runs. The LeRaC paper's audio models are SepTr and DenseNet-121 (issue 13), not ResNet-18 (see
docs/recipes_images_audio.md). Protocol: the LeRaC code's CIFAR-10 ResNet-18 setting (SGD 0.1,
momentum 0.9, batch 64, rate / 10 from epochs 34, 64, 94 of 200; LeRaC k = 5, 0.1 down to
1e-6), since no audio training code is published; CBS with sigma_0 = 0.8, factor 0.9, decay
every 2 epochs (LeRaC Table 1 as quoted by issue 13: u = 1-3 for audio); DoCL in its own
protocol (episode-tied cosine, Mix-up on the spectrograms). The CBS Gaussian is 2-D over
time x Mel.
"""

import keras
import tensorflow as tf

from . import spectrogram
from . import tfds_data
from .base import Recipe
from .docl_protocol import DOCL
from .docl_protocol import docl_rows
from .image_classification import SgdRegimes
from .image_protocols import LERAC
from .image_protocols import MOMENTUM
from .image_protocols import R18
from .image_protocols import TRAIN
from .image_protocols import decoupled
from .models import resnet18
from .models import small_cnn
from .protocol import ProtocolValue

MODELS = ("resnet18", "small_cnn")
NO_AUDIO_CODE = "the LeRaC and CBS code publish no audio training"
UNCHECKED = (
    "recalled from the LeRaC paper's description (after SepTr), which the stored "
    "sources do not hold; issue 13 quotes its STFT size as N_x = 1024"
)


def _cifar_value(value, lines):
    """Source of a value taken over from the LeRaC code's CIFAR-10 ResNet-18 protocol."""
    return (
        f"not given; chosen: {value}, because {NO_AUDIO_CODE}: the LeRaC code's CIFAR-10 "
        f"ResNet-18 value ({LERAC} {lines})"
    )


def audio_rows(cls):
    """The protocol rows of an audio recipe class (its front-end attributes)."""
    front = f"{cls.sample_rate} Hz"
    reason = cls.front_end_reason
    return [
        ProtocolValue(
            "model",
            "ResNet-18, CIFAR stem, 1-channel spectrogram",
            f"not given; chosen: ResNet-18, because it is the image recipes' model "
            f"and {NO_AUDIO_CODE}; the paper's audio models are SepTr and "
            f"DenseNet-121 (issue 13)",
        ),
        ProtocolValue("optimizer", "SGD", _cifar_value("SGD", f"{R18}:39-43")),
        ProtocolValue("momentum", MOMENTUM, _cifar_value(MOMENTUM, f"{R18}:39-43")),
        ProtocolValue("learning_rate", 0.1, _cifar_value(0.1, f"{R18}:59")),
        ProtocolValue(
            "weight_decay",
            decoupled(1e-4),
            _cifar_value("1e-4 coupled", f"{R18}:39-43"),
            note="PyTorch's coupled 1e-4 as Keras's decoupled decay",
        ),
        ProtocolValue("batch", 64, _cifar_value(64, "data_handlers.py:40")),
        ProtocolValue(
            "epochs",
            200,
            _cifar_value(200, f"{R18}:62"),
            note="the run's `--epochs`; epoch-valued rows scale with it",
        ),
        ProtocolValue(
            "decay_epochs", (34, 64, 94), _cifar_value("34, 64, 94", f"{R18}:54-56, {TRAIN}:33-38")
        ),
        ProtocolValue(
            "augmentation",
            False,
            "not given; chosen: none, because the recipes compare curricula on the "
            "same inputs; issue 13 quotes noise, time shift, speed, mix-up and "
            "SpecAugment from the paper, not implemented here",
        ),
        ProtocolValue(
            "clip_seconds",
            cls.default_duration,
            f"not given; chosen: {cls.default_duration:g} s, because {reason}",
        ),
        ProtocolValue(
            "stft_window",
            cls.frame_length,
            f"not given; chosen: {cls.frame_length} samples at {front}, because {reason}",
        ),
        ProtocolValue(
            "stft_size",
            cls.fft_length,
            f"not given; chosen: {cls.fft_length} points, because {reason}",
        ),
        ProtocolValue(
            "stft_hop",
            cls.frame_step,
            f"not given; chosen: {cls.frame_step} samples, because {reason}",
        ),
        ProtocolValue(
            "mel_bins", cls.num_mel_bins, f"not given; chosen: {cls.num_mel_bins}, because {reason}"
        ),
        ProtocolValue("lerac.duration", 5, _cifar_value(5, f"{R18}:58, :64, {TRAIN}:47-48")),
        ProtocolValue("lerac_events_per_epoch", 1, _cifar_value(1, f"{R18}:63")),
        ProtocolValue("lerac.min_learning_rate", 1e-6, _cifar_value("1e-6", f"{R18}:14-21, :60")),
        ProtocolValue(
            "lerac.update",
            "exponential",
            "LeRaC Eq. 8",
            official="stepwise",
            official_source=f"{LERAC} {TRAIN}:82-86",
        ),
        ProtocolValue("lerac.c", 10.0, f"{LERAC} {R18}:58"),
        ProtocolValue("lerac.base_schedule", "multiply", f"{LERAC} {TRAIN}:33-38"),
        ProtocolValue("cbs.sigma", 0.8, "LeRaC Table 1"),
        ProtocolValue("cbs.kernel_size", 3, "pairlab/CBS arguments.py:23"),
        ProtocolValue("cbs.factor", 0.9, "LeRaC Table 1"),
        ProtocolValue("cbs.every", 2, "LeRaC Table 1", note="Table 1's audio range: 1-3 epochs"),
        ProtocolValue(
            "docl:optimizer", "SGD, momentum 0.9, Nesterov", f"DoCL Sec. 4; {DOCL} docl.py:65, :365"
        ),
        ProtocolValue(
            "docl:weight_decay",
            decoupled(1e-4),
            f"{DOCL} docl.py:66",
            note="PyTorch's coupled 1e-4 as Keras's decoupled decay",
        ),
        *docl_rows(0.1, f"{DOCL} docl.py:57"),
    ]


class AudioRecipe(SgdRegimes, Recipe):
    """Base class of the audio recipes.

    Args:
        train_size: None for the whole training split, or an int: its first `train_size` clips.
        model: `"resnet18"` or `"small_cnn"`.
        batch_size: int >= 1.
        duration: clip length in seconds (None: the recipe's default).
        width: first-stage channels of ResNet-18 (64 in the paper) or of `small_cnn`.
        data_dir: TFDS data folder; None for $TFDS_DATA_DIR.
        download: let TFDS download and prepare the data.
        protocol: "paper" (default) or "official" (the authors' code where it differs).
    """

    methods = ("conventional", "lerac", "cbs", "lerac+cbs", "docl")
    regimes = {"docl": "docl"}  # CBS in the LeRaC protocol: there is no CBS audio code
    protocol_options = {"batch_size": "batch"}
    tfds_name = None
    num_classes = None
    sample_rate = None
    default_duration = None
    frame_length = fft_length = frame_step = num_mel_bins = None
    front_end_reason = UNCHECKED  # why the front end's values are what they are

    @classmethod
    def protocol_rows(cls, **options):
        return audio_rows(cls)

    def __init__(
        self,
        train_size=None,
        model="resnet18",
        batch_size=None,
        duration=None,
        width=None,
        data_dir=None,
        download=True,
        protocol="paper",
    ):
        if model not in MODELS:
            raise ValueError(f"`model` must be one of {MODELS}. Received: model={model!r}")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"`batch_size` must be an int >= 1. Received: {batch_size!r}")
        table = self.protocol_table = type(self).protocol(protocol, batch_size=batch_size)
        batch_size = table["batch"]
        duration = table["clip_seconds"] if duration is None else duration
        length = int(round(duration * self.sample_rate))
        if length < self.frame_length:
            raise ValueError(
                f"`duration` must cover one STFT window ({self.frame_length} "
                f"samples at {self.sample_rate} Hz). Received: {duration!r}"
            )
        self.train_size = tfds_data.check_size(train_size)
        self.model = model
        self.batch_size = batch_size
        self.duration = duration
        self.width = width
        self.data_dir = data_dir
        self.download = download
        self.length = length
        self.frames = spectrogram.num_frames(length, self.frame_length, self.frame_step)
        train_clips, test_clips = self._clips()
        # Fixed-length int16 clips are cached (CREMA-D: 0.66 GB); spectrograms are computed per
        # epoch, the test set's once.
        self._train, self.num_train = tfds_data.with_length(
            tfds_data.take(train_clips, self.train_size).map(self._fixed).cache()
        )
        if self.num_train < batch_size:
            raise ValueError(
                f"`batch_size` ({batch_size}) exceeds the {self.num_train} "
                "training clips: lower it or raise `train_size`."
            )
        self.x_test, self.y_test = tfds_data.to_numpy(
            test_clips.map(self._fixed).map(self._features)
        )
        self.steps_per_epoch = self.num_train // batch_size
        self.description = (
            f"{model} on {self.frames}x{self.num_mel_bins} log-Mel "
            f"spectrograms ({duration:g} s), {self.num_train} training clips, "
            f"batch {batch_size}, SGD 0.1 momentum 0.9, {table.protocol} "
            "protocol"
        )
        self.loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.lerac = self.lerac_arguments()
        self.cbs = table.section("cbs")
        self.docl = table.section("docl")

    def _load(self, split):
        return tfds_data.load(
            self.tfds_name,
            split,
            data_dir=self.data_dir,
            download=self.download,
            as_supervised=False,
        )

    def _clips(self):
        """(train, test) datasets of (waveform, label)."""
        raise NotImplementedError

    def _fixed(self, waveform, label):
        clip = spectrogram.fix_length(waveform, self.length)
        return tf.cast(clip, tf.int16), tf.cast(label, tf.int32)

    def _features(self, clip, label):
        image = spectrogram.spectrogram_image(
            clip,
            self.sample_rate,
            self.length,
            self.frame_length,
            self.frame_step,
            self.fft_length,
            self.num_mel_bins,
        )
        return tf.ensure_shape(image, [self.frames, self.num_mel_bins, 1]), label

    def build_model(self, variable_size=False):
        shape = (self.frames, self.num_mel_bins, 1)
        if self.model == "resnet18":
            return resnet18(shape, self.num_classes, width=self.width or 64)
        return small_cnn(shape, self.num_classes, width=self.width or 16)

    def train_dataset(self, seed, image_size=None):
        ds = self._train.shuffle(self.num_train, seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(self._features, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(self.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def train_examples(self):
        """Spectrograms of the training clips in a fixed order, unbatched (for DoCL)."""
        return self._train.map(self._features, num_parallel_calls=tf.data.AUTOTUNE)

    def test_dataset(self, image_size=None):
        return tf.data.Dataset.from_tensor_slices((self.x_test, self.y_test)).batch(256)

    def test_arrays(self, image_size=None):
        return self.x_test, self.y_test


def _is_fsdd_test_file(filename):
    # FSDD's own split: recordings 0-4 of every speaker and digit ("{digit}_{speaker}_{i}.wav")
    # are the test set, 10 % of the clips.
    return tf.strings.regex_full_match(filename, r"(.*/)?\d_[^/]*_[0-4]\.wav")


class SpokenDigit(AudioRecipe):
    """Free Spoken Digit Dataset (TFDS `spoken_digit`): 2,500 clips, 10 digits, 8 kHz; FSDD's
    split (recordings 0-4 of each speaker and digit, 250 clips, are the test set)."""

    name = "spoken_digit"
    summary = "Free Spoken Digit, log-Mel spectrograms, ResNet-18 (TFDS download)"
    tfds_name = "spoken_digit"
    num_classes = 10
    sample_rate = 8000
    default_duration = 1.0
    frame_length = fft_length = 256
    frame_step = 32
    num_mel_bins = 64
    front_end_reason = (
        "spoken digits are not in the paper: CREMA-D's window and hop durations "
        "at 8 kHz and 1 s clips, 64 Mel bins since a 256-point FFT has 129 bins"
    )

    def _clips(self):
        clips = self._load("train")  # TFDS has one split; FSDD's file names define the test set

        def pairs(is_test):
            kept = clips.filter(lambda ex: _is_fsdd_test_file(ex["audio/filename"]) == is_test)
            return kept.map(lambda ex: (ex["audio"], ex["label"]))

        return pairs(False), pairs(True)


class CremaD(AudioRecipe):
    """CREMA-D (TFDS `crema_d`): 7,442 clips of 91 actors, 6 emotions, 16 kHz; TFDS's train
    and test splits (its validation split is not used)."""

    name = "crema_d"
    summary = "CREMA-D emotions, log-Mel spectrograms, ResNet-18 (TFDS download)"
    tfds_name = "crema_d"
    num_classes = 6
    sample_rate = 16000
    default_duration = 4.0
    frame_length = fft_length = 512
    frame_step = 64
    num_mel_bins = 128

    def _clips(self):
        def pairs(split):
            return self._load(split).map(lambda ex: (ex["audio"], ex["label"]))

        return pairs("train"), pairs("test")
