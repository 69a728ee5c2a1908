"""train --extra-data DIR: extra class folders join the training side (a `neither` folder adds the unsure class),
recorded in data.json so they can be found again; a missing folder or an unknown class is a one-line error."""

import json
from pathlib import Path

import numpy as np
import pytest

from horses_humans.cli.main import main
from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.core.workspace import Workspace, quiet
from horses_humans.data.pixels import joined, load_extra
from horses_humans.runs.record import load_run_extra
from horses_humans.runs.store import load_run
from horses_humans.training.loop import train

from ..synthetic import make_classes, make_dataset
from ..tiers import slow_fixture

TINY = dict(recipe="baseline", epochs=1, image_size=32, batch_size=8, conv_filters=(4,), precision="float32")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("official"), train_per_class=8, val_per_class=4)


@pytest.fixture(scope="module")
def extras(tmp_path_factory) -> tuple[Path, Path]:
    """Two extra folders: more humans, and horses plus `neither` (class 2's green cast)."""
    rng = np.random.default_rng(1)
    more_humans = make_classes(tmp_path_factory.mktemp("more") / "photos", ["horses", "humans"], 3, rng)
    (more_humans / "horses").rename(more_humans.parent / "unused")  # a folder of one class is fine
    negatives = make_classes(tmp_path_factory.mktemp("neg") / "negatives", ["horses", "humans", "neither"], 5, rng)
    for path in (negatives / "humans").iterdir():
        path.unlink()
    (negatives / "humans").rmdir()
    return more_humans, negatives


@pytest.fixture(scope="module")
@slow_fixture
def extra_run(data, extras, tmp_path_factory) -> Path:
    config = TrainConfig(**TINY, extra_data=tuple(map(str, extras)))
    return train(config, Workspace(data, tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("cache"), quiet))


def test_repeatable_option_builds_the_config():
    from horses_humans.cli.main import build_parser
    from horses_humans.cli.options import config_from_args

    args = build_parser().parse_args(["train", "--extra-data", "a", "--extra-data", "b/c"])
    assert config_from_args(TrainConfig, args).extra_data == ("a", "b/c")
    assert config_from_args(TrainConfig, build_parser().parse_args(["train"])).extra_data == ()
    assert TrainConfig.from_dict(TrainConfig(extra_data=("a",)).to_dict()).extra_data == ("a",)  # JSON gives a list


def test_extra_images_join_training_and_neither_becomes_a_class(extra_run, extras):
    run = load_run(extra_run)
    assert run.class_names == ["horses", "humans", "neither"]
    config = json.loads((extra_run / "config.json").read_text())
    assert config["extra_data"] == [str(e) for e in extras]
    record = json.loads((extra_run / "data.json").read_text())
    assert [e["folder"] for e in record["extra"]] == [str(e.resolve()) for e in extras]
    assert sorted(record["extra"][0]["files"]) == [f"humans/humans-{i:02d}.png" for i in range(3)]
    assert len(record["extra"][1]["files"]) == 10 and record["class_names"] == run.class_names
    assert all(len(digest) == 64 for e in record["extra"] for digest in e["files"].values())
    # the training side records the data set's own files; the extra ones are only under "extra"
    assert len(record["sides"]["train"]["files"]) == 16
    assert json.loads((extra_run / "environment.json").read_text())["train_images"] == 16


def test_the_run_finds_its_extra_folders_again(extra_run):
    more, negatives = load_run_extra(load_run(extra_run), log=lambda s: None)
    assert len(more) == 3 and set(more.y) == {1}
    assert len(negatives) == 10 and sorted(set(negatives.y)) == [0, 2]
    assert negatives.x.shape == (10, 32, 32, 3)


def test_a_changed_extra_folder_is_named(extra_run, extras, tmp_path):
    lines = []
    victim = extras[0] / "humans" / "humans-02.png"
    saved = victim.read_bytes()
    victim.unlink()
    try:
        more, _ = load_run_extra(load_run(extra_run), log=lines.append)
    finally:
        victim.write_bytes(saved)
    assert len(more) == 2 and any("1 missing" in line and str(extras[0]) in line for line in lines)


def test_missing_folder_and_unknown_class_are_one_line_errors(data, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert (
        main(
            [
                "train",
                "--recipe",
                "baseline",
                "--data-dir",
                str(data),
                "--runs-dir",
                str(tmp_path / "runs"),
                "--extra-data",
                str(missing),
                "--epochs",
                "1",
            ]
        )
        != 0
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --extra-data") and str(missing) in err and len(err.splitlines()) == 1
    make_classes(tmp_path / "zoo", ["cats"], 1, np.random.default_rng(0))
    with pytest.raises(HorsesHumansError, match=r"'cats' is not a class of the data set \(horses, humans, neither\)"):
        load_extra([tmp_path / "zoo"], ["horses", "humans"], 32, tmp_path / "cache", allowed=("neither",))
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("metrics.json"))


def test_neither_is_added_only_when_a_folder_has_it(extras, tmp_path):
    names, splits = load_extra([extras[0]], ["horses", "humans"], 32, tmp_path, lambda s: None, ("neither",))
    assert names == ["horses", "humans"] and len(splits) == 1
    names, splits = load_extra(list(extras), ["horses", "humans"], 32, tmp_path, lambda s: None, ("neither",))
    assert names == ["horses", "humans", "neither"]
    both = joined("train", splits)
    assert len(both) == 13 and both.key not in (splits[0].key, splits[1].key)
    assert both.files[:3] == splits[0].files and both.files[3].startswith(str(extras[1].resolve()))


@pytest.mark.slow
def test_backbone_features_of_a_joined_split_are_cached_part_by_part(data, extras, tmp_path):
    from horses_humans.data.pixels import load_dataset
    from horses_humans.models.recipes import build_model, get_recipe
    from horses_humans.training.features import cached_features

    recipe, lines = get_recipe("mobilenet_v2"), []
    model = build_model(TrainConfig(recipe="mobilenet_v2", weights="none", image_size=32), "float32", 2)
    train_split, _ = load_dataset(data, 32, tmp_path, lambda s: None)
    _, (more, _) = load_extra(list(extras), ["horses", "humans"], 32, tmp_path, lambda s: None, ("neither",))
    both = cached_features(recipe, model, joined("train", [train_split, more]), tmp_path, lines.append)
    assert len(lines) == 2  # one computation per part
    alone = cached_features(recipe, model, train_split, tmp_path, lines.append)
    assert len(lines) == 2 and both.shape[0] == 19 and np.array_equal(both[:16], alone)  # the renders' part reused


def test_the_model_card_counts_the_extra_folders(extra_run, extras):
    from horses_humans.runs.modelcard import model_card

    card = model_card(load_run(extra_run))
    assert f"| train, extra: `{extras[1].resolve()}` | 10 | 5 | 0 | 5 |" in card
    assert f"| train, extra: `{extras[0].resolve()}` | 3 | 0 | 3 | 0 |" in card
