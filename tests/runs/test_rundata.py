"""A run remembers its data (data.json): evaluate, report and export's parity check use the run's own data folder
and split, say in one line when the files changed, and never move an added image between sides; evaluate --split
test and --data DIR; train --class-weight balanced."""

import csv
import hashlib
import io
import json
import shutil

import numpy as np
import pytest

from horses_humans.cli.main import main
from horses_humans.config import TrainConfig
from horses_humans.core.workspace import Workspace, quiet
from horses_humans.data.layouts import find_dataset
from horses_humans.runs.record import load_run_split
from horses_humans.runs.store import load_run
from horses_humans.training.loop import train
from horses_humans.training.stages import class_weights, fit_arrays

from ..synthetic import make_own_dataset, write_image
from ..tiers import slow_fixture

QUIET = dict(recipe="baseline", epochs=1, image_size=32, batch_size=8, precision="float32")


def assert_one_line_error(err: str, *fragments: str) -> None:
    """stderr is exactly one 'error: ...' line holding every fragment, and no traceback."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(f in lines[0] for f in fragments), (fragments, lines[0])


@pytest.fixture(scope="module")
@slow_fixture
def own_run(tmp_path_factory):
    """(data folder, run, cache, log lines): a 1-epoch baseline on class folders alone (8 horses, 6 humans),
    --val-split 0.25, seed 3, balanced class weights."""
    root = make_own_dataset(tmp_path_factory.mktemp("own") / "mine", 2, "class-folders", per_class=8)
    for path in sorted((root / "humans").iterdir())[:2]:
        path.unlink()
    cache, lines = tmp_path_factory.mktemp("cache"), []
    config = TrainConfig(val_split=0.25, seed=3, class_weight="balanced", **QUIET)
    run = train(config, Workspace(root, tmp_path_factory.mktemp("runs"), cache, lines.append))
    return root, run, cache, lines


@pytest.fixture
def moved(own_run, tmp_path):
    """(data folder, run) copied elsewhere, the run's data.json pointing at the copy: a run to change data under."""
    root, run, _, _ = own_run
    data, copy = shutil.copytree(root, tmp_path / "mine"), shutil.copytree(run, tmp_path / "run")
    record = json.loads((copy / "data.json").read_text())
    (copy / "data.json").write_text(json.dumps({**record, "data_dir": str(data)}))
    return data, copy


def evaluate(capsys, run, *options):
    """(metrics, stderr, predictions.csv rows) of `horses-humans evaluate RUN --json OPTIONS`."""
    assert main(["evaluate", str(run), "--json", *map(str, options)]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO((run / "predictions.csv").read_text())))
    return json.loads(out), err, rows


def test_the_run_records_its_split_files_and_their_hashes(own_run):
    root, run, _, _ = own_run
    record = json.loads((run / "data.json").read_text())
    assert (record["layout"], record["class_names"], record["val_split"], record["seed"]) == (
        "class-folders",
        ["horses", "humans"],
        0.25,
        3,
    )
    assert record["data_dir"] == str(root.resolve())
    train_files, val_files = (record["sides"][side]["files"] for side in ("train", "validation"))
    assert set(train_files).isdisjoint(val_files)
    assert sorted([*train_files, *val_files]) == sorted(str(p.relative_to(root)) for p in root.rglob("*.png"))
    assert sum(f.startswith("horses/") for f in val_files) == 2 and sum(f.startswith("humans/") for f in val_files) == 2
    name, digest = next(iter(val_files.items()))
    assert digest == hashlib.sha256((root / name).read_bytes()).hexdigest()
    assert list(val_files) == find_dataset(root, 0.25, 3).sides["validation"].files  # the split train made


def test_balanced_class_weights_are_used_and_logged(own_run):
    lines = own_run[3]
    assert "class weights: horses 0.833, humans 1.250" in lines  # 10 training images: 6 horses, 4 humans
    assert any(
        "class-folders layout, 2 classes (horses, humans), validation: 0.25 of each class (seed 3)" in line
        for line in lines
    )
    assert class_weights("balanced", np.array([0, 0, 0, 1], "float32")) == {0: 4 / 6, 1: 2.0}
    assert class_weights("none", [0, 1]) is None


@pytest.mark.parametrize("mode, expected", [("balanced", {0: 4 / 6, 1: 2.0}), ("none", None)])
def test_fit_gets_the_class_weights(mode, expected):
    class Model:
        def fit(self, *args, **kwargs):
            self.kwargs = kwargs

    model, y = Model(), np.array([0, 0, 0, 1], "float32")
    fit_arrays(
        model,
        TrainConfig(recipe="baseline", class_weight=mode),
        (np.zeros((4, 2)), y),
        (np.zeros((1, 2)), y[:1]),
        [],
        range(0, 1),
    )
    assert model.kwargs["class_weight"] == expected


def test_evaluate_and_report_default_to_the_runs_own_data(own_run, capsys, monkeypatch, tmp_path):
    root, run, cache, _ = own_run
    monkeypatch.setenv("HORSES_HUMANS_DATA", str(tmp_path / "not-here"))  # the run's record wins over the default
    metrics, err, rows = evaluate(capsys, run, "--cache-dir", cache)
    recorded = json.loads((run / "data.json").read_text())["sides"]["validation"]["files"]
    assert metrics["images"] == 4 and metrics["split"] == "validation" and metrics["folder"] == str(root.resolve())
    assert [r["file"] for r in rows] == list(recorded) and "warning" not in err
    assert main(["report", str(run), "--cache-dir", str(cache)]) == 0
    assert (run / "report" / "report.html").is_file()


