"""Transfer learning (the reference's phase 3): a frozen ImageNet backbone, a small head on top.

Each model is Input(raw 0-255 pixels) -> the backbone's own preprocessing (a Rescaling layer, so it
serialises and exports with the model) -> backbone (called with training=False, so BatchNorm statistics
never drift, also when fine-tuned) -> head. The backbone and the head are nested models named
"backbone" and "head", so training can compute backbone features once and fit the head alone.
"""

from __future__ import annotations

import keras
from keras import layers

from ..weights import resolve_weights
from .registry import Recipe, register
from .cnn import build_augmentation


def build_inception_base(image_size: int, weights_path, alpha=None):
    """InceptionV3 without top, cut at `mixed7` (the reference's choice), frozen."""
    full = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(image_size, image_size, 3))
    if weights_path:
        full.load_weights(weights_path)
    base = keras.Model(full.input, full.get_layer("mixed7").output, name="backbone")
    base.trainable = False
    return base


def build_mobilenet_base(image_size: int, weights_path, alpha: float = 0.35):
    """MobileNetV2 without top, frozen (the weights file does not depend on the input size)."""
    base = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=alpha,
                                          input_shape=(image_size, image_size, 3), name="backbone")
    if weights_path:
        base.load_weights(weights_path)
    base.trainable = False
    return base


BACKBONES = {"inception_v3": build_inception_base, "mobilenet_v2": build_mobilenet_base}


def assemble(base, head, image_size: int, name: str, config) -> keras.Model:
    """pixels -> (augmentation) -> [-1, 1] (both backbones' preprocess_input) -> backbone -> head."""
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    x = inputs
    for layer in build_augmentation(config.augmentation) if config.augment else []:
        x = layer(x)
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(x)
    features = base(x, training=False)
    return keras.Model(inputs, head(features), name=name)


def build_inception_head(feature_shape, config) -> keras.Model:
    """Flatten -> Dense(1024, relu) -> Dropout(0.2) -> Dense(1, sigmoid), as the reference."""
    return keras.Sequential([
        keras.Input(feature_shape), layers.Flatten(name="flatten"), layers.Dense(1024, activation="relu", name="dense"),
        layers.Dropout(config.dropout or 0.2, name="dropout"), layers.Dense(1, activation="sigmoid", dtype="float32", name="output"),
    ], name="head")


def build_mobilenet_head(feature_shape, config) -> keras.Model:
    """GlobalAveragePooling -> Dropout(0.2) -> Dense(1, sigmoid)."""
    return keras.Sequential([
        keras.Input(feature_shape), layers.GlobalAveragePooling2D(name="pool"),
        layers.Dropout(config.dropout or 0.2, name="dropout"), layers.Dense(1, activation="sigmoid", dtype="float32", name="output"),
    ], name="head")


def build_inception_v3(image_size: int, config) -> keras.Model:
    """The reference's phase 3 model: 47.5M parameters, 38.5M trainable at 150x150."""
    base = build_inception_base(image_size, resolve_weights("inception_v3", config.weights))
    return assemble(base, build_inception_head(base.output.shape[1:], config), image_size, "inception_v3", config)


def build_mobilenet_v2(image_size: int, config) -> keras.Model:
    """MobileNetV2 (default alpha 0.35, the exact ImageNet weights available offline) + pooled head."""
    base = build_mobilenet_base(image_size, resolve_weights("mobilenet_v2", config.weights, config.alpha), config.alpha)
    return assemble(base, build_mobilenet_head(base.output.shape[1:], config), image_size, "mobilenet_v2", config)


register(Recipe("inception_v3", build_inception_v3, "InceptionV3 ImageNet features up to mixed7 + Dense 1024 head (reference phase 3)",
                image_size=150, epochs=15, learning_rate=1e-5, last_conv_layer="backbone/mixed7", transfer=True))
register(Recipe("mobilenet_v2", build_mobilenet_v2, "MobileNetV2 (alpha 0.35) ImageNet features + pooled linear head",
                image_size=224, epochs=6, learning_rate=1e-3, last_conv_layer="backbone/out_relu", transfer=True))
