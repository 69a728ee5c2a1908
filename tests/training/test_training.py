"""Training end to end on a tiny synthetic data set: the run directory contract, evaluate, predict."""

import json

import keras
import numpy as np
import pytest

from horses_humans.analysis.evaluation import EvalSplit, evaluate_run
from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.core.workspace import Workspace, quiet
from horses_humans.inference.predictor import Predictor
from horses_humans.runs.store import list_runs, load_run
from horses_humans.training.loop import train

from ..synthetic import make_dataset
from ..tiers import slow_fixture


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
@slow_fixture
def run_dir(dataset, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    config = TrainConfig(recipe="baseline", epochs=4, image_size=32, batch_size=8, seed=1, precision="float32")
    return train(config, Workspace(dataset, tmp_path_factory.mktemp("runs"), cache, quiet))


def test_run_directory_holds_the_contract(run_dir):
    for name in ("model.keras", "config.json", "history.json", "metrics.json", "labels.json", "environment.json"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"train_accuracy", "val_accuracy", "best_val_accuracy", "epoch_seconds", "skipped_files"} <= set(metrics)
    assert len(metrics["epoch_seconds"]) == 4 and all(s > 0 for s in metrics["epoch_seconds"])
    assert metrics["skipped_files"] == 0
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert json.loads((run_dir / "labels.json").read_text())["class_names"] == ["horses", "humans"]
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["keras"] == keras.__version__ and len(env["data_manifest_sha256"]) == 64
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 4
    assert not list(run_dir.glob(".*tmp*")), "no temporary files left behind"


def test_synthetic_run_learns(run_dir):
    assert load_run(run_dir).metrics["best_val_accuracy"] >= 0.9


def test_predictor_and_evaluate_agree(run_dir, dataset):
    predictor = Predictor.from_run(run_dir)
    files = sorted((dataset / "validation-horse-or-human").rglob("*.png"))
    results = predictor.predict_files(files)
    assert all(r.error is None for r in results)
    metrics = evaluate_run(run_dir, EvalSplit(data_dir=dataset), log=lambda s: None)
    truth = ["horses" if "/horses/" in str(f) else "humans" for f in files]
    accuracy = np.mean([r.label == t for r, t in zip(results, truth)])
    assert metrics["accuracy"] == pytest.approx(accuracy)
    assert (run_dir / "predictions.csv").read_text().count("\n") == len(files) + 1
    assert sum(map(sum, metrics["confusion_matrix"])) == len(files)


def test_predict_files_reports_bad_files_without_stopping(run_dir, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    results = Predictor.from_run(run_dir).predict_files([bad, tmp_path / "missing.jpg"])
    assert results[0].label is None and "bad.png" in results[0].error
    assert "no such file" in results[1].error


@pytest.mark.slow
def test_saved_model_is_float32_even_when_trained_in_bfloat16(dataset, tmp_path):
    config = TrainConfig(recipe="augmented", epochs=1, image_size=32, batch_size=8, precision="mixed_bfloat16")
    run = train(config, Workspace(dataset, tmp_path / "runs", tmp_path / "cache", quiet))
    model = keras.saving.load_model(run / "model.keras")  # plain Keras, compile included: nothing custom saved
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
    assert json.loads((run / "environment.json").read_text())["precision"] == "mixed_bfloat16"


@pytest.mark.slow
def test_unreadable_training_file_is_skipped_and_counted(dataset, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    (data / "horse-or-human" / "horses" / "broken.png").write_bytes(b"not an image")
    lines = []
    config = TrainConfig(recipe="baseline", epochs=1, image_size=32, batch_size=8, precision="float32")
    run = train(config, Workspace(data, tmp_path / "runs", tmp_path / "cache", lines.append))
    assert load_run(run).metrics["skipped_files"] == 1
    assert any("broken.png" in line and "skipped" in line for line in lines)


@pytest.mark.slow
def test_callback_options_run(dataset, tmp_path):
    config = TrainConfig(
        recipe="baseline",
        epochs=2,
        image_size=32,
        batch_size=8,
        early_stopping=True,
        reduce_lr=True,
        dropout=0.2,
        l2=1e-4,
        precision="float32",
    )
    run = train(config, Workspace(dataset, tmp_path / "runs", tmp_path / "cache", quiet))
    assert [r.path for r in list_runs(tmp_path / "runs")] == [run]


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(HorsesHumansError, match="nothing: no data set here \\(no such folder\\).*data download"):
        train(
            TrainConfig(recipe="baseline", epochs=1),
            Workspace(tmp_path / "nothing", tmp_path / "runs", tmp_path / "cache", quiet),
        )
