"""The served file is the scored file: a run keeps its last and best epochs, metrics.json says which epoch each file
holds, and evaluate, predict, serve, export and best_run all use the same one (best by default, last on request)."""

import json

import keras
import numpy as np
import pytest
from fastapi.testclient import TestClient

from horses_humans.analysis.evaluation import EvalSplit, evaluate_run
from horses_humans.analysis.report import checkpoint_row
from horses_humans.cli.main import main
from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.core.workspace import Workspace, quiet
from horses_humans.export.pipeline import export, open_source
from horses_humans.inference.predictor import Predictor
from horses_humans.runs.store import BEST_MODEL_FILE, MODEL_FILE, best_run, load_run
from horses_humans.serve.app import create_app
from horses_humans.serve.settings import ServeSettings
from horses_humans.training import callbacks
from horses_humans.training import loop as training
from horses_humans.training.callbacks import BestWeights
from horses_humans.training.loop import train
from horses_humans.training.records import checkpoints_record

from ..fake_runs import write_run
from ..synthetic import make_dataset
from ..tiers import slow_fixture


class ZeroLastEpoch(keras.callbacks.Callback):
    """Zeroes every weight and the learning rate as the last epoch starts: the last epoch answers one class for
    every image (50% on the balanced validation set), so the best epoch is an earlier one."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            self.model.set_weights([np.zeros_like(w) for w in self.model.get_weights()])
            self.model.optimizer.learning_rate.assign(0.0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
@slow_fixture
def run_dir(dataset, tmp_path_factory):
    """A tiny baseline run whose last epoch is worse than its best."""
    config = TrainConfig(recipe="baseline", epochs=4, image_size=32, batch_size=8, seed=1, precision="float32")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "observers", lambda run_dir, epochs, tensorboard: [ZeroLastEpoch(epochs)])
        return train(
            config, Workspace(dataset, tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("cache"), quiet)
        )


def validation_files(dataset):
    return sorted((dataset / "validation-horse-or-human").rglob("*.png"))


def class_of(label, probabilities) -> str:
    """The class an answer names: its label, or for an `unsure` answer (the zeroed last epoch answers 0.5 for
    everything, below the run's fitted confidence) the most probable class."""
    return label if label != "unsure" else max(probabilities, key=probabilities.get)


def accuracy_of(labels, files) -> float:
    return float(
        np.mean([label == ("horses" if "/horses/" in str(f) else "humans") for label, f in zip(labels, files)])
    )


def test_metrics_say_which_epoch_each_file_holds(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    checkpoints = metrics["checkpoints"]
    best, last = checkpoints["best"], checkpoints["last"]
    assert (checkpoints["monitor"], checkpoints["default"]) == ("val_accuracy", "best") and "ties" in checkpoints[
        "rule"
    ]
    assert (best["file"], last["file"]) == (BEST_MODEL_FILE, MODEL_FILE)
    assert last["epoch"] == 4 and last["val_accuracy"] == 0.5 and best["epoch"] < 4
    assert best["val_accuracy"] == metrics["best_val_accuracy"] >= 0.9 and best["epoch"] == metrics["best_epoch"]
    assert (run_dir / BEST_MODEL_FILE).read_bytes() != (run_dir / MODEL_FILE).read_bytes()


def test_evaluate_scores_the_served_file_and_matches_metrics(run_dir, dataset):
    best = evaluate_run(run_dir, EvalSplit(data_dir=dataset), log=lambda s: None)
    assert best["checkpoint"] == "best" and best["checkpoint_file"] == BEST_MODEL_FILE
    assert best["accuracy"] == pytest.approx(load_run(run_dir).checkpoint_record()["val_accuracy"])
    last = evaluate_run(run_dir, EvalSplit(data_dir=dataset), "last", log=lambda s: None)
    assert last["checkpoint_file"] == MODEL_FILE and last["accuracy"] == 0.5
    kept = sorted(p.name for p in (run_dir / "evaluations").glob("*.json"))
    assert kept == ["validation-best.json", "validation-last.json"]


def test_predict_serve_and_export_use_the_same_file(run_dir, dataset):
    files = validation_files(dataset)
    predicted = Predictor.from_run(run_dir).predict_files(files)
    accuracy = accuracy_of([class_of(r.label, r.probabilities) for r in predicted], files)
    assert accuracy == pytest.approx(load_run(run_dir).checkpoint_record("best")["val_accuracy"])
    last = Predictor.from_run(run_dir, "last").predict_files(files)
    assert accuracy_of([class_of(r.label, r.probabilities) for r in last], files) == 0.5

    with TestClient(create_app(ServeSettings(run=run_dir))) as client:
        info = client.get("/v1/model").json()
        assert info["checkpoint"]["name"] == "best" and info["checkpoint"]["file"] == BEST_MODEL_FILE
        assert info["checkpoint"]["val_accuracy"] == pytest.approx(accuracy)
        assert info["model_card"] in client.get("/").text  # the upload page links the card
        card = client.get(info["model_card"])
        assert card.headers["content-type"].startswith("text/markdown") and "`model-best.keras`" in card.text
        served = [
            client.post("/v1/predict", files=[("files", (f.name, f.read_bytes(), "image/png"))]).json()
            for f in files[:4]
        ]
    assert [s["results"][0]["label"] for s in served] == [r.label for r in predicted[:4]]

    source = open_source(run_dir, dataset, log=lambda s: None)
    result = export(source, "keras", latency_runs=1)
    assert (result.path / "model.keras").read_bytes() == (run_dir / BEST_MODEL_FILE).read_bytes()
    record = json.loads((result.path / "export.json").read_text())
    assert record["checkpoint_file"] == BEST_MODEL_FILE and record["keras_validation_accuracy"] == pytest.approx(
        accuracy
    )
    assert (result.path / "MODEL_CARD.md").read_text() == (run_dir / "MODEL_CARD.md").read_text()


def test_training_writes_a_card_that_shows_the_served_checkpoint_and_its_limits(run_dir):
    card = (run_dir / "MODEL_CARD.md").read_text()
    assert "## Limitations, bias and risks" in card and "white-background shortcut" in card and "CGI-to-real" in card
    served = next(line for line in card.splitlines() if line.startswith("| best |"))
    assert "`model-best.keras`" in served and served.endswith("| yes |") and "optimistic" in card


def test_serve_setting_and_cli_choose_the_last_checkpoint(run_dir, dataset, monkeypatch, capsys):
    monkeypatch.setenv("HORSES_HUMANS_SERVE_CHECKPOINT", "last")
    with TestClient(create_app(ServeSettings(run=run_dir))) as client:
        assert client.get("/v1/model").json()["checkpoint"]["file"] == MODEL_FILE
    files = validation_files(dataset)
    assert main(["predict", str(run_dir), *map(str, files), "--json", "--checkpoint", "last"]) == 0
    labels = [class_of(r["label"], r["probabilities"]) for r in json.loads(capsys.readouterr().out)]
    assert accuracy_of(labels, files) == 0.5
    with pytest.raises(SystemExit):  # argparse: not one of best, last
        main(["evaluate", str(run_dir), "--checkpoint", "nonsense"])


def test_best_run_picks_by_the_served_checkpoint(tmp_path):
    def checkpoints(best, last):
        return {
            "best": {"file": BEST_MODEL_FILE, "epoch": 1, "val_accuracy": best},
            "last": {"file": MODEL_FILE, "epoch": 2, "val_accuracy": last},
        }

    new = write_run(
        tmp_path,
        TrainConfig(recipe="baseline", seed=0),
        {"val_accuracy": 0.6, "best_val_accuracy": 0.9, "checkpoints": checkpoints(0.9, 0.6)},
    )
    (new / BEST_MODEL_FILE).write_bytes(b"")  # the file metrics.json names (fake runs' model files are empty)
    # made before checkpoints: model.keras is the last epoch, whatever its best epoch scored
    old = write_run(tmp_path, TrainConfig(recipe="baseline", seed=1), {"val_accuracy": 0.8, "best_val_accuracy": 0.95})
    assert best_run(tmp_path).path == new
    assert best_run(tmp_path, "last").path == old


def test_metrics_record_each_saved_files_own_validation_score(run_dir, dataset):
    """Training may run in bfloat16: metrics.json keeps its figure and adds what the saved float32 file scores."""
    run = load_run(run_dir)
    best, last = run.metrics["checkpoints"]["best"], run.metrics["checkpoints"]["last"]
    scored = {
        c: evaluate_run(run_dir, EvalSplit(data_dir=dataset), c, log=lambda s: None)["accuracy"]
        for c in ("best", "last")
    }
    assert best["saved_val_accuracy"] == pytest.approx(scored["best"]) and last["saved_val_accuracy"] == 0.5
    assert run.served_accuracy == best["saved_val_accuracy"]


def test_runs_shows_the_served_files_own_score_beside_trainings(tmp_path, capsys):
    checkpoints = {
        "best": {"file": BEST_MODEL_FILE, "epoch": 3, "val_accuracy": 0.871, "saved_val_accuracy": 0.863},
        "last": {"file": MODEL_FILE, "epoch": 5, "val_accuracy": 0.8, "saved_val_accuracy": 0.8},
    }
    run = write_run(
        tmp_path,
        TrainConfig(recipe="baseline"),
        {"val_accuracy": 0.8, "best_val_accuracy": 0.871, "checkpoints": checkpoints},
    )
    (run / BEST_MODEL_FILE).write_bytes(b"")
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| baseline "))
    assert "| 87.1 | 86.3 |" in row  # best epoch as training measured it, then the served file's own score


def test_the_report_says_which_checkpoint_and_that_it_is_optimistic(run_dir):
    name, text = checkpoint_row(load_run(run_dir))
    assert name == "checkpoint" and text.startswith("best (model-best.keras, epoch ") and "optimistic" in text


def test_runs_made_before_checkpoints_load_model_keras_as_both(tmp_path):
    old = load_run(
        write_run(tmp_path, TrainConfig(recipe="baseline"), {"val_accuracy": 0.8, "best_val_accuracy": 0.95})
    )
    assert old.checkpoint_path("best") == old.checkpoint_path("last") == old.path / MODEL_FILE
    assert old.checkpoint_record("best")["val_accuracy"] == old.served_accuracy == 0.8
    with pytest.raises(HorsesHumansError, match="best, last"):
        load_run(old.path, "middle")


def test_best_weights_keep_the_earlier_epoch_on_ties():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    keeper = BestWeights(model)
    for epoch, accuracy in enumerate([0.5, 0.8, 0.8, 0.7]):
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        keeper.on_epoch_end(epoch, {"val_accuracy": accuracy})
    assert keeper.epoch == 2 and keeper.best == 0.8 and keeper.weights[0].flat[0] == 1
    history = [{"val_accuracy": a, "val_loss": 1.0} for a in (0.5, 0.8, 0.8, 0.7)]
    record = checkpoints_record(history, keeper.epoch)
    assert record["best"]["epoch"] == 2 and record["last"] == {
        "file": MODEL_FILE,
        "epoch": 4,
        "val_accuracy": 0.7,
        "val_loss": 1.0,
    }


def test_early_stopping_restores_only_before_fine_tuning(tmp_path):
    """model.keras is the last epoch; the head stage of a fine-tuned run still hands its best epoch to fine-tuning."""
    stopper = lambda callbacks: next(c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping))  # noqa: E731
    recorder = callbacks.EpochRecorder(tmp_path, 4, lambda s: None)
    tuned = TrainConfig(recipe="mobilenet_v2", early_stopping=True, fine_tune_from="10")
    assert stopper(callbacks.build_callbacks(tuned, recorder)).restore_best_weights
    recorder.history.append({"epoch": 1})  # the fine-tuning stage starts after the head's epochs
    assert not stopper(callbacks.build_callbacks(tuned, recorder)).restore_best_weights
    plain = callbacks.build_callbacks(
        TrainConfig(recipe="baseline", early_stopping=True), callbacks.EpochRecorder(tmp_path, 4, lambda s: None)
    )
    assert not stopper(plain).restore_best_weights
