"""Transfer learning (the reference's phase 3): a frozen ImageNet backbone, a small head on top.

Each model is Input(raw 0-255 pixels) -> the backbone's own preprocessing (a Rescaling layer, so it
serialises and exports with the model) -> backbone (called with training=False, so BatchNorm statistics
never drift, also when fine-tuned) -> head. The backbone and the head are nested models, so training can
compute backbone features once and fit the head alone; Recipe.backbone_layer / head_layer find them.
The backbones and their facts are registered in backbones.py; Keras is imported inside each builder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .backbones import BACKBONE, HEAD, INCEPTION_V3, MOBILENET_V2, PREPROCESS, Backbone
from .cnn import build_augmentation, build_output
from .registry import Recipe, register
from .weights import resolve_weights

if TYPE_CHECKING:
    import keras

    from .outputs import ClassOutput


def build_on(
    backbone: Backbone, build_head: Callable, image_size: int, name: str, config, output: ClassOutput
) -> keras.Model:
    """pixels -> (augmentation) -> the backbone's preprocessing -> frozen backbone -> head (ending in `output`'s
    layer)."""
    import keras

    base = backbone.build(image_size, resolve_weights(backbone.name, config.weights, config.alpha), config.alpha)
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    x = inputs
    for layer in build_augmentation(config.augmentation) if config.augment else []:
        x = layer(x)
    x = keras.layers.Rescaling(backbone.scale, offset=backbone.offset, name=PREPROCESS)(x)
    features = base(x, training=False)
    return keras.Model(inputs, build_head(base.output.shape[1:], config, output)(features), name=name)


def build_inception_head(feature_shape, config, output: ClassOutput) -> keras.Model:
    """Flatten -> Dense(1024, relu) -> Dropout(0.2) -> Dense(1, sigmoid), as the reference (Dense(N,
    softmax) for N > 2)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(feature_shape),
            layers.Flatten(name="flatten"),
            layers.Dense(1024, activation="relu", name="dense"),
            layers.Dropout(config.dropout or 0.2, name="dropout"),
            build_output(output),
        ],
        name=HEAD,
    )


def build_mobilenet_head(feature_shape, config, output: ClassOutput) -> keras.Model:
    """GlobalAveragePooling -> Dropout(0.2) -> Dense(1, sigmoid) (Dense(N, softmax) for N > 2)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(feature_shape),
            layers.GlobalAveragePooling2D(name="pool"),
            layers.Dropout(config.dropout or 0.2, name="dropout"),
            build_output(output),
        ],
        name=HEAD,
    )


def build_inception_v3(image_size: int, config, output: ClassOutput) -> keras.Model:
    """The reference's phase 3 model: 47.5M parameters, 38.5M trainable at 150x150 (two classes)."""
    return build_on(INCEPTION_V3, build_inception_head, image_size, "inception_v3", config, output)


def build_mobilenet_v2(image_size: int, config, output: ClassOutput) -> keras.Model:
    """MobileNetV2 (default alpha 0.35, the exact ImageNet weights available offline) + pooled head."""
    return build_on(MOBILENET_V2, build_mobilenet_head, image_size, "mobilenet_v2", config, output)


def transfer_recipe(name: str, build: Callable, backbone: Backbone, description: str, **defaults) -> Recipe:
    """A recipe on a backbone: its input size and Grad-CAM layer come from the backbone's registration."""
    return Recipe(
        name,
        build,
        description,
        image_size=backbone.image_size,
        backbone=backbone,
        last_conv_layer=f"{BACKBONE}/{backbone.last_conv_layer}",
        **defaults,
    )


register(
    transfer_recipe(
        "inception_v3",
        build_inception_v3,
        INCEPTION_V3,
        "InceptionV3 ImageNet features up to mixed7 + Dense 1024 head (reference phase 3)",
        epochs=15,
        learning_rate=1e-5,
    )
)
register(
    transfer_recipe(
        "mobilenet_v2",
        build_mobilenet_v2,
        MOBILENET_V2,
        "MobileNetV2 (alpha 0.35) ImageNet features + pooled linear head",
        epochs=6,
        learning_rate=1e-3,
    )
)
