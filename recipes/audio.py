"""Audio recipes: Free Spoken Digit (TFDS `spoken_digit`, 8 kHz) and CREMA-D (TFDS `crema_d`,
16 kHz), classified from log-Mel spectrogram images, in the LeRaC paper's audio protocol as
issue 13 quotes it (every value and its source: recipes/audio_protocol.py, printed by
`kc-recipes --recipe crema_d --print-protocol`).

Front end (`recipes/spectrogram.py`): clips zero-padded or clipped to a fixed length (CREMA-D:
4 s), STFT with a periodic Hamming window of L = N = 1024 samples (the paper's N_x = 1024 as
quoted by issue 13) and hop R = 64, square root of the magnitude, 128 Mel bins, logarithm,
min-max scaling to [0, 1]. Spoken digits (not in the paper) keep a 256-point STFT at 8 kHz,
hop 32, 64 Mel bins (a 256-point FFT has 129 bins) and 1 s clips. Spectrograms are computed in
`tf.data`, so every backend trains on the same inputs.

Augmentation (`recipes/audio_augment.py`, in `tf.data`): speed perturbation, time shift and
Gaussian noise on the waveform, SpecAugment's frequency and time masks on the spectrogram, and
Mix-up on batches (the regime's, recipes/mixup.py). The test set is not augmented.

Model: DenseNet-121 (`keras.applications`, random initialisation, 1-channel input, logits)
trained with Adam at 1e-4; `model="resnet18"` (CIFAR stem) or `model="small_cnn"` for quick
runs. The conventional, LeRaC, CBS and LeRaC + CBS arms train in one regime (same
augmentation, Adam, Mix-up); DoCL and its `conventional_docl` baseline in DoCL's own
(episode-tied SGD cosine, its Mix-up, the same waveform and SpecAugment steps). LeRaC: k = 5,
initial rates down to 1e-9; CBS: sigma_0 = 0.8, factor 0.9, every 2 epochs (Table 1: 1-3 for
audio), a 2-D Gaussian over time x Mel. The authors publish no audio code, so `--protocol
official` changes only LeRaC's update rule and DoCL's rows.
"""

import keras
import tensorflow as tf

from . import audio_augment
from . import spectrogram
from . import tfds_data
from .audio_protocol import DEFAULT_MODEL
from .audio_protocol import MODELS
from .audio_protocol import audio_rows
from .base import DEFAULT_REGIME
from .base import Recipe
from .image_protocols import MOMENTUM
from .mixup import seed_pairs
from .models import resnet18
from .models import small_cnn
from .protocol_regimes import ProtocolRegimes
from .regimes import Regime

UNCHECKED = (
    "no stored source gives it: the LeRaC paper's audio preprocessing (after SepTr, Ristea et "
    "al. 2022) could not be read, and neither the LeRaC nor the SepTr repository has "
    "preprocessing code"
)


