"""The "unsure" answer: the rule (calibrated tau, the neither class), stored in the run, applied by predict and
the API."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from horses_humans.cli.main import main
from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.core.workspace import Workspace, quiet
from horses_humans.inference.predictor import Predictor, refit_unsure
from horses_humans.inference.unsure import (
    LIKE_NEITHER,
    NOT_CONFIDENT,
    UNSURE,
    UnsureRule,
    calibrate,
    load_rule,
    save_rule,
    unsure_share,
)
from horses_humans.models.outputs import ClassOutput
from horses_humans.runs.record import load_run_split
from horses_humans.runs.store import CALIBRATION_FILE, load_run
from horses_humans.serve.app import create_app
from horses_humans.serve.settings import ServeSettings
from horses_humans.training.loop import train

from ..synthetic import make_classes
from ..tiers import slow_fixture

skdata = pytest.importorskip("skimage.data")

TWO = ClassOutput.for_classes(["horses", "humans"])
THREE = ClassOutput.for_classes(["horses", "humans", "neither"])
# skimage.data photos that teach `neither`; the cat (chelsea) is kept out, to be asked about
NEGATIVES = [
    "astronaut",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "colorwheel",
    "retina",
    "logo",
    "page",
    "camera",
    "coins",
    "moon",
    "grass",
    "gravel",
    "brick",
]


def test_calibrated_tau_leaves_at_most_two_percent_unsure():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.5, 1.0, 500)
    probabilities = np.stack([1 - p, p], axis=1)
    rule = calibrate(probabilities, np.ones(500, int), TWO)
    share = unsure_share(rule, probabilities, np.ones(500, int), TWO)
    assert 0.0 < share <= 0.02
    assert share == pytest.approx(0.02)  # the largest tau: one more image would cross 2%
    assert rule.min_confidence > 0.5 and rule.neither_class is None


def test_apply_gives_reasons_and_scores():
    rule = UnsureRule(min_confidence=0.9, neither_class="neither")
    rows = np.array([[0.95, 0.03, 0.02], [0.6, 0.3, 0.1], [0.2, 0.1, 0.7], [1 / 3, 1 / 3, 1 / 3]])
    verdicts = rule.apply(rows, THREE)
    assert [v.label for v in verdicts] == ["horses", UNSURE, UNSURE, UNSURE]
    assert [v.reason for v in verdicts] == [None, NOT_CONFIDENT, LIKE_NEITHER, LIKE_NEITHER]  # ties go to neither
    assert verdicts[0].score == 0.0
    assert verdicts[1].score == pytest.approx((0.9 - 0.6) / (0.9 - 1 / 3))
    assert verdicts[2].score == pytest.approx(0.7)
    assert all(0.0 <= v.score <= 1.0 for v in verdicts)


def test_neither_is_never_a_label_and_its_validation_images_do_not_move_tau():
    probabilities = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4], [0.05, 0.05, 0.9]])
    rule = calibrate(probabilities, np.array([0, 1, 0, 2]), THREE)
    assert rule.neither_class == "neither"
    assert rule.min_confidence == pytest.approx(0.5)  # the neither image's 0.9 does not count; 3 images allow none
    assert all(v.label != "neither" for v in rule.apply(probabilities, THREE))


def test_min_confidence_off_answers_every_image_the_reject_class_does_not_take():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.34, 0.98, (200, 1))
    probabilities = np.concatenate([p, (1 - p) * 0.7, (1 - p) * 0.3], axis=1)
    labels = np.zeros(200, int)
    auto = calibrate(probabilities, labels, THREE)
    off = calibrate(probabilities, labels, THREE, choice="off")
    assert auto.min_confidence > 0.34 and unsure_share(auto, probabilities, labels, THREE) > 0
    assert (off.min_confidence, off.neither_class, off.chosen) == (0.0, "neither", "off")
    assert unsure_share(off, probabilities, labels, THREE) == 0.0
    rows = np.array([[0.36, 0.34, 0.30], [0.2, 0.1, 0.7]])
    assert [v.reason for v in off.apply(rows, THREE)] == [None, LIKE_NEITHER]  # the reject class still acts
    assert NOT_CONFIDENT not in off.record()["reasons"] and NOT_CONFIDENT in auto.record()["reasons"]


def test_min_confidence_off_with_the_distance_check_keeps_tau_just_above_a_uniform_row():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    rule = calibrate(probabilities, np.array([0, 1, 0]), TWO, distance=True, choice="off")
    assert 0.5 < rule.min_confidence < 0.5001 and rule.distance
    assert [v.label for v in rule.apply(probabilities, TWO)] == ["horses", "humans", UNSURE]


def test_a_fixed_min_confidence_is_used_as_given_and_kept_in_the_record(tmp_path):
    probabilities = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    rule = calibrate(probabilities, np.array([0, 1, 0]), TWO, choice=0.65)
    assert (rule.min_confidence, rule.chosen) == (0.65, "0.65")
    assert [v.label for v in rule.apply(probabilities, TWO)] == ["horses", "humans", UNSURE]
    save_rule(tmp_path, rule)
    assert load_rule(tmp_path, TWO) == rule


@pytest.mark.parametrize("bad", ["0", "1", "1.5", "-0.2", "sometimes", "nan"])
def test_a_bad_min_confidence_is_one_error_naming_the_option(bad):
    with pytest.raises(HorsesHumansError, match=r"--min-confidence .*give auto, off or a probability"):
        TrainConfig(min_confidence=bad)
    with pytest.raises(HorsesHumansError, match="--min-confidence"):
        calibrate(np.array([[0.9, 0.1]]), np.array([0]), TWO, choice=bad)


def test_train_config_records_min_confidence_as_the_rule_reads_it():
    assert TrainConfig().min_confidence == "auto"
    assert TrainConfig(min_confidence="OFF").min_confidence == "off"
    assert TrainConfig(min_confidence=" 0.8").min_confidence == "0.8"
    assert TrainConfig.from_dict(TrainConfig(min_confidence="off").to_dict()).min_confidence == "off"


def test_a_rule_stored_before_min_confidence_reads_as_auto(tmp_path):
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"unsure": {"min_confidence": 0.8, "neither_class": None}}))
    assert load_rule(tmp_path, TWO) == UnsureRule(0.8, None, False, "auto")


def test_save_rule_keeps_other_calibration_keys(tmp_path):
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"temperature": 1.7, "ece_before": 0.1}))
    save_rule(tmp_path, UnsureRule(0.8))
    stored = json.loads((tmp_path / CALIBRATION_FILE).read_text())
    assert stored["temperature"] == 1.7 and stored["ece_before"] == 0.1
    assert load_rule(tmp_path, TWO) == UnsureRule(0.8)


def test_a_run_without_a_stored_rule_answers_as_before(tmp_path):
    assert load_rule(tmp_path, TWO) == UnsureRule(0.0, None)
    assert load_rule(tmp_path, THREE) == UnsureRule(0.0, "neither")


def test_training_stores_a_rule_that_leaves_at_most_two_percent_of_validation_unsure(baseline_run):
    run = load_run(baseline_run)
    assert "unsure" in json.loads((baseline_run / CALIBRATION_FILE).read_text())
    predictor = Predictor.from_run(run)
    val = load_run_split(run, log=lambda s: None)
    results = predictor.predict_files([val.root / f for f in val.files])
    assert sum(r.label == UNSURE for r in results) <= 0.02 * len(results)
    assert predictor.unsure.min_confidence > 0.5


def test_refit_stores_the_same_rule(baseline_run):
    before = load_rule(baseline_run, load_run(baseline_run).output)
    line = refit_unsure(baseline_run, log=lambda s: None)
    after = load_rule(baseline_run, load_run(baseline_run).output)
    assert after.min_confidence == pytest.approx(before.min_confidence, abs=1e-4)
    assert "of validation unsure" in line


def test_unsure_command_min_confidence_is_kept_until_changed(baseline_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(baseline_run, run)
    calibrated = load_rule(run, load_run(run).output).min_confidence
    assert main(["unsure", str(run), "--min-confidence", "off"]) == 0
    assert "(--min-confidence off)" in capsys.readouterr().out
    assert (load_rule(run, load_run(run).output).min_confidence, load_rule(run, load_run(run).output).chosen) == (
        0.0,
        "off",
    )
    assert main(["unsure", str(run)]) == 0  # a refit without the option keeps the run's choice
    assert load_rule(run, load_run(run).output).chosen == "off"
    assert main(["unsure", str(run), "--min-confidence", "auto"]) == 0
    back = load_rule(run, load_run(run).output)
    assert back.chosen == "auto" and back.min_confidence == pytest.approx(calibrated, abs=1e-4)
    with pytest.raises(SystemExit):
        main(["unsure", str(run), "--min-confidence", "2"])
    assert "give auto, off or a probability" in capsys.readouterr().err


@pytest.mark.slow
def test_train_min_confidence_off_stores_a_rule_without_a_threshold(views_data, tmp_path):
    config = TrainConfig(recipe="baseline", epochs=1, image_size=32, batch_size=8, precision="float32")
    config = dataclasses.replace(config, min_confidence="off")
    run = train(config, Workspace(views_data[0], tmp_path, views_data[1], quiet))
    assert json.loads((run / "config.json").read_text())["min_confidence"] == "off"
    rule = load_rule(run, load_run(run).output)
    assert (rule.min_confidence, rule.chosen) == (0.0, "off")
    val = load_run_split(load_run(run), log=lambda s: None)
    assert not any(
        r.label == UNSURE for r in Predictor.from_run(load_run(run)).predict_files(val.root / f for f in val.files)
    )


@pytest.fixture(scope="module")
@slow_fixture
def neither_run(tmp_path_factory) -> Path:
    """A baseline trained on synthetic horses/humans plus a `neither` folder of crops of skimage
    photos (not the cat)."""
    root, rng = tmp_path_factory.mktemp("neither-data"), np.random.default_rng(0)
    make_classes(root, ["horses", "humans"], 24, rng)
    for name in NEGATIVES:
        image = getattr(skdata, name)()
        image = (np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3]).astype(np.uint8)
        h, w = image.shape[:2]
        for j in range(3):
            y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
            (root / "neither").mkdir(exist_ok=True)
            Image.fromarray(image[y : y + h // 2, x : x + w // 2]).save(root / "neither" / f"{name}-{j}.png")
    config = TrainConfig(recipe="baseline", epochs=5, image_size=32, batch_size=8, precision="float32")
    return train(
        config, Workspace(root, tmp_path_factory.mktemp("neither-runs"), tmp_path_factory.mktemp("cache"), quiet)
    )


@pytest.fixture(scope="module")
def cat(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cat") / "chelsea.png"
    Image.fromarray(skdata.chelsea()).save(path)
    return path


def test_the_cat_is_unsure_through_predict_cli(neither_run, cat, capsys):
    assert main(["predict", str(neither_run), str(cat), "--json"]) == 0
    [answer] = json.loads(capsys.readouterr().out)
    # unsure either way: the neither unit wins, or (calibrated, best checkpoint) no class is confident enough
    assert answer["label"] == UNSURE and answer["unsure_reason"] in (LIKE_NEITHER, NOT_CONFIDENT)
    assert 0.0 < answer["unsure_score"] <= 1.0 and set(answer["probabilities"]) == {"horses", "humans", "neither"}
    assert main(["predict", str(neither_run), str(cat)]) == 0
    table = capsys.readouterr().out
    assert "unsure" in table and answer["unsure_reason"] in table


def test_the_cat_is_unsure_through_the_api_and_model_says_the_rule(neither_run, cat):
    with TestClient(create_app(ServeSettings(run=neither_run))) as client:
        rule = client.get("/v1/model").json()["unsure"]
        assert rule["neither_class"] == "neither" and 0.0 <= rule["min_confidence"] <= 1.0
        assert rule["chosen"] == "auto"  # how tau was chosen: train's default --min-confidence
        with open(cat, "rb") as fh:
            response = client.post(
                "/v1/predict", files=[("files", ("cat.png", fh, "image/png"))], params={"gradcam": True}
            )
    [result] = response.json()["results"]
    assert response.status_code == 200
    assert (
        result["label"] == UNSURE
        and result["unsure_reason"] in (LIKE_NEITHER, NOT_CONFIDENT)
        and result["unsure_score"] > 0
    )
    assert result["gradcam"] is None or result["gradcam"].startswith("data:image/png")


def test_describe_words_only_the_parts_of_the_rule_that_act():
    from horses_humans.inference.unsure import UnsureRule, describe

    assert describe(UnsureRule(0.0, "neither"), 0.125) == "unsure when 'neither' wins (12.5% of validation unsure)"
    assert describe(UnsureRule(0.47, None)) == "unsure below confidence 0.4700"
    assert describe(UnsureRule(0.5, "neither")) == "unsure below confidence 0.5000, or when 'neither' wins"
    assert describe(UnsureRule(0.0, None)).startswith("never unsure")
    distance_off = UnsureRule(0.5000011, "neither", True, "off")  # tau at the check's floor is no threshold to word
    assert describe(distance_off) == (
        "unsure when 'neither' wins, or when unlike every image it was trained on (--min-confidence off)"
    )
