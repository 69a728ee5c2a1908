"""--tensorboard and --mlflow, offline: event files read back with TensorBoard's own reader, an MLflow SQLite store
read back with MlflowClient; a missing extra is one error line naming it."""

import importlib.util
import json

import pytest

from horses_humans.cli.main import main
from horses_humans.config import TrainConfig
from horses_humans.training import tracking

from ..tiers import slow_fixture


@pytest.fixture(scope="module")
@slow_fixture
def tracked_run(tmp_path_factory):
    """One 2-epoch run at 32 px with both trackers on, MLflow in its default store (RUNS_DIR/mlflow)."""
    from ..synthetic import make_dataset

    data = make_dataset(tmp_path_factory.mktemp("data"), train_per_class=4, val_per_class=2)
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MLFLOW_TRACKING_URI", raising=False)
        env.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
        assert (
            main(
                [
                    "train",
                    "--recipe",
                    "baseline",
                    "--epochs",
                    "2",
                    "--image-size",
                    "32",
                    "--batch-size",
                    "4",
                    "--precision",
                    "float32",
                    "--data-dir",
                    str(data),
                    "--runs-dir",
                    str(runs),
                    "--cache-dir",
                    str(tmp_path_factory.mktemp("c")),
                    "--tensorboard",
                    "--mlflow",
                ]
            )
            == 0
        )
    (run,) = [p for p in runs.iterdir() if p.name != tracking.MLFLOW_DIR]
    return runs, run


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value)]} of the epoch scalars in a TensorBoard log folder, through TensorBoard's reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    events = EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in events.Tensors(tag)]
        for tag in events.Tags()["tensors"]
        if tag.startswith("epoch_")
    }


def test_tensorboard_logs_every_epoch_inside_the_run(tracked_run):
    _, run = tracked_run
    history = json.loads((run / "history.json").read_text())
    train, validation = scalars(run / "tensorboard" / "train"), scalars(run / "tensorboard" / "validation")
    assert [step for step, _ in train["epoch_loss"]] == [0, 1]  # Keras counts epochs from 0
    assert [v for _, v in train["epoch_accuracy"]] == pytest.approx([h["accuracy"] for h in history])
    assert [v for _, v in validation["epoch_loss"]] == pytest.approx([h["val_loss"] for h in history])


def test_mlflow_run_has_params_metrics_per_epoch_and_the_run_directory(tracked_run):
    from mlflow.tracking import MlflowClient

    runs, run = tracked_run
    assert (runs / "mlflow" / "mlflow.db").is_file()
    client = MlflowClient(tracking.tracking_uri(runs))
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.status == "FINISHED" and found.info.run_name == run.name
    config = json.loads((run / "config.json").read_text())
    assert found.data.params["recipe"] == "baseline" and found.data.params["epochs"] == "2"  # the resolved config
    assert found.data.params["conv_filters"] == ",".join(map(str, config["conv_filters"]))
    history = json.loads((run / "history.json").read_text())
    val = client.get_metric_history(found.info.run_id, "val_accuracy")
    assert [(m.step, m.value) for m in val] == [(h["epoch"], pytest.approx(h["val_accuracy"])) for h in history]
    assert {"loss", "accuracy", "val_loss", "learning_rate", "seconds"} <= set(found.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"model.keras", "config.json", "history.json", "metrics.json", "labels.json", "tensorboard"} <= artifacts


def test_mlflow_run_fails_with_training_and_honours_the_tracking_uri(tracked_run, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri = tracking.tracking_uri(tracked_run[0])  # another runs directory's store (a new store takes seconds to set up)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "mine")
    tracker = tracking.MlflowTracker(tmp_path / "runs")
    with (
        pytest.raises(RuntimeError),
        tracker.run(tmp_path / "runs" / "r1", TrainConfig(recipe="baseline")) as log_epoch,
    ):
        log_epoch({"epoch": 1, "loss": 0.5})
        raise RuntimeError("out of memory")
    assert not (tmp_path / "runs" / "mlflow").exists()  # the URI given wins over the default store
    client = MlflowClient(uri)
    (found,) = client.search_runs([client.get_experiment_by_name("mine").experiment_id])
    assert found.info.status == "FAILED" and found.data.metrics == {"loss": 0.5}


@pytest.mark.parametrize("option,module", [("--mlflow", "mlflow"), ("--tensorboard", "tensorboard")])
def test_missing_extra_is_one_error_line_naming_it(option, module, tmp_path, monkeypatch, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else find_spec(name, *a))
    assert (
        main(
            [
                "train",
                "--recipe",
                "baseline",
                option,
                "--data-dir",
                str(tmp_path / "no-data"),
                "--runs-dir",
                str(tmp_path),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err == f"error: {option} needs {module}: pip install 'horses-humans[{module}]'.\n"