class AudioRecipe(ProtocolRegimes, Recipe):
    """Base class of the audio recipes.

    Args:
        train_size: None for the whole training split, or an int: its first `train_size` clips.
        model: `"densenet121"` (default), `"resnet18"` or `"small_cnn"`.
        batch_size: int >= 1.
        augment: None (the protocol's: on), or a bool: False turns off the waveform steps,
            SpecAugment and the default regime's Mix-up.
        duration: clip length in seconds (None: the recipe's default).
        width: first-stage channels of ResNet-18 (64 in the paper) or of `small_cnn`.
        data_dir: TFDS data folder; None for $TFDS_DATA_DIR.
        download: let TFDS download and prepare the data.
        protocol: "paper" (default) or "official" (the authors' code where it differs).
    """

    methods = ("conventional", "lerac", "cbs", "lerac+cbs", "docl")
    regimes = {"docl": "docl"}
    protocol_options = {"batch_size": "batch", "augment": "augmentation"}
    tfds_name = None
    num_classes = None
    sample_rate = None
    default_duration = None
    frame_length = fft_length = frame_step = num_mel_bins = None
    fft_length_quoted = False  # whether issue 13 quotes the paper's STFT size for this data
    front_end_reason = UNCHECKED  # why the front end's values are what they are

    @classmethod
    def protocol_rows(cls, model=DEFAULT_MODEL, **options):
        return audio_rows(cls, model)

    def __init__(
        self,
        train_size=None,
        model=DEFAULT_MODEL,
        batch_size=None,
        augment=None,
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
        if augment is not None and not isinstance(augment, bool):
            raise ValueError(f"`augment` must be None or a bool. Received: augment={augment!r}")
        table = self.protocol_table = type(self).protocol(
            protocol, model=model, batch_size=batch_size, augment=augment
        )
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
        self.augment = table["augmentation"] is not False
        self.waveform_augment = {k: table["augment." + k] for k in ("noise", "shift", "speed")}
        self.spec_augment = {
            k: table["augment." + k]
            for k in ("freq_masks", "freq_width", "time_masks", "time_width")
        }
        self.duration = duration
        self.width = width
        self.data_dir = data_dir
        self.download = download
        self.length = length
        self.frames = spectrogram.num_frames(length, self.frame_length, self.frame_step)
        train_clips, test_clips = self._clips()
        # Fixed-length int16 clips are cached (CREMA-D: 0.66 GB); spectrograms are computed per
        # epoch (and augmented), the test set's once.
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
            f"batch {batch_size}, Adam {table['learning_rate']:g}, "
            f"{'augmented' if self.augment else 'no augmentation'}, {table.protocol} protocol"
        )
        self.loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.lerac = self.lerac_arguments()
        self.cbs = table.section("cbs")
        self.docl = table.section("docl")

    # Regimes: one for conventional, LeRaC, CBS and LeRaC + CBS; DoCL's (ProtocolRegimes).

    def optimizer(self, epochs):
        return keras.optimizers.Adam(self.protocol_table["learning_rate"])

    def make_optimizer(self, rate, regime):
        """DoCL's SGD: the one regime `ProtocolRegimes` builds through this method here."""
        return keras.optimizers.SGD(
            rate,
            momentum=MOMENTUM,
            nesterov=True,
            weight_decay=self.protocol_table["docl:weight_decay"],
        )

    def regime(self, name, epochs):
        if name == DEFAULT_REGIME:
            alpha = self.protocol_table["mixup_alpha"] if self.augment else None
            return Regime(name, lambda epoch_steps, callbacks: self.optimizer(epochs), alpha)
        return super().regime(name, epochs)

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

    def _image(self, waveform):
        image = spectrogram.log_mel_image(
            waveform,
            self.sample_rate,
            self.length,
            self.frame_length,
            self.frame_step,
            self.fft_length,
            self.num_mel_bins,
        )
        return tf.ensure_shape(image, [self.frames, self.num_mel_bins, 1])

    def _features(self, clip, label):
        return self._image(spectrogram.pcm_to_float(clip)), label

    def _augmented(self, example, seed):
        clip, label = example
        if not self.augment:
            return self._features(clip, label)
        wave_seed, mask_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        waveform = audio_augment.augment_waveform(
            spectrogram.pcm_to_float(clip), wave_seed, **self.waveform_augment
        )
        image = audio_augment.spec_augment(self._image(waveform), mask_seed, **self.spec_augment)
        return image, label

    def _augmented_examples(self, clips, seed):
        pairs = tf.data.Dataset.zip((clips, seed_pairs(seed)))
        return pairs.map(self._augmented, num_parallel_calls=tf.data.AUTOTUNE)

    def build_model(self, variable_size=False):
        shape = (self.frames, self.num_mel_bins, 1)
        if self.model == "densenet121":
            return keras.applications.DenseNet121(
                weights=None,
                input_shape=shape,
                classes=self.num_classes,
                classifier_activation=None,
            )
        if self.model == "resnet18":
            return resnet18(shape, self.num_classes, width=self.width or 64)
        return small_cnn(shape, self.num_classes, width=self.width or 16)

    def train_dataset(self, seed, image_size=None):
        clips = self._train.shuffle(self.num_train, seed=seed, reshuffle_each_iteration=True)
        examples = self._augmented_examples(clips, seed)
        return examples.batch(self.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def train_examples(self):
        """Spectrograms of the training clips in a fixed order, unbatched (for DoCL), augmented
        as in `train_dataset` (fresh draws each epoch)."""
        return self._augmented_examples(self._train, None)

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
    summary = "Free Spoken Digit, log-Mel spectrograms, DenseNet-121 (TFDS download)"
    tfds_name = "spoken_digit"
    num_classes = 10
    sample_rate = 8000
    default_duration = 1.0
    frame_length = fft_length = 256
    frame_step = 32
    num_mel_bins = 64
    front_end_reason = (
        "spoken digits are not in the paper: a 32 ms window and a 4 ms hop at 8 kHz, 1 s clips "
        "(FSDD's digits are shorter), 64 Mel bins since a 256-point FFT has 129 bins"
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
    summary = "CREMA-D emotions, log-Mel spectrograms, DenseNet-121 (TFDS download)"
    tfds_name = "crema_d"
    num_classes = 6
    sample_rate = 16000
    default_duration = 4.0
    frame_length = fft_length = 1024
    fft_length_quoted = True
    frame_step = 64
    num_mel_bins = 128

    def _clips(self):
        def pairs(split):
            return self._load(split).map(lambda ex: (ex["audio"], ex["label"]))

        return pairs("train"), pairs("test")
