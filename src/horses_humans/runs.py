"""The run-directory contract: what a training run leaves behind, and how to read it back."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import HorsesHumansError, TrainConfig, describe_error
from .outputs import ClassOutput
from .atomic import atomic_path, write_json_atomic

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
LABELS_FILE = "labels.json"
ENVIRONMENT_FILE = "environment.json"
DATA_FILE = "data.json"  # the data folder, its layout, and the exact files of each side (see rundata.py)
CALIBRATION_FILE = "calibration.json"  # the fitted temperature (calibration.py), and other helpers' keys


@dataclass
class Run:
    """A finished run read back from disk (the model is loaded lazily: it is the heavy part)."""

    path: Path
    config: TrainConfig
    labels: dict
    metrics: dict
    history: list[dict]
    environment: dict
    data: dict = field(default_factory=dict)  # data.json; empty for runs made before it existed

    @property
    def class_names(self) -> list[str]:
        return self.labels["class_names"]

    @property
    def output(self) -> ClassOutput:
        """How to read this run's model output (classes, sigmoid or softmax, threshold, calibrated temperature)."""
        path = self.path / CALIBRATION_FILE
        calibration = json.loads(path.read_text()) if path.exists() else {}
        return ClassOutput.from_labels({**self.labels, "temperature": calibration.get("temperature", 1.0)})

    @property
    def image_size(self) -> int:
        return self.labels["input_size"]

    def load_model(self):
        """The saved float32 Keras model (raw 0-255 RGB pixels in; out as labels.json's output_kind says)."""
        import keras

        path = self.path / MODEL_FILE
        try:
            return keras.saving.load_model(path, compile=False)
        except Exception as exc:  # a damaged file fails in many ways (not a zip, bad JSON, missing weights, ...)
            raise HorsesHumansError(f"{path}: cannot load the model ({describe_error(exc)}); "
                                    "the file is damaged or incomplete: train the run again.") from None


def new_run_dir(runs_dir: Path, config: TrainConfig) -> Path:
    """A fresh, uniquely named run directory: RECIPE-SIZE-sSEED-TIMESTAMP."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{config.recipe}-{config.image_size}-s{config.seed}-{stamp}"
    for n in range(1000):
        path = Path(runs_dir) / (base if n == 0 else f"{base}-{n}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise HorsesHumansError(f"{runs_dir}: cannot create a new run directory named {base}.")


def labels_record(class_names: list[str], image_size: int) -> dict:
    """What travels with every model: class order, output kind and how to read it, input size, pixel range."""
    return {
        **ClassOutput.for_classes(class_names).record(),
        "input_size": image_size,
        "input_shape": [image_size, image_size, 3],
        "pixel_range": [0, 255],
        "color": "RGB",
    }


def save_model(path: Path, model) -> None:
    """Save a Keras model atomically into the run directory."""
    with atomic_path(Path(path) / MODEL_FILE, suffix=".keras") as tmp:
        model.save(tmp)


def save_json(run_dir: Path, name: str, obj) -> None:
    """Write one of the run's JSON files atomically."""
    write_json_atomic(Path(run_dir) / name, obj)


def load_run(path: str | Path) -> Run:
    """Read a run directory; a clear error if it is not one or its training did not finish."""
    path = Path(path)
    if not path.is_dir():
        raise HorsesHumansError(f"{path}: no such run directory.")
    missing = [n for n in (MODEL_FILE, CONFIG_FILE, LABELS_FILE) if not (path / n).exists()]
    if missing:
        raise HorsesHumansError(f"{path}: not a finished run (missing {', '.join(missing)}). Train one with `horses-humans train`.")
    read = lambda name: json.loads((path / name).read_text()) if (path / name).exists() else {}  # noqa: E731
    return Run(path, TrainConfig.from_dict(read(CONFIG_FILE)), read(LABELS_FILE), read(METRICS_FILE),
               read(HISTORY_FILE) or [], read(ENVIRONMENT_FILE), read(DATA_FILE))


def list_runs(runs_dir: Path) -> list[Run]:
    """Every finished run under runs_dir (one level), sorted by name."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return [load_run(p) for p in sorted(runs_dir.iterdir()) if (p / MODEL_FILE).exists() and (p / CONFIG_FILE).exists()]


def best_run(runs_dir: Path) -> Run:
    """The finished run with the highest best_val_accuracy (the newest among equals); a clear error if none."""
    runs = list_runs(runs_dir)
    if not runs:
        raise HorsesHumansError(f"{runs_dir}: no finished runs. Train one with `horses-humans train --runs-dir {runs_dir}` "
                                "or name a run directory.")
    return max(runs, key=lambda run: (run.metrics.get("best_val_accuracy") or 0.0, run.path.name))
