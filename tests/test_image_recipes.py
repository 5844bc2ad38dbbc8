"""Image recipes (CIFAR-10/100, Tiny ImageNet, ImageNet): models, data ops, errors, end to end.

No image set is on these machines: the TFDS recipes run under `tfds.testing.mock_data` (random
examples; accuracies mean nothing) and Tiny ImageNet on a generated folder of its layout.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from keras_curriculum_recipes import cifar
from keras_curriculum_recipes import cli
from keras_curriculum_recipes import compare
from keras_curriculum_recipes import data
from keras_curriculum_recipes import image_ops
from keras_curriculum_recipes import imagenet
from keras_curriculum_recipes import methods as methods_lib
from keras_curriculum_recipes import tiny_imagenet
from keras_curriculum_recipes.image_classification import step_decay
from keras_curriculum_recipes.models import resnet18
from keras_curriculum_recipes.models import wide_resnet

import keras_curriculum as kc

# The recipes' own tests: scripts/test_floor.sh leaves them out (-m "not recipes").
pytestmark = pytest.mark.recipes

# Parameter counts from the architectures' definitions -------------------------------------------


def _conv(k, c_in, c_out, bias):
    return k * k * c_in * c_out + (c_out if bias else 0)


def _resnet18_trainable(classes, w=64):
    """CIFAR ResNet-18: 3x3 stem, 4 stages of 2 basic blocks, 1x1 projection shortcuts where
    the shape changes; BN adds gamma and beta per channel; no conv biases."""
    total = _conv(3, 3, w, False) + 2 * w
    c_in = w
    for c in (w, 2 * w, 4 * w, 8 * w):
        for block in range(2):
            total += _conv(3, c_in, c, False) + 2 * c + _conv(3, c, c, False) + 2 * c
            if block == 0 and c_in != c:
                total += _conv(1, c_in, c, False) + 2 * c
            c_in = c
    return total + 8 * w * classes + classes


def _wrn_trainable(depth, k, classes):
    """Pre-activation WRN with conv biases: stem 3x3 (16), (depth - 4) / 6 blocks per group of
    16k, 32k, 64k channels, each BN-conv-BN-conv (+ 1x1 shortcut on a shape change), final BN."""
    n = (depth - 4) // 6
    total = _conv(3, 3, 16, True)
    c_in = 16
    for c in (16 * k, 32 * k, 64 * k):
        for _ in range(n):
            total += 2 * c_in + _conv(3, c_in, c, True) + 2 * c + _conv(3, c, c, True)
            if c_in != c:
                total += _conv(1, c_in, c, True)
            c_in = c
    return total + 2 * c_in + c_in * classes + classes


def _trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def test_resnet18_has_the_parameters_of_its_definition():
    model = resnet18((32, 32, 3), 10)
    assert _trainable(model) == _resnet18_trainable(10)
    assert 11.1e6 < _trainable(model) < 11.3e6  # "11.2M", the usual figure for 10 classes


def test_wrn_28_10_has_the_parameters_of_its_definition():
    model = wide_resnet((32, 32, 3), 10, depth=28, width=10)
    assert _trainable(model) == _wrn_trainable(28, 10, 10)
    assert 36.4e6 < _trainable(model) < 36.6e6  # "36.5M" in Zagoruyko & Komodakis, Table 1


def _parent(layer):
    (parent,) = [node.operation for node in layer._inbound_nodes[0].parent_nodes]
    return parent


def test_cbs_smooths_every_3x3_conv_of_the_wrn_after_bn_relu_and_never_a_shortcut():
    model = kc.add_smoothing(wide_resnet((16, 16, 3), 4, depth=16, width=1))
    convs = {layer.name: layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)}
    smoothed = [_parent(layer) for layer in kc.smoothing_layers(model)]
    assert sorted(c.name for c in smoothed) == sorted(
        name for name, c in convs.items() if c.kernel_size == (3, 3)
    )
    assert not any("shortcut" in c.name for c in smoothed)
    for conv in smoothed:
        if conv.name != "stem_conv":  # pre-activation: BN -> ReLU -> conv -> Gaussian
            relu = _parent(conv)
            assert isinstance(relu, keras.layers.ReLU)
            assert isinstance(_parent(relu), keras.layers.BatchNormalization)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"depth": 27}, "depth"), ({"width": 0}, "width"), ({"dropout": 1.0}, "dropout")],
)
def test_wide_resnet_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        wide_resnet(**kwargs)


# Data operations --------------------------------------------------------------------------------


def test_pad_crop_flip_returns_a_shifted_or_mirrored_crop_of_the_padded_image():
    rng = np.random.default_rng(0)
    image = rng.integers(1, 255, size=(8, 8, 3)).astype("float32")
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    candidates = [padded[i : i + 8, j : j + 8] for i in range(9) for j in range(9)]
    candidates += [c[:, ::-1] for c in candidates]
    tf.random.set_seed(0)
    for _ in range(10):
        out = image_ops.pad_crop_flip(tf.constant(image)).numpy()
        assert out.shape == image.shape
        assert any(np.array_equal(out, c) for c in candidates)


def test_resize_center_crop_takes_the_centre_of_the_resized_image():
    image = np.arange(8 * 10 * 1, dtype="float32").reshape(8, 10, 1)
    # Shorter side 8 = 7 / 0.875: no resize, the crop starts at row 0, column (10 - 7) // 2.
    out = image_ops.resize_center_crop(tf.constant(image), 7, crop_fraction=0.875).numpy()
    np.testing.assert_allclose(out, image[0:7, 1:8], atol=1e-4)


def test_random_resized_crop_gives_the_requested_size_in_pixel_range():
    image = tf.constant(np.random.default_rng(1).integers(0, 256, (40, 30, 3)), tf.uint8)
    out = image_ops.random_resized_crop_flip(image, 24)
    assert out.shape == (24, 24, 3)
    assert 0.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 255.0


def test_step_decay_divides_by_ten_at_the_papers_fractions_of_the_run():
    def rates(schedule, steps):
        return [float(keras.ops.convert_to_numpy(schedule(s))) for s in steps]

    # The LeRaC code divides before its (1-based) epochs 35, 65, 95: from the first step of
    # Keras epochs 34, 64, 94 (step 340 with 10 steps per epoch).
    schedule = step_decay(0.1, epochs=200, steps_per_epoch=10)
    np.testing.assert_allclose(
        rates(schedule, [0, 339, 340, 639, 640, 939, 940, 1999]),
        [0.1, 0.1, 0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4],
        rtol=1e-6,
    )
    # 4 epochs: 34/200 -> epoch 1, 64/200 -> epoch 1 (the same), 94/200 -> epoch 2.
    schedule = step_decay(0.1, epochs=4, steps_per_epoch=10)
    np.testing.assert_allclose(
        rates(schedule, [9, 10, 19, 20, 39]), [0.1, 0.01, 0.01, 1e-3, 1e-3], rtol=1e-6
    )
    assert step_decay(0.1, epochs=1, steps_per_epoch=10) == 0.1
    # Tiny ImageNet: epochs 32, 62, 92 of 100.
    schedule = step_decay(0.1, 100, 10, (32, 62, 92), 100)
    np.testing.assert_allclose(
        rates(schedule, [319, 320, 619, 620, 919, 920]),
        [0.1, 0.01, 0.01, 1e-3, 1e-3, 1e-4],
        rtol=1e-6,
    )


@pytest.mark.parametrize("recipe, multiple", [(cifar.Cifar10, 4), (tiny_imagenet.TinyImageNet, 8)])
def test_efficient_train_tables_of_the_native_size_recipes(recipe, multiple):
    # The ET table's 160/192/224 of 224 px at the recipe's size, rounded to `multiple` px.
    stub = type(
        "Stub",
        (),
        {
            "name": recipe.name,
            "upscaled_size": recipe.image_size,
            "efficient_train": {"sizes": recipe.et_sizes},
        },
    )()
    stages = methods_lib.efficient_train_stages(stub, 10)
    assert [s.epochs for s in stages] == [2] * 5
    expected = [
        multiple * round(b * recipe.image_size / 224 / multiple) for b in (160, 160, 160, 192, 224)
    ]
    assert [s.size for s in stages] == expected


# Unavailable data -------------------------------------------------------------------------------


def test_missing_tfds_data_names_the_build_command(tmp_path):
    with pytest.raises(data.DatasetUnavailable, match="tfds build cifar100"):
        cifar.Cifar100(data_dir=str(tmp_path), download=False)


def test_missing_imagenet_explains_the_manual_download(tmp_path):
    with pytest.raises(
        data.DatasetUnavailable,
        match="(?s)ILSVRC2012_img_train.tar.*tfds build imagenet2012 --manual_dir",
    ):
        imagenet.ImageNet(data_dir=str(tmp_path), download=False)


def test_missing_tiny_imagenet_gives_the_download_url(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINY_IMAGENET_DIR", str(tmp_path))
    assert cli.main(["--recipe", "tiny_imagenet", "--out", str(tmp_path / "run")]) == 2
    assert data.TINY_IMAGENET_URL in capsys.readouterr().err


def test_bad_recipe_arguments_are_refused_before_loading():
    with pytest.raises(ValueError, match="`model` must be one of"):
        cifar.Cifar10(model="vgg")
    with pytest.raises(ValueError, match="`image_size` must be an int"):
        imagenet.ImageNet(image_size=0)


def test_every_registered_recipe_resolves_and_declares_known_methods():
    for name in ("cifar10", "cifar100", "tiny_imagenet", "imagenet", "imagenet_plus"):
        cls = cli.recipe_class(name)
        assert cls.name == name
        assert set(cls.methods) <= set(methods_lib.METHODS)


# End to end through the runner ------------------------------------------------------------------


def _history(out):
    return {r["method"]: r["history"] for r in json.load(open(os.path.join(out, "results.json")))}


def _tiny_cifar(cls, num_examples=16, train_size=16):
    with tfds.testing.mock_data(num_examples=num_examples):
        return cls(train_size=train_size, batch_size=8, model="wrn", wrn_depth=10, wrn_width=1)


def test_cifar10_runs_efficient_train_at_native_size(tmp_path):
    # DoCL's regime (episodes, Mix-up) needs 3 epochs: tests/test_protocols.py runs it.
    recipe = _tiny_cifar(cifar.Cifar10)
    assert recipe.x_test.shape == (16, 32, 32, 3) and recipe.steps_per_epoch == 2
    rows = compare.compare(
        recipe,
        ["conventional", "efficient_train"],
        range(1),
        1,
        str(tmp_path),
        verbose=0,
        allow_inactive=True,
    )
    assert rows[1]["mcnemar_vs"] == "conventional"  # ET trains at 32 px, as conventional does
    history = _history(str(tmp_path))
    assert history["efficient_train"]["et_height"] == [32.0]  # 1 epoch: the last stage


def test_cifar100_runs_lerac_with_cbs(tmp_path):
    recipe = _tiny_cifar(cifar.Cifar100, num_examples=24)
    assert len(recipe.y_test) == 24 and recipe.num_train == 16  # train_size is applied
    assert recipe.build_model().output_shape == (None, 100)
    compare.compare(
        recipe,
        ["conventional", "lerac+cbs"],
        range(1),
        1,
        str(tmp_path),
        verbose=0,
        allow_inactive=True,
    )
    history = _history(str(tmp_path))["lerac+cbs"]
    assert history["cbs_sigma"] == [1.0]
    assert history["lerac_lr_last"][0] == pytest.approx(1e-8, rel=1e-3)


def _write_tiny_imagenet(root, classes=3, per_class=4, val_per_class=2):
    rng = np.random.default_rng(0)
    wnids = [f"n0000{i}" for i in range(classes)]
    os.makedirs(os.path.join(root, "val", "images"))
    with open(os.path.join(root, "wnids.txt"), "w") as handle:
        handle.write("\n".join(wnids) + "\n")

    def jpeg(path, grey=False):
        pixels = rng.integers(0, 256, (64, 64, 1 if grey else 3), dtype=np.uint8)
        tf.io.write_file(path, tf.io.encode_jpeg(pixels))

    lines = []
    for c, wnid in enumerate(wnids):
        folder = os.path.join(root, "train", wnid, "images")
        os.makedirs(folder)
        for i in range(per_class):
            jpeg(os.path.join(folder, f"{wnid}_{i}.JPEG"), grey=(c == 0 and i == 0))
        for i in range(val_per_class):
            name = f"val_{c}_{i}.JPEG"
            jpeg(os.path.join(root, "val", "images", name))
            lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    with open(os.path.join(root, "val", "val_annotations.txt"), "w") as handle:
        handle.write("\n".join(lines) + "\n")


def test_tiny_imagenet_reads_the_standard_folder_and_runs_efficient_train(tmp_path):
    root = str(tmp_path / "tiny-imagenet-200")
    _write_tiny_imagenet(root)
    wnids, (paths, labels), (val_paths, val_labels) = data.tiny_imagenet_files(root)
    assert len(paths) == 12 and np.bincount(labels).tolist() == [4, 4, 4]
    assert np.bincount(val_labels).tolist() == [2, 2, 2]
    recipe = tiny_imagenet.TinyImageNet(
        batch_size=4, model="wrn", wrn_depth=10, wrn_width=1, data_dir=root
    )
    assert recipe.x_test.shape == (6, 64, 64, 3)
    assert recipe.build_model().output_shape == (None, 200)
    out = str(tmp_path / "run")
    compare.compare(
        recipe,
        ["conventional", "efficient_train"],
        range(1),
        2,
        out,
        verbose=0,
        allow_inactive=True,
    )
    # 2 epochs of the 5-stage table: the third stage (48 px), then the last (64 px).
    assert _history(out)["efficient_train"]["et_height"] == [48.0, 64.0]


def test_imagenet_efficient_train_uses_the_paper_magnitudes(tmp_path):
    with tfds.testing.mock_data(num_examples=8):
        recipe = imagenet.ImageNet(
            train_size=8,
            image_size=32,
            batch_size=4,
            accumulation_steps=2,
            model="small_cnn",
            width=4,
            test_size=8,
        )
        x_test, y_test = recipe.test_arrays()
        assert isinstance(x_test, tf.data.Dataset) and y_test.shape == (8,)
        rows = compare.compare(
            recipe,
            ["conventional", "efficient_train"],
            range(1),
            1,
            str(tmp_path),
            verbose=0,
            allow_inactive=True,
        )
    assert rows[1]["mcnemar_vs"] == "conventional"
    history = _history(str(tmp_path))["efficient_train"]
    assert history["et_height"] == [32.0] and history["et_magnitude"] == [9.0]
    optimizer = recipe.optimizer(300)
    assert optimizer.gradient_accumulation_steps == 2 and optimizer.weight_decay == 0.05


def test_imagenet_schedule_warms_up_then_follows_the_cosine():
    # 300 epochs of 10 steps: 200 warm-up steps from 0 to 4e-3, then a cosine over 2800 steps
    # down to 1e-6.
    schedule = imagenet.warmup_cosine(4e-3, 300, 10)
    steps = np.array([0, 100, 200, 200 + 1400, 3000])
    cosine = lambda t: 1e-6 + (4e-3 - 1e-6) * 0.5 * (1 + np.cos(np.pi * t / 2800))  # noqa: E731
    expected = [0.0, 2e-3, 4e-3, cosine(1400), cosine(2800)]
    got = [float(keras.ops.convert_to_numpy(schedule(s))) for s in steps]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-9)


def test_label_smoothing_loss_matches_the_smoothed_targets_by_hand():
    logits = np.array([[2.0, 0.5, -1.0]], "float32")
    loss = imagenet.SparseSmoothedCrossentropy(3, label_smoothing=0.3)
    target = np.array([0.7 + 0.1, 0.1, 0.1])
    log_softmax = logits[0] - np.log(np.exp(logits[0]).sum())
    expected = -(target * log_softmax).sum()
    assert float(loss(np.array([0]), logits)) == pytest.approx(expected, rel=1e-5)


def test_cli_passes_recipe_arguments_and_refuses_unknown_ones(tmp_path, capsys):
    args = cli.parse_args(
        [
            "--recipe",
            "cifar10",
            "--set",
            "model=wrn",
            "--set",
            "wrn_depth=16",
            "--set",
            "data_dir=/tmp/x",
        ]
    )
    assert dict(args.options) == {"model": "wrn", "wrn_depth": 16, "data_dir": "/tmp/x"}
    assert cli.main(["--recipe", "cifar10", "--set", "colour=blue"]) == 2
    assert "colour" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.parse_args(["--set", "no-equals-sign"])
