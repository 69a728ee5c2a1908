"""explain.py: the rebuilt forward pass, activations and Grad-CAM (also through a frozen nested backbone),
augmentation draws and the misclassified ranking."""

import keras
import numpy as np
import pytest
from keras import layers

from horses_humans.analysis import explain
from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.data.layouts import VALIDATION
from horses_humans.data.pixels import load_split
from horses_humans.models.outputs import ClassOutput
from horses_humans.models.recipes import RECIPES, build_model, last_conv_layer
from horses_humans.runs.store import load_run


@pytest.fixture(scope="module")
def nested_model():
    """MobileNetV2 (random weights, frozen, nested) with augmentation and preprocessing layers in front; seeded, so
    the Grad-CAM tolerances below hold for the same weights every run (unseeded, one draw in many fell outside)."""
    keras.utils.set_random_seed(0)
    return build_model(TrainConfig(recipe="mobilenet_v2", weights="none", image_size=64, augment=True))


@pytest.fixture(scope="module")
def baseline(baseline_run, views_data):
    """(model, validation pixels) of the trained baseline run."""
    run = load_run(baseline_run)
    return run.load_model(), np.asarray(load_split(views_data[0], VALIDATION, 32, views_data[1], warn=print).x)


def evidence_model() -> keras.Model:
    """flip -> rescale -> frozen nested backbone (1x1 conv: channel 0 = red, 1 = blue) -> Sequential head
    (average pool, Dense: red counts for class 1, blue for class 0). Grad-CAM must find the coloured patch."""
    pixels, inner = keras.Input((16, 16, 3), name="pixels"), keras.Input((16, 16, 3))
    conv = layers.Conv2D(2, 1, activation="relu", name="colours")
    backbone = keras.Model(inner, conv(inner), name="backbone")
    backbone.trainable = False
    head = keras.Sequential(
        [
            keras.Input((16, 16, 2)),
            layers.GlobalAveragePooling2D(name="pool"),
            layers.Dense(1, activation="sigmoid", name="output"),
        ],
        name="head",
    )
    x = layers.Rescaling(1 / 255, name="preprocess")(layers.RandomFlip("horizontal", name="flip")(pixels))
    model = keras.Model(pixels, head(backbone(x, training=False)), name="evidence")
    conv.set_weights([np.array([[1, 0], [0, 0], [0, 1]], np.float32).reshape(1, 1, 3, 2), np.zeros(2, np.float32)])
    head.get_layer("output").set_weights([np.array([[8.0], [-8.0]], np.float32), np.array([-0.1], np.float32)])
    return model


def patch_image(channel: int) -> tuple[np.ndarray, np.ndarray]:
    """A black 16x16 image with a bright patch in one colour channel, and the patch's mask."""
    image = np.zeros((16, 16, 3), np.uint8)
    mask = np.zeros((16, 16), bool)
    mask[2:6, 9:14] = True
    image[mask, channel] = 255
    return image, mask


@pytest.mark.parametrize("channel, label", [(0, 1), (2, 0)])
def test_gradcam_points_at_the_evidence_for_the_predicted_class_through_a_frozen_nested_backbone(channel, label):
    model = evidence_model()
    image, mask = patch_image(channel)
    assert int(float(model(image[None])[0, 0]) >= 0.5) == label  # red -> class 1, blue -> class 0
    heatmap = explain.gradcam(model, image, "backbone/colours")
    assert heatmap.shape == (16, 16)
    np.testing.assert_allclose(heatmap[mask], 1.0, atol=1e-6)  # the patch is the evidence...
    assert heatmap[~mask].max() < 1e-6  # ...and nothing else is


def test_forward_pass_rebuilt_link_by_link_gives_the_models_output(baseline, nested_model):
    model, x = baseline
    for m, batch in ((model, x[:4]), (nested_model, np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3)))):
        logits, _ = explain.forward(m, batch.astype(np.float32), [])
        expected = np.asarray(m(batch, training=False)).ravel()
        np.testing.assert_allclose(1 / (1 + np.exp(-np.asarray(logits).ravel())), expected, rtol=1e-4, atol=1e-6)


def test_layer_paths_reach_inside_the_backbone_and_head(nested_model):
    links = [path for path, _ in explain.chain(nested_model)]
    assert links == [
        "flip",
        "rotate",
        "zoom",
        "stretch",
        "preprocess",
        "backbone",
        "head/pool",
        "head/dropout",
        "head/output",
    ]
    paths = explain.layer_paths(nested_model)
    assert "backbone/out_relu" in paths and "backbone/block_13_expand_relu" in paths


def test_activations_of_top_level_layers_match_their_output_shapes(baseline):
    model, x = baseline
    names = explain.feature_layers(model)
    assert names == ["conv1", "pool1", "conv2", "pool2", "conv3", "pool3"]  # every conv/pool layer, as the reference
    acts = explain.activations(model, x[0], names)
    assert {n: a.shape for n, a in acts.items()} == {n: tuple(model.get_layer(n).output.shape[1:]) for n in names}
    assert all(a.dtype == np.float32 and a.min() >= 0 for a in acts.values())  # ReLU / max-pool outputs


