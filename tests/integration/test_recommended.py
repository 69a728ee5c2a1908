"""`train --recipe recommended`: an alias resolved to a measured configuration and recorded in the run."""

import json

import numpy as np
import pytest

from horses_humans.cli.main import build_parser
from horses_humans.config import TrainConfig
from horses_humans.core.workspace import Workspace, quiet
from horses_humans.inference.predictor import Predictor
from horses_humans.models.recipes import RECIPES, alias, get_recipe, resolve
from horses_humans.runs.store import load_run
from horses_humans.training.loop import train


def recommended_settings() -> dict:
    return dict(get_recipe("recommended").settings)


def test_recommended_resolves_to_a_real_recipe_with_its_settings():
    config = resolve(TrainConfig(recipe="recommended"))
    target = get_recipe("recommended").alias_of
    assert config.recipe == target and RECIPES[target].alias_of is None
    assert config.recipe_alias == "recommended"
    for field, value in recommended_settings().items():
        assert getattr(config, field) == value
    assert config.image_size == RECIPES[target].image_size and config.epochs == RECIPES[target].epochs


def test_explicit_options_win_over_the_alias_settings():
    config = resolve(TrainConfig(recipe="recommended", seed=2, epochs=3, alpha=0.75))
    assert (config.seed, config.epochs, config.alpha) == (2, 3, 0.75)


def test_resolving_twice_changes_nothing():
    once = resolve(TrainConfig(recipe="recommended"))
    assert resolve(once) == once


def test_an_alias_fills_only_default_fields():
    shortcut = alias("shortcut", get_recipe("baseline"), "test alias", dropout=0.5, epochs=2)
    RECIPES.register(shortcut)
    try:
        assert resolve(TrainConfig(recipe="shortcut")).dropout == 0.5
        assert resolve(TrainConfig(recipe="shortcut", dropout=0.25)).dropout == 0.25
        assert resolve(TrainConfig(recipe="shortcut")).recipe == "baseline"
    finally:
        del RECIPES["shortcut"]


def test_the_train_command_takes_recommended():
    args = build_parser().parse_args(["train", "--recipe", "recommended"])
    assert args.recipe == "recommended"


@pytest.mark.parametrize("name", sorted(name for name, recipe in RECIPES.items() if recipe.alias_of is None))
def test_plain_recipes_resolve_to_themselves(name):
    config = resolve(TrainConfig(recipe=name))
    assert config.recipe == name and config.recipe_alias is None


def test_a_recommended_run_records_what_it_resolved_to(views_data, tmp_path):
    # random backbone weights at 64 px keep it fast and offline; the alias's other settings still apply
    config = TrainConfig(recipe="recommended", weights="none", image_size=64, epochs=1, batch_size=8, tta=True)
    run_dir = train(config, Workspace(views_data[0], tmp_path, views_data[1], quiet))
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["recipe"] == get_recipe("recommended").alias_of and saved["recipe_alias"] == "recommended"
    for field, value in recommended_settings().items():
        assert saved[field] == value
    assert load_run(run_dir).config.recipe == saved["recipe"]
    assert saved["tta"] and Predictor.from_run(run_dir).tta  # the run's test-time flips reach its predictor


class LeftColumn:
    """A stand-in model whose P(class 1) is the brightness of the image's left column: a mirror changes it."""

    def predict_on_batch(self, batch):
        return np.asarray(batch, "float32")[:, :, 0, 0].mean(axis=1, keepdims=True) / 255


def test_test_time_flips_average_an_image_and_its_mirror():
    pixels = np.zeros((2, 4, 4, 3), np.uint8)
    pixels[0, :, 0], pixels[1, :, -1] = 255, 51  # image 0: bright left column; image 1: dim right column
    predictor = Predictor(LeftColumn(), ["a", "b"], 4)
    np.testing.assert_allclose(predictor.predict_proba(pixels)[:, 1], [1.0, 0.0], atol=1e-6)
    predictor.tta = True
    np.testing.assert_allclose(predictor.predict_proba(pixels), [[0.5, 0.5], [0.9, 0.1]], atol=1e-6)
