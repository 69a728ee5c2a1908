"""Reporting a training run to trackers beside its run directory: TensorBoard logs inside it (--tensorboard) and
an MLflow run (--mlflow) with the resolved config as params, every epoch's metrics and the run directory as artefacts.
Both libraries are optional extras, imported only when asked for."""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..config import HorsesHumansError, TrainConfig
from ..runs.layout import TENSORBOARD_DIR

MLFLOW_DIR = "mlflow"  # RUNS_DIR/mlflow/mlflow.db and artifacts/, when MLFLOW_TRACKING_URI is not set
EXPERIMENT = "horses-humans"  # the MLflow experiment, unless MLFLOW_EXPERIMENT_NAME says another


def require(module: str, extra: str, option: str) -> None:
    """One error line naming the extra to install when an optional library is missing."""
    if importlib.util.find_spec(module) is None:
        raise HorsesHumansError(f"{option} needs {module}: pip install 'horses-humans[{extra}]'.")


def tensorboard_callback(run_dir: Path):
    """Keras' TensorBoard callback writing into RUN/tensorboard (tf.summary needs the tensorboard package)."""
    import keras

    require("tensorboard", "tensorboard", "--tensorboard")
    return keras.callbacks.TensorBoard(log_dir=str(Path(run_dir) / TENSORBOARD_DIR))


def tracking_uri(runs_dir: Path) -> str:
    """$MLFLOW_TRACKING_URI, else a SQLite store in RUNS_DIR/mlflow (MLflow 3 refuses plain file stores)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path(runs_dir) / MLFLOW_DIR / 'mlflow.db').resolve()}"


class MlflowTracker:
    """One MLflow run per training run, through MlflowClient (no global active run)."""

    def __init__(self, runs_dir: Path):
        require("mlflow", "mlflow", "--mlflow")
        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines ("creating tables") are not ours
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.local = not os.environ.get("MLFLOW_TRACKING_URI")
        if self.local:
            (Path(runs_dir) / MLFLOW_DIR).mkdir(parents=True, exist_ok=True)
        self.uri, self.artifacts = tracking_uri(runs_dir), (Path(runs_dir) / MLFLOW_DIR / "artifacts").resolve()
        self.client = MlflowClient(tracking_uri=self.uri)

    def experiment_id(self) -> str:
        """The experiment's id, created on first use (artefacts beside a local database, else where the server says)."""
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        found = self.client.get_experiment_by_name(name)
        if found:
            return found.experiment_id
        return self.client.create_experiment(name, artifact_location=self.artifacts.as_uri() if self.local else None)

    @contextmanager
    def run(self, run_dir: Path, config: TrainConfig) -> Iterator[Callable[[dict], None]]:
        """An MLflow run around training: yields the per-epoch logger; logs the run directory when training ends
        well, and marks the MLflow run FAILED (or KILLED on Ctrl-C) when it does not."""
        run = self.client.create_run(self.experiment_id(), run_name=Path(run_dir).name, tags={"run_dir": str(run_dir)})
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=params(config))
        try:
            yield lambda row: self.client.log_batch(run_id, metrics=epoch_metrics(row))
        except BaseException as exc:
            self.client.set_terminated(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        self.client.log_artifacts(run_id, str(run_dir))
        self.client.set_terminated(run_id, "FINISHED")


def params(config: TrainConfig) -> list:
    """The resolved config as MLflow params (tuples as 16,32,64, as on the command line)."""
    from mlflow.entities import Param

    text = lambda v: ",".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)  # noqa: E731
    return [Param(name, text(value)) for name, value in config.to_dict().items()]


def epoch_metrics(row: dict) -> list:
    """One history row (loss, accuracy, val_*, learning_rate, seconds) as MLflow metrics at step = epoch."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(key, float(value), now, row["epoch"]) for key, value in row.items() if key != "epoch"]
