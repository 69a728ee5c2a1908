"""The reference project's phase 1 and 2 models: a small CNN, without and with data augmentation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import AUGMENTATIONS, HorsesHumansError
from .registry import Recipe, register

if TYPE_CHECKING:
    import keras

    from .outputs import ClassOutput

# Keras is imported inside each builder: registering the recipes (the CLI's parser, --help) must not start TensorFlow.


def build_cnn_body(image_size: int, config, output: ClassOutput) -> list:
    """Rescaling, Conv + MaxPool per config.conv_filters (reference: 16-32-64, 3x3), Flatten, (Dropout),
    Dense 512, the output layer (the reference's Dense 1 sigmoid for two classes)."""
    import keras
    from keras import layers

    check_fits(image_size, config.conv_filters, config.kernel_size)
    regularizer = keras.regularizers.L2(config.l2) if config.l2 else None
    body = [layers.Rescaling(1.0 / 255, name="rescale")]
    for i, filters in enumerate(config.conv_filters, start=1):
        body += [
            layers.Conv2D(filters, config.kernel_size, activation="relu", name=f"conv{i}"),
            layers.MaxPooling2D(2, name=f"pool{i}"),
        ]
    body.append(layers.Flatten(name="flatten"))
    if config.dropout:
        body.append(layers.Dropout(config.dropout, name="dropout"))
    body += [
        layers.Dense(512, activation="relu", kernel_regularizer=regularizer, name="dense"),
        build_output(output),
    ]
    return body


def build_output(output: ClassOutput):
    """The output layer every recipe ends in: Dense(1, sigmoid) for two classes, Dense(N, softmax) for N > 2."""
    from keras import layers

    # float32 even under mixed precision, so the loss and probabilities stay exact
    return layers.Dense(output.units, activation=output.kind, dtype="float32", name="output")


def check_fits(image_size: int, conv_filters: tuple, kernel_size: int) -> None:
    """A clear error when the conv/pool blocks would shrink the image to nothing."""
    side = image_size
    for _ in conv_filters:
        side = (side - kernel_size + 1) // 2
    if side < 1:
        raise HorsesHumansError(
            f"{len(conv_filters)} conv blocks with kernel {kernel_size} shrink a {image_size}px image "
            "to nothing: use fewer blocks, a smaller kernel or a larger --image-size."
        )


def build_augmentation(preset: str = "reference") -> list:
    """Augmentation layers with a fixed output shape (all identity at inference).

    "reference" is the reference's stack: RandomFlip, RandomRotation(0.2), RandomZoom(0.2),
    RandomHeight(0.2), RandomWidth(0.2). RandomHeight/RandomWidth change the image shape, which
    Flatten/Dense cannot take (keras-team/keras#14864), and Keras 3 keeps them only as legacy layers.
    Resizing back to the input size after them would undo the very stretch they make, so the stretch
    is done in place: a RandomZoom with independent height and width factors of +-20%.
    Note RandomRotation's factor is a fraction of a full turn: 0.2 is +-72 degrees (the course this
    comes from rotated by +-40). "mild" keeps everything but rotates by +-15 degrees; "flip" only flips.
    """
    if preset not in AUGMENTATIONS:
        raise HorsesHumansError(f"--augmentation {preset!r}: choose one of {', '.join(AUGMENTATIONS)}.")
    from keras import layers

    flip = [layers.RandomFlip("horizontal", name="flip")]
    if preset == "flip":
        return flip
    rotation = 0.2 if preset == "reference" else 15 / 360
    return flip + [
        layers.RandomRotation(rotation, name="rotate"),
        layers.RandomZoom(0.2, name="zoom"),
        layers.RandomZoom(height_factor=(-0.2, 0.2), width_factor=(-0.2, 0.2), name="stretch"),
    ]


def build_baseline(image_size: int, config, output: ClassOutput) -> keras.Model:
    """The reference CNN: 9,494,561 parameters at 150x150 for two classes (a softmax over N > 2: 513 * (N - 1) more)."""
    import keras

    return keras.Sequential(
        [keras.Input((image_size, image_size, 3), name="pixels"), *build_cnn_body(image_size, config, output)],
        name="baseline",
    )


def build_augmented(image_size: int, config, output: ClassOutput) -> keras.Model:
    """The reference CNN with augmentation layers in front (active only in training)."""
    import keras

    inputs = [keras.Input((image_size, image_size, 3), name="pixels")]
    return keras.Sequential(
        [*inputs, *build_augmentation(config.augmentation), *build_cnn_body(image_size, config, output)],
        name="augmented",
    )


def last_conv(config) -> str:
    """Name of the last conv layer of a CNN built from `config` (conv3 for the reference)."""
    return f"conv{len(config.conv_filters)}"


register(
    Recipe(
        "baseline",
        build_baseline,
        "reference CNN (Conv 16-32-64, Dense 512), no augmentation",
        last_conv_layer=last_conv,
    )
)
register(
    Recipe(
        "augmented",
        build_augmented,
        "reference CNN with flip/rotate/zoom/stretch augmentation",
        last_conv_layer=last_conv,
    )
)
