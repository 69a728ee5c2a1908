"""Recipes: parametrized over the registry, so a new recipe is tested automatically."""

import keras
import numpy as np
import pytest

from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.models.recipes import RECIPES, build_model, get_recipe, resolve

# The reference project's parameter counts (Dense(512) on the flattened last pool dominates).
PARAMS = {
    ("baseline", 150): 9_494_561,
    ("baseline", 300): 40_165_409,
    ("augmented", 150): 9_494_561,
    ("augmented", 300): 40_165_409,
}


@pytest.mark.parametrize("classes", [2, 3, 5])
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_builds_and_takes_raw_pixels(name, classes):
    """Two classes: the reference's one sigmoid unit; more: a softmax, one unit per class."""
    size = 75 if name == "inception_v3" else 32  # InceptionV3's smallest input
    model = build_model(TrainConfig(recipe=name, image_size=size, weights="none"), output=classes)
    pixels = np.random.default_rng(0).integers(0, 256, (2, size, size, 3)).astype("uint8")
    out = np.asarray(model(pixels, training=False))
    assert out.shape == (2, 1 if classes == 2 else classes)
    assert np.all((out >= 0) & (out <= 1))
    if classes > 2:
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    output_layer = (
        model.get_layer("head").get_layer("output") if get_recipe(name).transfer else model.get_layer("output")
    )
    assert output_layer.activation is (keras.activations.sigmoid if classes == 2 else keras.activations.softmax)


def test_a_class_output_or_a_class_count_builds_the_same_head():
    from horses_humans.models.outputs import ClassOutput

    config = TrainConfig(recipe="baseline", image_size=32)
    named = build_model(config, output=ClassOutput.for_classes(["cats", "dogs", "owls"]))
    assert named.outputs[0].shape[-1] == build_model(config, output=3).outputs[0].shape[-1] == 3
    assert build_model(config).outputs[0].shape[-1] == 1  # the default: two classes, as the reference


@pytest.mark.parametrize("name,size", sorted(PARAMS))
def test_reference_parameter_counts(name, size):
    assert build_model(TrainConfig(recipe=name, image_size=size)).count_params() == PARAMS[(name, size)]
    assert build_model(TrainConfig(recipe=name, image_size=size), output=2).count_params() == PARAMS[(name, size)]


@pytest.mark.parametrize("classes", [3, 5])
def test_more_classes_only_widen_the_output_layer(classes):
    # Dense(512 -> 1) becomes Dense(512 -> N): 513 * (N - 1) more weights
    assert build_model(
        TrainConfig(recipe="baseline", image_size=150), output=classes
    ).count_params() == 9_494_561 + 513 * (classes - 1)


def test_augmentation_is_identity_at_inference_and_random_in_training():
    base = build_model(TrainConfig(recipe="baseline", image_size=48))
    aug = build_model(TrainConfig(recipe="augmented", image_size=48))
    aug.set_weights(base.get_weights())  # augmentation layers have no weights
    x = np.random.default_rng(1).integers(0, 256, (4, 48, 48, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(aug(x, training=False)), np.asarray(base(x, training=False)), rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(np.asarray(aug(x, training=True)), np.asarray(base(x, training=False)))


def test_regularisation_options_add_dropout_and_l2():
    model = build_model(TrainConfig(recipe="baseline", image_size=48, dropout=0.5, l2=1e-3))
    assert any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    model(np.zeros((1, 48, 48, 3), "float32"))
    assert len(model.losses) == 1  # the L2 penalty on the dense kernel


def test_mixed_precision_keeps_float32_output_and_does_not_leak_global_policy():
    model = build_model(TrainConfig(recipe="baseline", image_size=48), "mixed_bfloat16")
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    assert model.get_layer("output").compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"


def test_resolve_fills_recipe_defaults_and_unknown_recipe_is_clear():
    config = resolve(TrainConfig(recipe="baseline"))
    assert (config.epochs, config.image_size, config.learning_rate) == (15, 150, 1e-3)
    assert resolve(TrainConfig(recipe="baseline", epochs=3)).epochs == 3
    with pytest.raises(HorsesHumansError, match="unknown recipe 'resnet'.*augmented, baseline"):
        get_recipe("resnet")


@pytest.mark.parametrize(
    "preset,names",
    [
        ("reference", ["flip", "rotate", "zoom", "stretch"]),
        ("mild", ["flip", "rotate", "zoom", "stretch"]),
        ("flip", ["flip"]),
    ],
)
def test_augmentation_presets(preset, names):
    model = build_model(TrainConfig(recipe="augmented", image_size=48, augmentation=preset))
    random_layers = [layer.name for layer in model.layers if layer.name in ("flip", "rotate", "zoom", "stretch")]
    assert random_layers == names
    if "rotate" in names:
        expected = 0.2 if preset == "reference" else 15 / 360  # Keras' factor is a fraction of a full turn
        assert model.get_layer("rotate").factor == (-expected, expected)


def test_unknown_augmentation_is_clear():
    with pytest.raises(HorsesHumansError, match="--augmentation 'strong'"):
        TrainConfig(recipe="augmented", augmentation="strong")


def test_architecture_options_change_the_cnn_and_its_gradcam_layer():
    from horses_humans.models.recipes import last_conv_layer

    config = TrainConfig(recipe="baseline", image_size=150, conv_filters=(32, 64, 128, 128), kernel_size=5)
    model = build_model(config)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64, 128, 128] and convs[0].kernel_size == (5, 5)
    assert last_conv_layer(config) == "conv4" and last_conv_layer(TrainConfig(recipe="baseline")) == "conv3"
    # 150 -5+1 =146 /2 =73 -4 =69 /2 =34 -4 =30 /2 =15 -4 =11 /2 =5: 5*5*128 flattened into Dense 512
    assert model.get_layer("dense").kernel.shape == (5 * 5 * 128, 512)
    assert TrainConfig.from_dict(config.to_dict()) == config  # JSON turns the tuple into a list and back
    with pytest.raises(HorsesHumansError, match="--kernel-size 4"):
        TrainConfig(kernel_size=4)
    with pytest.raises(HorsesHumansError, match="--conv-filters"):
        TrainConfig(conv_filters=())


def test_resize_defaults_to_squash_for_the_reference_recipes_and_an_explicit_one_wins():
    for name in ("baseline", "augmented", "inception_v3", "mobilenet_v2"):
        assert resolve(TrainConfig(recipe=name)).resize == "squash"
    assert resolve(TrainConfig(recipe="recommended")).resize == "crop"  # measured: scripts/resize_real_photos.py
    for mode in ("squash", "crop", "pad"):
        assert resolve(TrainConfig(recipe="recommended", resize=mode)).resize == mode
        assert resolve(TrainConfig(recipe="baseline", resize=mode)).resize == mode
