"""Layer order for LeRaC: depth in the graph, parallel branches, nesting, fallbacks, overrides."""

import keras
import numpy as np
import pytest
from keras import layers
from keras_curriculum_recipes.models import resnet18

import keras_curriculum as kc
from keras_curriculum.lerac import layer_groups


def names(groups):
    return [sorted(layer.name for layer in group.layers) for group in groups]


def test_residual_shortcut_shares_the_depth_of_the_parallel_main_path():
    inputs = keras.Input((8, 8, 3))
    stem = layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    main = layers.Conv2D(8, 3, padding="same", name="main1")(stem)
    main = layers.BatchNormalization(name="main_bn")(layers.ReLU()(main))
    main = layers.Conv2D(8, 3, padding="same", name="main2")(main)
    short = layers.Conv2D(8, 1, name="shortcut")(stem)
    out = layers.Dense(2, name="head")(layers.GlobalAveragePooling2D()(layers.Add()([main, short])))
    groups = kc.depth_groups(keras.Model(inputs, out))
    assert names(groups) == [["stem"], ["main1", "shortcut"], ["main_bn"], ["main2"], ["head"]]


def test_every_variable_of_resnet18_is_grouped_once_in_depth_order():
    model = resnet18()
    groups = kc.depth_groups(model)
    grouped = [v for group in groups for v in group.variables]
    assert len(grouped) == len(model.trainable_variables)
    assert {id(v) for v in grouped} == {id(v) for v in model.trainable_variables}
    flat = names(groups)
    assert flat[0] == ["stem_conv"] and flat[-1] == ["head"]
    # Downsampling shortcuts sit beside the first conv of their block.
    assert ["stage2_block1_conv1", "stage2_block1_shortcut_conv"] in flat
    # A layer's variables (BN gamma and beta) stay together.
    bn = next(g for g in groups if g.layers[0].name == "stem_bn")
    assert sorted(v.name for v in bn.variables) == ["beta", "gamma"]


def test_nested_functional_model_is_expanded_in_place():
    inner_in = keras.Input((6,))
    inner_out = layers.Dense(5, name="in2")(layers.Dense(5, name="in1")(inner_in))
    inner = keras.Model(inner_in, inner_out, name="inner")
    inputs = keras.Input((6,))
    x = layers.Dense(6, name="before")(inputs)
    out = layers.Dense(1, name="after")(inner(x))
    groups = kc.depth_groups(keras.Model(inputs, out))
    assert names(groups) == [["before"], ["in1"], ["in2"], ["after"]]


def test_sequential_and_subclassed_models_follow_layer_order():
    seq = keras.Sequential([layers.Dense(4, name="a"), layers.ReLU(), layers.Dense(3, name="b")])
    seq.build((None, 5))
    assert names(kc.depth_groups(seq)) == [["a"], ["b"]]

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.first = layers.Dense(4, name="first")
            self.second = layers.Dense(2, name="second")

        def call(self, x):
            return self.second(self.first(x))

    net = Net()
    net(np.zeros((1, 3), "float32"))
    assert names(kc.depth_groups(net)) == [["first"], ["second"]]


def test_variables_owned_by_a_subclassed_model_need_explicit_groups():
    class Scaled(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2, name="dense")
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

        def call(self, x):
            return self.dense(x) * self.scale

    model = Scaled()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="without a group"):
        kc.depth_groups(model)
    groups = layer_groups.explicit_groups(model, [[model.dense], [model.scale]])
    assert [len(g.variables) for g in groups] == [2, 1]


def test_keras_hub_backbone_inside_a_classifier():
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16],
        stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
        image_shape=(16, 16, 3),
    )
    inputs = keras.Input((16, 16, 3))
    out = layers.Dense(3, name="head")(layers.GlobalAveragePooling2D()(backbone(inputs)))
    model = keras.Model(inputs, out)
    groups = kc.depth_groups(model)
    assert len(groups) > 5
    assert names(groups)[-1] == ["head"]
    assert sum(len(g.variables) for g in groups) == len(model.trainable_variables)
    # LeRaC trains it end to end.
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(8, 16, 16, 3)).astype("float32")
    history = model.fit(
        x,
        np.zeros(8),
        epochs=2,
        verbose=0,
        callbacks=[kc.LeRaC(duration=1, min_learning_rate=1e-7)],
    )
    assert history.history["lerac_lr_last"][0] == pytest.approx(1e-7, rel=1e-4)
    assert history.history["lerac_lr_last"][1] == pytest.approx(1e-3, rel=1e-5)


def test_patterns_group_layers_first_match_wins():
    model = resnet18(num_classes=2)
    groups = layer_groups.pattern_groups(
        model, ["stem_*", "stage1_*", ["stage2_*", "stage3_*"], "stage4_*", "head"]
    )
    assert [g.name.split("+")[0] for g in groups] == [
        "stem_conv",
        "stage1_block1_conv1",
        "stage2_block1_conv1",
        "stage4_block1_conv1",
        "head",
    ]
    assert sum(len(g.variables) for g in groups) == len(model.trainable_variables)


def test_keras_ops_between_layers_are_not_groups():
    # `keras.ops` calls on KerasTensors become graph nodes without variables (keras-hub
    # backbones are full of them): they are stepped over, not grouped, and do not crash.
    inputs = keras.Input((6,))
    x = layers.Dense(4, name="first")(inputs)
    x = keras.ops.tanh(x[:, :3]) * 2.0
    outputs = layers.Dense(2, name="second")(x)
    groups = kc.depth_groups(keras.Model(inputs, outputs))
    assert [[layer.name for layer in g.layers] for g in groups] == [["first"], ["second"]]