def test_activations_inside_a_nested_backbone_match_their_output_shapes(nested_model):
    names = explain.feature_layers(nested_model)
    backbone = nested_model.get_layer("backbone")
    assert names and all(n.startswith("backbone/") for n in names) and names[-1] == "backbone/out_relu"
    sizes = [backbone.get_layer(n.split("/", 1)[1]).output.shape[1] for n in names]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)  # one layer per stage
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    acts = explain.activations(nested_model, image, names)
    for name in names:
        assert acts[name].shape == tuple(backbone.get_layer(name.split("/", 1)[1]).output.shape[1:])
        assert np.isfinite(acts[name]).all() and acts[name].std() > 0


@pytest.mark.parametrize("layer", ["backbone/out_relu", "backbone/block_13_expand_relu"])
def test_gradcam_through_frozen_backbone_with_augmentation_in_front(nested_model, layer):
    images = np.random.default_rng(2).integers(0, 256, (3, 64, 64, 3)).astype(np.uint8)
    heatmaps = explain.gradcam(nested_model, images, layer)
    assert heatmaps.shape == (3, 64, 64) and heatmaps.dtype == np.float32
    assert heatmaps.min() >= 0 and np.allclose(heatmaps.max(axis=(1, 2)), 1.0, atol=0.05)
    assert (heatmaps.std(axis=(1, 2)) > 0.05).all()  # not constant


