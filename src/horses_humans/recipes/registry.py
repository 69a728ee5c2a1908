"""The recipe registry: named model families and their per-model facts. Imports nothing of the package but config,
so every recipe module can register itself here and anything can look recipes up (as timm's _registry.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..config import HorsesHumansError


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
