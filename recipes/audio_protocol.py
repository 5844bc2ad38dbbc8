"""The protocol rows of the audio recipes (spoken_digit, crema_d).

The LeRaC paper's audio protocol, as issue 13 quotes it: STFT size N_x = 1024, augmentation by
noise, time shift, speed perturbation, mix-up and SpecAugment, DenseNet-121 (and SepTr) trained
with Adam at 1e-4, CBS decaying every 1-3 epochs (Table 1). The stored paper text ends at its
introduction (docs/protocol_sources.md) and neither the LeRaC nor the CBS code has audio
training, so every value the issue quotes without a paper location, and every value it does not
quote, is written "not given; chosen: X, because Y". For the same reason `--protocol official`
changes only what the authors' image code defines for the method itself (LeRaC's stepwise
update, DoCL's rows): there is no audio code to switch to.
"""

from .docl_protocol import DOCL
from .docl_protocol import docl_rows
from .image_protocols import LERAC
from .image_protocols import R18
from .image_protocols import TRAIN
from .image_protocols import decoupled
from .protocol import USER_SOURCE
from .protocol import ProtocolValue
from .protocol import lerac_update_row

DEFAULT_MODEL = "densenet121"
MODELS = (DEFAULT_MODEL, "resnet18", "small_cnn")
NO_AUDIO_CODE = "the LeRaC and CBS code publish no audio training"
QUOTED = "issue 13 quotes this from the LeRaC paper, whose text past its introduction is not stored"
NO_VALUE = (
    "issue 13 names this augmentation from the LeRaC paper without a value, and no stored "
    "source gives one"
)
SAME_OFFICIAL = "`--protocol official` keeps it: no audio code is published"


def _quoted(value):
    return f"not given; chosen: {value}, because {QUOTED}"


def _cifar_value(value, lines):
    """Source of a value taken over from the LeRaC code's CIFAR-10 ResNet-18 protocol."""
    return (
        f"not given; chosen: {value}, because {NO_AUDIO_CODE}: the LeRaC code's CIFAR-10 "
        f"ResNet-18 value ({LERAC} {lines})"
    )


def _model_row(model):
    if model == DEFAULT_MODEL:
        return ProtocolValue(
            "model",
            "DenseNet-121 (keras.applications, random init), 1-channel spectrogram",
            f"not given; chosen: DenseNet-121, because {QUOTED}; its other audio model, "
            "SepTr, has no Keras implementation here",
            note=SAME_OFFICIAL,
        )
    names = {"resnet18": "ResNet-18, CIFAR stem", "small_cnn": "small_cnn (quick runs)"}
    if model not in names:
        raise ValueError(f"`model` must be one of {MODELS}. Received: model={model!r}")
    return ProtocolValue("model", f"{names[model]}, 1-channel spectrogram", USER_SOURCE)


def _augment_rows():
    return [
        ProtocolValue(
            "augmentation",
            "noise, time shift, speed, mix-up, SpecAugment",
            _quoted("these five"),
            note="`augment=False` turns all five off; " + SAME_OFFICIAL,
        ),
        ProtocolValue(
            "augment.noise",
            0.1,
            f"not given; chosen: 0.1, because {NO_VALUE}: Gaussian noise at up to 0.1 of "
            "the clip's RMS (20 dB below it) keeps the speech dominant",
            note="level ~ U(0, 0.1) per clip",
        ),
        ProtocolValue(
            "augment.shift",
            0.1,
            f"not given; chosen: 0.1, because {NO_VALUE}: a shift of up to 10 % of the "
            "clip (0.4 s in CREMA-D) moves the onset without cutting most utterances",
            note="shift ~ U{-0.1 L..0.1 L} samples, zero-filled",
        ),
        ProtocolValue(
            "augment.speed",
            (0.9, 1.1),
            f"not given; chosen: 0.9-1.1, because {NO_VALUE}: the factors of speed "
            "perturbation as introduced by Ko et al. (2015)",
            note="factor ~ U(0.9, 1.1), linear interpolation, then fixed to the clip length",
        ),
        ProtocolValue(
            "augment.freq_masks",
            2,
            f"not given; chosen: 2, because {NO_VALUE}: SpecAugment's LD policy "
            "(Park et al., 2019) uses 2 masks per axis",
        ),
        ProtocolValue(
            "augment.freq_width",
            0.15,
            f"not given; chosen: 0.15, because {NO_VALUE}: up to 15 % of the Mel bins per "
            "mask (19 of 128) leaves most of the spectrum of every clip",
            note="width ~ U{0..floor(0.15 bins)}, zeroed",
        ),
        ProtocolValue(
            "augment.time_masks",
            2,
            f"not given; chosen: 2, because {NO_VALUE}: SpecAugment's LD policy "
            "(Park et al., 2019) uses 2 masks per axis",
        ),
        ProtocolValue(
            "augment.time_width",
            0.1,
            f"not given; chosen: 0.1, because {NO_VALUE}: up to 10 % of the frames per mask "
            "(0.4 s of a 4 s clip), shorter than a word-level cue",
            note="width ~ U{0..floor(0.1 frames)}, zeroed",
        ),
        ProtocolValue(
            "mixup_alpha",
            0.2,
            f"not given; chosen: 0.2, because {NO_VALUE}: inside the 0.1-0.4 range "
            "Zhang et al. (2018) report for ImageNet",
            note="on batches of spectrograms, in the default regime (conventional, lerac, "
            "cbs, lerac+cbs); the DoCL pair has its own (docl:mixup_alpha); off, with "
            "the other augmentation, under augment=False",
        ),
    ]


