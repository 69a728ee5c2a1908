"""`train --distance-unsure` end to end: a MobileNetV2 run (the offline ImageNet weights) trained on two class folders
with no `neither` folder answers an image unlike its training images "unsure: unlike every image it was trained on",
in Keras and through its ONNX export, and keeps its own kind of images answered; the wrong recipe or a calibration
that would tilt the check is one error line."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from horses_humans.cli.main import main
from horses_humans.inference.predictor import Predictor
from horses_humans.inference.unsure import UNLIKE_TRAINING, UNSURE
from horses_humans.models.distance import DISTANCE_FILE
from horses_humans.runs.store import load_run

from ..synthetic import make_classes
from ..tiers import slow_fixture

WEIGHTS = (
    Path(__file__).resolve().parents[3]
    / "shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_classes(tmp_path_factory.mktemp("own") / "photos", ["horses", "humans"], 30, np.random.default_rng(7))


@pytest.fixture(scope="module")
@slow_fixture
def run(data, tmp_path_factory) -> Path:
    assert WEIGHTS.is_file(), f"needs ../shared/weights beside the checkout ({WEIGHTS})"
    runs = tmp_path_factory.mktemp("runs")
    args = ["train", "--recipe", "mobilenet_v2", "--weights", str(WEIGHTS), "--image-size", "96", "--epochs", "3"]
    args += ["--batch-size", "8", "--distance-unsure", "--data-dir", str(data), "--runs-dir", str(runs)]
    assert main([*args, "--name", "far"]) == 0
    return runs / "far"


def stranger(path: Path) -> Path:
    """A smooth grey gradient with a dark disc: nothing like the colour-cast noise the run was trained on."""
    yy, xx = np.mgrid[0:96, 0:96]
    grey = (xx * 2 + yy).clip(0, 255)
    grey[(xx - 48) ** 2 + (yy - 48) ** 2 < 400] = 20
    Image.fromarray(np.stack([grey] * 3, axis=2).astype("uint8")).save(path)
    return path


def test_the_run_records_the_check_and_its_rule_knows_it(run):
    assert json.loads((run / "config.json").read_text())["distance_unsure"] is True
    assert (run / DISTANCE_FILE).is_file()
    rule = json.loads((run / "calibration.json").read_text())["unsure"]
    assert rule["distance"] is True and rule["min_confidence"] > 0.5  # above 1/C: clients that know only tau agree
    assert UNLIKE_TRAINING in rule["reasons"]


def test_a_stranger_is_unsure_unlike_training_and_its_own_kind_answered(run, data, tmp_path):
    predictor = Predictor.from_run(run, runtime="keras")
    [answer] = predictor.predict_files([stranger(tmp_path / "stranger.png")])
    assert (answer.label, answer.unsure_reason) == (UNSURE, UNLIKE_TRAINING), answer.probabilities
    assert answer.probabilities == {"horses": 0.5, "humans": 0.5}
    own = predictor.predict_files(sorted((data / "horses").iterdir()) + sorted((data / "humans").iterdir()))
    assert sum(a.unsure_reason == UNLIKE_TRAINING for a in own) <= 3  # about 2% by design; 60 images here


def test_the_onnx_export_carries_the_check(run, tmp_path):
    import onnxruntime as ort

    assert main(["export", str(run), "--format", "onnx"]) == 0
    [onnx] = sorted(run.glob("export/onnx/*.onnx"))
    session = ort.InferenceSession(str(onnx))
    pixels = np.asarray(Image.open(stranger(tmp_path / "s.png")).convert("RGB"))[None]
    [probabilities] = session.run(None, {session.get_inputs()[0].name: pixels})
    np.testing.assert_array_equal(probabilities, [[0.5, 0.5]])


def test_calibration_that_would_tilt_the_check_is_refused(run, capsys):
    assert main(["calibrate", str(run), "--method", "temperature+bias"]) != 0
    assert "--method auto or temperature" in capsys.readouterr().err


def test_a_cnn_recipe_with_the_check_is_one_error_line(data, tmp_path, capsys):
    args = ["train", "--recipe", "baseline", "--distance-unsure", "--data-dir", str(data), "--runs-dir", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "--distance-unsure" in err and "transfer recipe" in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_explain_draws_the_heads_evidence_beside_the_check(run, tmp_path, capsys):
    image = stranger(tmp_path / "stranger.png")
    assert main(["explain", str(run), str(image), "--out", str(tmp_path / "explain")]) == 0
    assert sorted(p.name for p in (tmp_path / "explain").iterdir()) == [
        "stranger-activations.png",
        "stranger-gradcam.png",
    ]


def test_the_model_card_says_when_the_check_answers_unsure(run):
    card = (run / "MODEL_CARD.md").read_text()
    assert "farther from every training image (backbone features) than 98% of them are" in card


def test_the_server_says_the_run_has_the_check_and_answers_a_stranger_unsure(run, tmp_path):
    from fastapi.testclient import TestClient

    from horses_humans.serve.app import create_app
    from horses_humans.serve.settings import ServeSettings

    with TestClient(create_app(ServeSettings(run=run))) as client:
        assert client.get("/v1/model").json()["unsure"]["distance"] is True
        image = stranger(tmp_path / "stranger.png").read_bytes()
        response = client.post("/v1/predict", files=[("files", ("s.png", image, "application/octet-stream"))])
    [answer] = response.json()["results"]
    assert (answer["label"], answer["unsure_reason"]) == (UNSURE, UNLIKE_TRAINING), answer


def test_with_min_confidence_off_the_check_still_answers_and_the_card_says_so(run, tmp_path, capsys):
    copy = tmp_path / "off"
    shutil.copytree(run, copy)
    assert main(["unsure", str(copy), "--min-confidence", "off"]) == 0
    assert main(["card", str(copy)]) == 0
    assert "with no confidence threshold (`--min-confidence off`)" in capsys.readouterr().out
    predictor = Predictor.from_run(load_run(copy))
    assert 0.5 < predictor.unsure.min_confidence < 0.5001  # just above the check's uniform answer
    [answer] = predictor.predict_files([stranger(tmp_path / "stranger.png")])
    assert (answer.label, answer.unsure_reason) == (UNSURE, UNLIKE_TRAINING)
