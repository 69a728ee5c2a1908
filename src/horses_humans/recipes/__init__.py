"""Model recipes: a registry of named model families and one factory, `build_model(name, config)`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..config import HorsesHumansError, TrainConfig


@dataclass(frozen=True)
class Recipe:
    """Per-model facts as data: defaults, how to build it, and where its last conv layer is."""

    name: str
    build: Callable  # (image_size: int, config: TrainConfig) -> keras.Model
    description: str
    image_size: int = 150
    epochs: int = 15
    learning_rate: float = 1e-3
    last_conv_layer: str | Callable | None = None  # a layer path, or a function of the config giving one
    transfer: bool = False  # a frozen pretrained backbone ("backbone") with a trainable "head"


RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    """Add a recipe to the registry (one call per model family module)."""
    RECIPES[recipe.name] = recipe
    return recipe


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`, or a clear error listing the known ones."""
    if name not in RECIPES:
        raise HorsesHumansError(f"unknown recipe {name!r}: choose one of {', '.join(sorted(RECIPES))}.")
    return RECIPES[name]


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


def build_model(config: TrainConfig, dtype_policy: str = "float32"):
    """Build the (uncompiled) model of a resolved config under a Keras dtype policy."""
    import keras

    config = resolve(config)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype_policy)
    try:
        return get_recipe(config.recipe).build(config.image_size, config)
    finally:
        keras.config.set_dtype_policy(previous)


from . import cnn, transfer  # noqa: E402,F401  (register the recipes)