def test_gradcam_equals_cam_for_a_pooled_linear_head(nested_model):
    """With GlobalAveragePooling -> Dense, each signed map sums exactly to the explained class's score minus its
    share of the bias (+b for class 1, -b for class 0): gradients reach the frozen backbone's output, with the right
    sign; by default the predicted class is explained (its score is |logit|)."""
    images = np.random.default_rng(3).integers(0, 256, (4, 64, 64, 3)).astype(np.float32)
    bias = float(nested_model.get_layer("head").get_layer("output").bias.numpy()[0])
    maps1, scores1 = explain.class_activation_maps(nested_model, images, "backbone/out_relu", class_index=1)
    maps0, scores0 = explain.class_activation_maps(nested_model, images, "backbone/out_relu", class_index=0)
    np.testing.assert_allclose(maps1.sum(axis=(1, 2)), scores1 - bias, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(maps0.sum(axis=(1, 2)), scores0 + bias, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scores0, -scores1, rtol=1e-6)
    maps, scores = explain.class_activation_maps(nested_model, images, "backbone/out_relu")
    np.testing.assert_allclose(scores, np.abs(scores1), rtol=1e-6)
    np.testing.assert_allclose(maps, np.where((scores1 >= 0)[:, None, None], maps1, maps0), rtol=1e-5, atol=1e-6)


def colour_model(classes: int = 3) -> keras.Model:
    """rescale -> 1x1 conv (channel k = colour k: red, green, blue) -> average pool -> Dense(softmax): colour k
    is evidence for class k. Grad-CAM of a class must find its colour's patch."""
    pixels = keras.Input((16, 16, 3), name="pixels")
    conv = layers.Conv2D(3, 1, activation="relu", name="colours")
    output = layers.Dense(classes, activation="softmax", name="output")
    model = keras.Sequential(
        [
            pixels,
            layers.Rescaling(1 / 255, name="preprocess"),
            conv,
            layers.GlobalAveragePooling2D(name="pool"),
            output,
        ],
        name="colours",
    )
    conv.set_weights([np.eye(3, dtype=np.float32).reshape(1, 1, 3, 3), np.zeros(3, np.float32)])
    output.set_weights([8 * np.eye(3, classes, dtype=np.float32), np.zeros(classes, np.float32)])
    return model


def test_gradcam_of_a_softmax_explains_the_predicted_or_the_chosen_class():
    model = colour_model()
    image, red = patch_image(0)
    blue = np.zeros((16, 16), bool)
    blue[10:14, 1:5] = True
    image[blue, 2] = 128  # a dimmer blue patch: red wins
    assert int(np.argmax(model(image[None])[0])) == 0
    for class_index, mask in ((None, red), (0, red), (2, blue)):
        heatmap = explain.gradcam(model, image, "colours", class_index)
        np.testing.assert_allclose(heatmap[mask], 1.0, atol=1e-6)
        assert heatmap[~mask].max() < 1e-6, class_index
    per_image = explain.gradcam(model, np.stack([image, image]), "colours", [0, 2])  # one class per image
    np.testing.assert_allclose(per_image[1][blue], 1.0, atol=1e-6)
    logits, _ = explain.forward(model, image[None].astype(np.float32), [])
    np.testing.assert_allclose(keras.ops.softmax(logits).numpy(), model(image[None]).numpy(), rtol=1e-5)
    with pytest.raises(HorsesHumansError, match="class index 3 is out of range: the model has 3 classes"):
        explain.gradcam(model, image, "colours", 3)


def test_gradcam_on_a_trained_cnn(baseline):
    model, x = baseline
    heatmaps = explain.gradcam(model, x[:8], "conv3")
    assert heatmaps.shape == (8, 32, 32) and heatmaps.min() >= 0 and heatmaps.max() <= 1
    peaks = heatmaps.max(axis=(1, 2))
    assert np.all(np.isclose(peaks, 1.0, atol=0.05) | (peaks == 0))  # scaled to 1, or empty (no positive evidence)
    assert (heatmaps.std(axis=(1, 2)) > 0).sum() >= 4
    np.testing.assert_allclose(
        explain.gradcam(model, x[0], "conv3"), heatmaps[0], atol=1e-5
    )  # one image == batch of one


def test_unknown_or_flat_layers_are_clear_errors(baseline, nested_model):
    model, x = baseline
    with pytest.raises(HorsesHumansError, match="no layer 'conv9'.*conv1"):
        explain.gradcam(model, x[0], "conv9")
    with pytest.raises(HorsesHumansError, match="no layer 'backbone/nope'"):
        explain.activations(nested_model, np.zeros((64, 64, 3), np.uint8), ["backbone/nope"])
    with pytest.raises(HorsesHumansError, match="spatial output"):
        explain.gradcam(model, x[0], "dense")


def test_augmentation_layers_are_the_models_own_and_draw_differently(baseline, nested_model):
    assert explain.augmentation_layers(baseline[0]) == []
    found = explain.augmentation_layers(nested_model)
    assert [layer.name for layer in found] == ["flip", "rotate", "zoom", "stretch"]
    image = np.random.default_rng(4).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    draws = explain.augment(found, image, 6)
    assert draws.shape == (6, 64, 64, 3) and draws.dtype == np.uint8
    assert len({d.tobytes() for d in draws}) == 6 and not any(np.array_equal(d, image) for d in draws)


def test_misclassified_are_the_wrong_ones_worst_first():
    y = np.array([0, 0, 1, 1, 0, 1])
    output = ClassOutput.for_classes(["horses", "humans"])
    p = output.probabilities([0.1, 0.7, 0.2, 0.9, 0.99, 0.45])
    assert explain.misclassified(y, p, output).tolist() == [
        4,
        2,
        1,
        5,
    ]  # losses: -log(.01), -log(.2), -log(.3), -log(.45)
    strict = ClassOutput(("horses", "humans"), "sigmoid", threshold=0.8)
    assert explain.misclassified(y, p, strict).tolist() == [4, 2, 5]
    np.testing.assert_allclose(explain.losses([1, 0], output.probabilities([0.5, 0.5])), [np.log(2)] * 2)
    assert explain.misclassified(np.array([], int), np.zeros((0, 2)), output).tolist() == []


def test_misclassified_of_three_classes_ranks_by_the_probability_of_the_true_class():
    output = ClassOutput.for_classes(["cats", "dogs", "owls"])
    y = np.array([0, 1, 2, 2])
    p = np.array(
        [[0.4, 0.5, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.45, 0.35]]
    )  # wrong: 0 (p true .4), 2 (.1), 3 (.35)
    assert explain.misclassified(y, p, output).tolist() == [2, 3, 0]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_explains_at_its_last_conv_layer(name):
    """The rebuilt forward pass matches the model, and Grad-CAM and activations work, for every registered recipe."""
    size = 75 if name == "inception_v3" else 48  # InceptionV3's smallest input
    config = TrainConfig(recipe=name, weights="none", image_size=size)
    model = build_model(config)
    images = np.random.default_rng(5).integers(0, 256, (2, size, size, 3)).astype(np.uint8)
    logits, _ = explain.forward(model, images.astype(np.float32), [])
    np.testing.assert_allclose(
        1 / (1 + np.exp(-np.asarray(logits).ravel())),
        np.asarray(model(images, training=False)).ravel(),
        rtol=1e-4,
        atol=1e-6,
    )
    layer = last_conv_layer(config)
    heatmaps = explain.gradcam(model, images, layer)
    assert heatmaps.shape == (2, size, size) and 0 <= heatmaps.min() and heatmaps.max() <= 1
    assert list(explain.activations(model, images[0], [layer])[layer].shape) == [
        int(d) for d in layer_output_shape(model, layer)
    ]


def layer_output_shape(model, path: str):
    """The (h, w, c) output shape of a layer path, read from the model's own graph."""
    outer, _, inner = path.partition("/")
    layer = model.get_layer(outer).get_layer(inner) if inner else model.get_layer(outer)
    return layer.output.shape[1:]