def test_added_changed_and_removed_images_are_reported_and_the_recorded_split_kept(moved, own_run, capsys):
    data, run = moved
    recorded = list(json.loads((run / "data.json").read_text())["sides"]["validation"]["files"])
    write_image(data / "horses" / "new.png", 0, np.random.default_rng(9))  # would it go to validation? never
    write_image(data / recorded[0], 0, np.random.default_rng(10))  # same name, other pixels
    (data / recorded[-1]).unlink()
    metrics, err, rows = evaluate(capsys, run, "--cache-dir", own_run[2])
    assert err.count("\n") == 1 and err.startswith(f"warning: {data}: the validation files changed since")
    assert "(1 changed, 1 missing, 1 added (not used))" in err and "using the 3 recorded files still there" in err
    assert [r["file"] for r in rows] == recorded[:-1] and metrics["images"] == 3


def test_data_dir_overrides_the_folder_and_keeps_the_recorded_split(own_run, tmp_path, capsys):
    root, run, cache, _ = own_run
    copy = shutil.copytree(root, tmp_path / "copy")
    write_image(copy / "humans" / "late.png", 1, np.random.default_rng(5))
    metrics, err, rows = evaluate(capsys, run, "--data-dir", copy, "--cache-dir", cache)
    assert metrics["folder"] == str(copy) and metrics["images"] == 4
    assert "1 added (not used)" in err and "humans/late.png" not in [r["file"] for r in rows]


def test_a_run_without_data_json_uses_the_folder_environment_json_names(moved, own_run, capsys):
    data, run = moved
    (run / "data.json").unlink()
    environment = json.loads((run / "environment.json").read_text())
    (run / "environment.json").write_text(json.dumps({**environment, "data_dir": str(data)}))
    metrics, err, _ = evaluate(capsys, run, "--cache-dir", own_run[2])
    assert metrics["images"] == 4 and metrics["folder"] == str(data) and err == ""  # split again: --val-split, seed


def test_evaluate_on_a_labelled_folder_of_some_of_the_classes(own_run, tmp_path, capsys):
    root, run, cache, _ = own_run
    folder = tmp_path / "more"
    shutil.copytree(root / "humans", folder / "humans")
    metrics, _, rows = evaluate(capsys, run, "--data", folder, "--cache-dir", cache)
    assert metrics["split"] == "data" and metrics["images"] == 6 and metrics["folder"] == str(folder)
    assert {r["true_label"] for r in rows} == {"humans"}  # labelled by the run's class order, not the folder's
    (folder / "zebras").mkdir()
    assert main(["evaluate", str(run), "--data", str(folder)]) == 2
    assert_one_line_error(capsys.readouterr().err, str(folder / "zebras"), "'zebras' is not one of the run's classes")


def test_split_test_needs_a_test_folder(own_run, capsys):
    assert main(["evaluate", str(own_run[1]), "--split", "test"]) == 2
    assert_one_line_error(
        capsys.readouterr().err, "this class-folders data set has no test split", "--split validation"
    )


@pytest.mark.slow
def test_split_test_evaluates_the_held_out_test_folder(tmp_path, capsys):
    root = make_own_dataset(tmp_path / "mine", 2, "split-folders", per_class=6, test=True)
    run = train(TrainConfig(**QUIET), Workspace(root, tmp_path / "runs", tmp_path / "cache", quiet))
    assert list(json.loads((run / "data.json").read_text())["sides"]) == ["train", "validation", "test"]
    metrics, _, rows = evaluate(capsys, run, "--split", "test", "--cache-dir", tmp_path / "cache")
    assert metrics["split"] == "test" and metrics["folder"] == str(root / "test") and metrics["images"] == 4
    assert json.loads((run / "evaluation.json").read_text())["split"] == "test"


def test_exports_check_parity_on_the_runs_own_validation_and_calibrate_on_its_training_images(own_run):
    from horses_humans.export.pipeline import open_source

    root, run, cache, _ = own_run
    source = open_source(run, None, cache, log=lambda s: None)
    assert len(source.validation) == 4 and source.representative.shape == (10, 32, 32, 3)


@pytest.mark.slow
def test_three_classes_keep_their_recorded_split(tmp_path):
    """Data behaviour only: until N-class models land, a 3-class run still has one sigmoid unit."""
    root = make_own_dataset(tmp_path / "mine", 3, "class-folders", per_class=5)
    run = load_run(train(TrainConfig(**QUIET), Workspace(root, tmp_path / "runs", tmp_path / "cache", quiet)))
    assert run.data["class_names"] == ["class0", "class1", "class2"]
    for name in ("class0", "class1", "class2"):
        write_image(root / name / "zz-late.png", 0, np.random.default_rng(1))  # last in hash order or not: unused
    lines = []
    split = load_run_split(run, "validation", cache_dir=tmp_path / "cache", log=lines.append)
    assert split.files == list(run.data["sides"]["validation"]["files"]) and split.y.tolist() == [0, 1, 2]
    assert len(lines) == 1 and "3 added (not used)" in lines[0]
