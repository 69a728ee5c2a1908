"""`train --reject-class NAME` end to end: a tiny baseline trained on class folders with a `background` folder
records the name, fits its unsure rule on it, answers a background-like image unsure "like the 'background'
examples", and says so in its card and ONNX metadata; a NAME that is no class folder is one error line."""

import json
from pathlib import Path

import numpy as np
import pytest

from horses_humans.cli.main import main
from horses_humans.export.onnx_file import metadata
from horses_humans.inference.predictor import Predictor
from horses_humans.inference.unsure import UNSURE
from horses_humans.runs.store import MODEL_CARD_FILE, load_run

from ..synthetic import make_classes
from ..tiers import slow_fixture

NAMES = ["background", "horses", "humans"]  # background: class 0's red cast
TINY = ["--recipe", "baseline", "--image-size", "32", "--batch-size", "8", "--conv-filters", "8", "--precision"]
TINY += ["float32", "--learning-rate", "0.003"]


def train_args(data: Path, runs: Path, *more: str) -> list[str]:
    """`train` of the tiny baseline on data into runs."""
    return ["train", *TINY, "--data-dir", str(data), "--runs-dir", str(runs), *more]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Class folders alone: background, horses, humans (20 images each; train makes the validation split)."""
    return make_classes(tmp_path_factory.mktemp("own") / "photos", NAMES, 20, np.random.default_rng(5))


@pytest.fixture(scope="module")
@slow_fixture
def background_run(data, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    assert main(train_args(data, runs, "--reject-class", "background", "--epochs", "6", "--name", "bg")) == 0
    return runs / "bg"


def test_the_run_records_the_reject_class_and_fits_its_rule_on_it(background_run):
    assert json.loads((background_run / "config.json").read_text())["reject_class"] == "background"
    rule = json.loads((background_run / "calibration.json").read_text())["unsure"]
    assert rule["neither_class"] == "background"
    assert load_run(background_run).class_names == NAMES  # a class of the model, never a label


def test_a_background_like_image_is_answered_unsure_like_the_background_examples(background_run, data):
    predictor = Predictor.from_run(background_run, runtime="keras")
    answers = predictor.predict_files(sorted((data / "background").iterdir()))
    assert [a.label for a in answers] == [UNSURE] * 20
    assert {a.unsure_reason for a in answers} == {"like the 'background' examples"}, [a.probabilities for a in answers]


def test_the_card_and_the_onnx_metadata_name_the_reject_class(background_run):
    card = (background_run / MODEL_CARD_FILE).read_text()
    assert "when the 'background' class (\"none of these\") wins" in card
    run = load_run(background_run)
    assert metadata(run, run.output, Predictor.from_run(run).unsure, tta=False)["reject_class"] == "background"


def test_a_reject_class_that_is_no_folder_is_one_error_line(data, tmp_path, capsys):
    assert main(train_args(data, tmp_path / "runs", "--reject-class", "Background", "--epochs", "1")) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: --reject-class Background:") and str(data) in err
    assert "found: background, horses, humans" in err and "pass --reject-class background" in err
    assert not list((tmp_path / "runs").rglob("metrics.json"))


@pytest.mark.slow
def test_without_a_neither_folder_the_default_trains_a_run_with_no_reject_class(data, tmp_path):
    """The default name and no such folder: the run simply has none (background is then a class like any other)."""
    assert main(train_args(data, tmp_path, "--epochs", "1", "--name", "plain")) == 0
    rule = json.loads((tmp_path / "plain" / "calibration.json").read_text())["unsure"]
    assert rule["neither_class"] is None
