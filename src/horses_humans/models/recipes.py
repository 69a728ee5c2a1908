"""Model recipes: a registry of named model families and one factory, `build_model(config, dtype_policy, output)`."""

from __future__ import annotations

from ..config import DEFAULT_RESIZE, TrainConfig
from . import cnn, transfer  # noqa: F401  (each registers its recipes)
from .outputs import ClassOutput
from .registry import RECIPES, Recipe, alias, get_recipe, register  # noqa: F401  (the public names)

# The recipe README recommends for real photos, measured by scripts/real_photos.py (docs/real-photos.md); its center
# crop by scripts/resize_real_photos.py (crop answered as many or more real photos right as squash on seeds 0-2). The
# alias's settings fill the fields a command line leaves at their defaults; the run's config.json records the result.
register(
    alias(
        "recommended",
        get_recipe("mobilenet_v2"),
        "the best measured on real photos (docs/real-photos.md): "
        "MobileNetV2 alpha 0.35, ImageNet weights, a linear head, test-time flips, a center crop of non-square photos",
        alpha=0.35,
        tta=True,
        resize="crop",
    )
)


def last_conv_layer(config: TrainConfig) -> str | None:
    """The layer Grad-CAM looks at by default for this config's model (e.g. conv3, backbone/mixed7)."""
    layer = get_recipe(config.recipe).last_conv_layer
    return layer(config) if callable(layer) else layer


def resolve(config: TrainConfig) -> TrainConfig:
    """Fill the recipe's defaults into a config (epochs, image size, learning rate, resize), an alias resolved
    first."""
    config = resolve_alias(config)
    recipe = get_recipe(config.recipe)
    return TrainConfig.from_dict(
        {
            **config.to_dict(),
            "epochs": config.epochs or recipe.epochs,
            "image_size": config.image_size or recipe.image_size,
            "learning_rate": config.learning_rate or recipe.learning_rate,
            "resize": config.resize or DEFAULT_RESIZE,  # an alias (recommended) may set its own
        }
    )


def resolve_alias(config: TrainConfig) -> TrainConfig:
    """An alias's config as the recipe it names (recipe_alias keeps the name asked for); its settings fill only the
    fields still at their defaults, so an explicit option (--seed, --epochs, --alpha 1.0) wins."""
    recipe = get_recipe(config.recipe)
    if recipe.alias_of is None:
        return config
    given, defaults = config.to_dict(), TrainConfig().to_dict()
    settings = {k: v for k, v in recipe.settings if given[k] == defaults[k]}
    return TrainConfig.from_dict({**given, **settings, "recipe": recipe.alias_of, "recipe_alias": recipe.name})


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
    """A ClassOutput as given, or one for a number of classes (named class0, class1, ...: a model needs only how
    many)."""
    if isinstance(output, ClassOutput):
        return output
    return ClassOutput.for_classes([f"class{i}" for i in range(output)])
