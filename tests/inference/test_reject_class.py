"""`train --reject-class NAME`: the class folder of that name teaches the unsure answer, and every reader of the run
(the unsure rule and its reason, predict, the ONNX metadata, the model card, the report's curve) uses the run's
recorded name. Runs here are the tiny centroid model (tests/centroid_runs.py) with a `background` class, no
training: class 0 (red cast) is background, so a reddish image is background-like."""

import json
from pathlib import Path

import numpy as np
import pytest

from horses_humans.config import TrainConfig
from horses_humans.data.layouts import TRAIN, VALIDATION
from horses_humans.export.onnx_file import metadata
from horses_humans.inference.predictor import Predictor, refit_unsure
from horses_humans.inference.unsure import (
    LIKE_NEITHER,
    UNSURE,
    UnsureRule,
    calibrate,
    like_examples,
    load_rule,
    tradeoff_curve,
)
from horses_humans.models.outputs import ClassOutput
from horses_humans.runs.modelcard import model_card
from horses_humans.runs.store import CONFIG_FILE, load_run

from ..centroid_runs import write_centroid_run
from ..synthetic import make_classes

NAMES = ["background", "horses", "humans"]  # sorted, as class folders are read: background is class 0 (red)


@pytest.fixture(scope="module")
def background_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run, data): a centroid run of NAMES recorded with --reject-class background, its rule fitted on its data."""
    root = tmp_path_factory.mktemp("reject")
    rng = np.random.default_rng(3)
    data = root / "data"
    make_classes(data / TRAIN, NAMES, 6, rng)
    make_classes(data / VALIDATION, NAMES, 4, rng)
    run = write_centroid_run(root / "runs", 3, names=NAMES, reject_class="background")
    refit_unsure(run, data_dir=data, cache_dir=root / "cache", log=lambda line: None)
    return run, data


def test_a_background_like_image_is_unsure_like_the_background_examples(background_run):
    run, data = background_run
    predictor = Predictor.from_run(run, runtime="keras")
    assert predictor.unsure.neither_class == "background"
    images = sorted((data / VALIDATION / "background").iterdir()) + sorted((data / VALIDATION / "horses").iterdir())
    answers = predictor.predict_files(images)
    assert [a.label for a in answers[:4]] == [UNSURE] * 4
    assert {a.unsure_reason for a in answers[:4]} == {"like the 'background' examples"}
    assert [a.label for a in answers[4:]] == ["horses"] * 4  # background is never a label


def test_the_rule_is_recorded_under_the_runs_reject_class(background_run):
    run, _ = background_run
    record = json.loads((run / "calibration.json").read_text())["unsure"]
    assert record["neither_class"] == "background" and record["reasons"][0] == "like the 'background' examples"


def test_the_onnx_metadata_names_the_reject_class(background_run):
    run, _ = background_run
    loaded = load_run(run)
    meta = metadata(loaded, loaded.output, load_rule(run, loaded.output, "background"), tta=False)
    assert meta["reject_class"] == "background" and json.loads(meta["class_names"]) == NAMES


def test_the_model_card_names_the_reject_class(background_run):
    card = model_card(load_run(background_run[0]))
    assert "when the 'background' class (\"none of these\") wins" in card
    assert "telling apart images of horses or humans," in card  # background is not one of the answers
    assert '`background` stands for "none of these" (`--reject-class background`' in card


def test_a_run_saved_before_the_option_reads_as_neither(tmp_path):
    run = write_centroid_run(tmp_path, 3, names=["horses", "humans", "neither"])
    config = json.loads((run / CONFIG_FILE).read_text())
    del config["reject_class"]
    (run / CONFIG_FILE).write_text(json.dumps(config))
    loaded = load_run(run)
    assert loaded.config.reject_class == "neither"
    assert Predictor.from_run(loaded, runtime="keras").unsure == UnsureRule(0.0, "neither")  # no stored rule yet


def test_calibrate_and_the_curve_take_the_reject_class_by_name():
    output = ClassOutput.for_classes(NAMES)
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.2, 0.5, 0.3]])
    labels = np.array([0, 1, 2, 1])
    assert calibrate(probabilities, labels, output).neither_class is None  # the default name is not a class here
    rule = calibrate(probabilities, labels, output, reject_class="background")
    assert rule.neither_class == "background"
    assert [v.reason for v in rule.apply(probabilities, output)][0] == like_examples("background")
    curve = tradeoff_curve(probabilities, labels, output, 0, rule.min_confidence, "background")
    assert curve["unsure_of"] == "background" and curve["unsure"][0] == 1.0  # the background image is unsure at tau 0
    assert LIKE_NEITHER == "like the 'neither' examples"  # the default reason is as it was


def test_an_empty_reject_class_is_one_error_line():
    from horses_humans.config import HorsesHumansError

    with pytest.raises(HorsesHumansError, match="^--reject-class is empty"):
        TrainConfig(reject_class=" ")
