"""`train --cache-dir X` caches in X alone: decoded pixels, backbone features and the validation split that
calibration and the unsure rule read after the fit (issue 18: calibration used to decode it again into the default
cache, which the autouse isolated_cache fixture points at an empty folder of its own here)."""

from pathlib import Path

import pytest

from horses_humans.cli.main import main

from ..synthetic import make_dataset

TINY = ["--epochs", "1", "--image-size", "32", "--batch-size", "8", "--seed", "1", "--precision", "float32"]
RECIPES = {"baseline": [], "mobilenet_v2": ["--weights", "none"]}  # pixels alone; pixels and cached features


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow  # trains two real (tiny) runs
@pytest.mark.parametrize("recipe", RECIPES)
def test_train_with_cache_dir_writes_nothing_to_the_default_cache(recipe, isolated_cache, tmp_path, capsys):
    data = make_dataset(tmp_path / "data", train_per_class=4, val_per_class=2)
    given = tmp_path / "given-cache"
    argv = ["train", "--recipe", recipe, *RECIPES[recipe], *TINY, "--data-dir", str(data)]
    assert main([*argv, "--runs-dir", str(tmp_path / "runs"), "--cache-dir", str(given)]) == 0
    assert files_under(isolated_cache) == []  # $HORSES_HUMANS_CACHE, the default cache: untouched
    cached = files_under(given)
    assert any(name.endswith(".npy") for name in cached), cached  # the run did cache, in the folder it was given
    if recipe == "mobilenet_v2":
        assert any(name.startswith("features/") for name in cached), cached
