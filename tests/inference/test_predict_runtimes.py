"""`predict --runtime`: a run's parity-checked exports answer like its Keras model (calibration and the unsure rule
included), which one `auto` picks, and a one-image predict on an exported run that never imports TensorFlow."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from horses_humans.cli.main import main
from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.data.images import load_pixels
from horses_humans.data.layouts import VALIDATION
from horses_humans.inference.predictor import Predictor
from horses_humans.inference.runtimes import choose_export, scan_exports
from horses_humans.inference.unsure import UnsureRule, save_rule
from horses_humans.models.outputs import calibrated
from horses_humans.runs.store import load_run, update_calibration

from ..exported_runs import exported_centroid_run
from ..fake_runs import write_run
from ..tiers import slow_fixture

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
@slow_fixture
def exported(tmp_path_factory):
    """(run, validation images): a 3-class run with float ONNX, float TFLite and int8-weight ONNX exports, vector
    scaling (a scale and a bias per class, applied after the raw exports as after Keras) and an unsure rule that
    answers some images unsure."""
    run, data = exported_centroid_run(
        tmp_path_factory.mktemp("runtimes"), 3, [("web", "none"), ("tflite", "none"), ("web", "dynamic")]
    )
    update_calibration(run, method="vector", class_scale=[0.5, 0.35, 0.6], class_bias=[0.2, -0.3, 0.1])
    images = sorted((data / VALIDATION).rglob("*.png"))
    confidence = [r.probability for r in Predictor.from_run(run, runtime="keras").predict_files(images)]
    save_rule(run, UnsureRule(min_confidence=float(np.median(confidence))))  # about half the images unsure
    return run, images


def set_latency(run: Path, name: str, ms: float) -> None:
    """Pretend export `name` measured `ms` per image."""
    path = run / "export" / name / "export.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "latency_ms_p50": ms}))


@pytest.mark.parametrize("runtime", ["onnx", "tflite", "auto"])
def test_every_runtime_answers_like_keras_with_calibration_and_the_unsure_rule(exported, runtime):
    run, images = exported
    keras = Predictor.from_run(run, runtime="keras").predict_files(images)
    other = Predictor.from_run(run, runtime=runtime)
    assert "Keras" not in other.source
    rows = other.predict_files(images)
    assert [r.label for r in rows] == [r.label for r in keras] and any(r.label == "unsure" for r in rows)
    assert [r.unsure_reason for r in rows] == [r.unsure_reason for r in keras]
    got = np.array([list(r.probabilities.values()) for r in rows])
    np.testing.assert_allclose(got, [list(r.probabilities.values()) for r in keras], atol=1e-4)
    loaded = load_run(run)  # and what they all answer is the model's own probabilities under the run's vector scaling
    own = Predictor.uncalibrated(loaded).predict_proba(
        np.stack([load_pixels(path, loaded.image_size) for path in images])
    )
    np.testing.assert_allclose(got, calibrated(own, 1.0, loaded.output.scale, loaded.output.bias), atol=1e-4)
    assert loaded.output.scale is not None and np.abs(got - own).max() > 1e-2


def test_auto_picks_the_fastest_full_precision_export_and_the_runtime_its_best_export(exported):
    run, _ = exported
    set_latency(run, "web-dynamic", 0.001)  # fastest, but int8 weights: never chosen for auto
    set_latency(run, "web", 0.5)
    set_latency(run, "tflite", 0.2)
    assert choose_export(run, "model.keras", "auto").name == "tflite"
    set_latency(run, "web", 0.1)
    assert choose_export(run, "model.keras", "auto").name == "web"
    assert choose_export(run, "model.keras", "onnx").name == "web"  # full precision before speed
    assert choose_export(run, "model.keras", "keras") is None


def test_exports_of_another_checkpoint_or_that_failed_parity_are_never_run(exported, tmp_path):
    run, _ = exported
    assert choose_export(run, "model-best.keras", "auto") is None  # these were made from model.keras
    with pytest.raises(HorsesHumansError, match="no parity-checked tflite export of model-best.keras"):
        choose_export(run, "model-best.keras", "tflite")
    names = {e.name for e in scan_exports(run)[0]}
    record = run / "export" / "tflite" / "export.json"
    saved = record.read_text()
    try:
        record.write_text(json.dumps({**json.loads(saved), "parity": {"passed": False}}))
        assert {e.name for e in scan_exports(run)[0]} == names - {"tflite"}
    finally:
        record.write_text(saved)


def test_a_runtime_the_run_has_no_export_for_is_one_error_line(tmp_path, capsys):
    run = write_run(tmp_path / "runs", TrainConfig(recipe="baseline", image_size=32))
    (tmp_path / "x.png").write_bytes(b"")
    assert main(["predict", str(run), str(tmp_path / "x.png"), "--runtime", "onnx"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run}: no parity-checked onnx export") and "--format web" in err
    assert err.count("\n") == 1


def modules_after_predict(run: Path, image: Path, runtime: str) -> list[str]:
    """Which of TensorFlow and Keras a fresh process has loaded after one `predict --runtime RUNTIME`."""
    code = (
        "import sys\nfrom horses_humans.cli.main import main\n"
        f"assert main(['predict', {str(run)!r}, {str(image)!r}, '--runtime', {runtime!r}]) == 0\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules), file=sys.stderr)"
    )
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_one_image_on_an_exported_run_never_imports_tensorflow_or_keras(exported):
    run, images = exported
    assert modules_after_predict(run, images[0], "auto") == "[]"
    assert modules_after_predict(run, images[0], "keras") == "['keras', 'tensorflow']"  # the check can fail


@pytest.mark.parametrize("runtime", ["auto", "tflite"])
def test_serve_answers_with_the_export_like_keras(exported, runtime):
    """`serve --runtime`: the export answers the API (auto picks one), with the same labels and probabilities as the
    Keras model served beside it."""
    from fastapi.testclient import TestClient

    from horses_humans.serve.app import create_app
    from horses_humans.serve.settings import ServeSettings

    run, images = exported
    files = [("files", (path.name, path.read_bytes(), "image/png")) for path in images[:6]]
    answers = {}
    for name in ("keras", runtime):
        with TestClient(create_app(ServeSettings(run=run, runtime=name))) as client:
            answers[name] = client.post("/v1/predict", files=files).json()["results"]
            source = client.app.state.served.predictor.source
        assert ("Keras" in source) == (name == "keras"), source
    for keras_row, other_row in zip(answers["keras"], answers[runtime]):
        assert other_row["label"] == keras_row["label"]
        assert other_row["probabilities"] == pytest.approx(keras_row["probabilities"], abs=1e-4)


def test_from_run_and_the_python_api_default_to_auto_like_the_cli(exported):
    """Predictor.from_run and hh's Run answer with the run's fastest export unless told, as `predict` does."""
    import horses_humans as hh

    run, images = exported
    set_latency(run, "web", 0.1)
    set_latency(run, "tflite", 0.2)
    default = Predictor.from_run(run)
    assert default.source == Predictor.from_run(run, runtime="auto").source and "Keras" not in default.source
    assert hh.load_run(run).predictor().source == default.source
    assert hh.load_run(run).predict(images[0])[0].label == default.predict_files(images[:1])[0].label


@pytest.mark.parametrize("runtime", ["auto", "keras"])
def test_serve_says_which_run_checkpoint_and_runtime_answer(exported, runtime, caplog):
    """At start-up in the log, and on /v1/model."""
    from fastapi.testclient import TestClient

    from horses_humans.serve.app import create_app
    from horses_humans.serve.settings import ServeSettings

    run, _ = exported
    set_latency(run, "web", 0.1)
    set_latency(run, "tflite", 0.2)
    expected = "keras" if runtime == "keras" else "onnx:web"
    with caplog.at_level("INFO", logger="horses_humans.serve"):
        with TestClient(create_app(ServeSettings(run=run, runtime=runtime))) as client:
            info = client.get("/v1/model").json()
    assert info["runtime"] == expected and info["checkpoint"]["file"] == "model.keras"
    assert info["answered_by"] == f"run {run.name}, checkpoint model.keras, runtime {expected}"
    assert any(f"serving {run}: {info['answered_by']}" in message for message in caplog.messages), caplog.messages


@pytest.mark.parametrize("cores, threads", [(1, 1), (2, 1), (16, 8)])
def test_onnx_runtime_leaves_half_the_cores_to_decoding(exported, monkeypatch, cores, threads):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    predictor = Predictor.from_run(exported[0], runtime="onnx")
    assert predictor.runtime.session.get_session_options().intra_op_num_threads == threads
    rows = predictor.predict_files(exported[1][:4])
    assert all(r.error is None and r.label for r in rows)
