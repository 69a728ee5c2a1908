"""Model recipes: a registry of named model families and one factory, `build_model(config, dtype_policy, output)`."""

from __future__ import annotations

from ..config import TrainConfig
from ..outputs import ClassOutput
from . import cnn, transfer  # noqa: F401  (each registers its recipes)
from .registry import RECIPES, Recipe, get_recipe, register  # noqa: F401  (the public names)


def last_conv_layer(config: TrainConfig) -> str | None:
    """The layer Grad-CAM looks at by default for this config's model (e.g. conv3, backbone/mixed7)."""
    layer = get_recipe(config.recipe).last_conv_layer
    return layer(config) if callable(layer) else layer


def resolve(config: TrainConfig) -> TrainConfig:
    """Fill the recipe's defaults into a config (epochs, image size, learning rate)."""
    recipe = get_recipe(config.recipe)
    return TrainConfig.from_dict({
        **config.to_dict(),
        "epochs": config.epochs or recipe.epochs,
        "image_size": config.image_size or recipe.image_size,
        "learning_rate": config.learning_rate or recipe.learning_rate,
    })


def build_model(config: TrainConfig, dtype_policy: str = "float32", output: ClassOutput | int = 2):
    """Build the (uncompiled) model of a resolved config under a Keras dtype policy, its output layer fit for
    `output`: a ClassOutput or a number of classes (two: one sigmoid unit, as the reference; more: a softmax)."""
    import keras

    config = resolve(config)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype_policy)
    try:
        return get_recipe(config.recipe).build(config.image_size, config, as_output(output))
    finally:
        keras.config.set_dtype_policy(previous)


def as_output(output: ClassOutput | int) -> ClassOutput:
    """A ClassOutput as given, or one for a number of classes (named class0, class1, ...: a model needs only how many)."""
    if isinstance(output, ClassOutput):
        return output
    return ClassOutput.for_classes([f"class{i}" for i in range(output)])

