"""The recipe registry: named model families and their per-model facts. Imports nothing of the package but config
and backbones (both free of Keras), so every recipe module can register itself here and anything can look recipes
up (as timm's _registry.py). Code that needs a part of a built model (its backbone, head, preprocessing) asks the
recipe, not a layer name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..config import HorsesHumansError, Registry
from .backbones import BACKBONE, HEAD, PREPROCESS, Backbone

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class Recipe:
    """Per-model facts as data: defaults, how to build it, where its last conv layer is, what it is built on."""

    name: str
    build: Callable  # (image_size: int, config: TrainConfig, output: ClassOutput) -> keras.Model
    description: str
    image_size: int = 150
    epochs: int = 15
    learning_rate: float = 1e-3
    last_conv_layer: str | Callable | None = None  # a layer path, or a function of the config giving one
    backbone: Backbone | None = None  # transfer recipes: the frozen pretrained network under a trainable head
    alias_of: str | None = None  # an alias (e.g. recommended): the recipe it trains, with `settings`
    settings: tuple[tuple[str, object], ...] = ()  # an alias's TrainConfig settings, (field, value) pairs

    @property
    def transfer(self) -> bool:
        """True for a frozen pretrained backbone with a trainable head (its head can train on cached features)."""
        return self.backbone is not None

    def backbone_layer(self, model: keras.Model) -> keras.Model:
        """The nested backbone model of a model built by this recipe."""
        return self.part(model, BACKBONE)

    def head_layer(self, model: keras.Model) -> keras.Model:
        """The nested head (features -> class probabilities) of a model built by this recipe."""
        return self.part(model, HEAD)

    def preprocess_layer(self, model: keras.Model):
        """The layer mapping raw 0-255 pixels to the backbone's input range."""
        return self.part(model, PREPROCESS)

    def feature_extractor(self, model: keras.Model) -> keras.Model:
        """pixels -> preprocess -> backbone(training=False): the frozen front of a model built by this recipe."""
        import keras  # the registry itself stays importable without Keras (the CLI's --help)

        inputs = keras.Input(model.input.shape[1:], name="pixels")
        features = self.backbone_layer(model)(self.preprocess_layer(model)(inputs), training=False)
        return keras.Model(inputs, features, name="features")

    def part(self, model: keras.Model, name: str):
        """A named part of a transfer model; a clear error for recipes that have none."""
        if not self.transfer:
            raise HorsesHumansError(
                f"recipe {self.name!r} has no {name}: only transfer recipes "
                f"({', '.join(sorted(r.name for r in RECIPES.values() if r.transfer))}) have one."
            )
        return model.get_layer(name)


def alias(name: str, target: Recipe, description: str, **settings) -> Recipe:
    """A recipe name that trains `target` with some TrainConfig settings (it shares the target's facts, so
    anything asking the registry about it, Grad-CAM's layer or the backbone, gets the target's answer)."""
    return replace(target, name=name, description=description, alias_of=target.name, settings=tuple(settings.items()))


RECIPES: Registry = Registry("recipe")
register = RECIPES.register  # one call per model family module
get_recipe = RECIPES.lookup