def _front_end_rows(cls):
    reason = cls.front_end_reason
    stft_size = (
        _quoted(f"{cls.fft_length} (N_x)")
        if cls.fft_length_quoted
        else f"not given; chosen: {cls.fft_length} points, because {reason}"
    )
    return [
        ProtocolValue(
            "clip_seconds",
            cls.default_duration,
            f"not given; chosen: {cls.default_duration:g} s, because {reason}",
        ),
        ProtocolValue(
            "stft_window",
            cls.frame_length,
            f"not given; chosen: {cls.frame_length} samples at {cls.sample_rate} Hz, because "
            "a Hamming window shorter than the FFT only zero-pads it",
        ),
        ProtocolValue("stft_size", cls.fft_length, stft_size),
        ProtocolValue(
            "stft_hop",
            cls.frame_step,
            f"not given; chosen: {cls.frame_step} samples, because {reason}",
        ),
        ProtocolValue(
            "mel_bins", cls.num_mel_bins, f"not given; chosen: {cls.num_mel_bins}, because {reason}"
        ),
    ]


def audio_rows(cls, model=DEFAULT_MODEL):
    """The protocol rows of an audio recipe class (its front-end attributes) for `model`."""
    return [
        _model_row(model),
        ProtocolValue("optimizer", "Adam", _quoted("Adam"), note=SAME_OFFICIAL),
        ProtocolValue("learning_rate", 1e-4, _quoted("1e-4"), note=SAME_OFFICIAL),
        ProtocolValue(
            "schedule",
            "constant",
            f"not given; chosen: constant, because issue 13 quotes no schedule and {NO_AUDIO_CODE}",
        ),
        ProtocolValue(
            "weight_decay",
            None,
            "not given; chosen: none, because issue 13 quotes Adam at 1e-4 and nothing else",
        ),
        ProtocolValue("batch", 64, _cifar_value(64, "data_handlers.py:40")),
        ProtocolValue(
            "epochs",
            200,
            _cifar_value(200, f"{R18}:62"),
            note="the run's `--epochs`; epoch-valued rows scale with it",
        ),
        *_augment_rows(),
        *_front_end_rows(cls),
        ProtocolValue("lerac.duration", 5, _cifar_value(5, f"{R18}:58, :64, {TRAIN}:47-48")),
        ProtocolValue("lerac_events_per_epoch", 1, _cifar_value(1, f"{R18}:63")),
        ProtocolValue(
            "lerac.min_learning_rate",
            1e-9,
            f"not given; chosen: 1e-9, because {NO_AUDIO_CODE}: the 5 decades below the base "
            f"rate of the LeRaC code's CIFAR-10 ResNet-18 (0.1 to 1e-6, {LERAC} "
            f"{R18}:14-21, :60), below Adam's 1e-4",
        ),
        lerac_update_row(f"{LERAC} {TRAIN}:82-86"),
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
