"""The run-directory contract: what a training run leaves behind, and how to read it back."""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .config import HorsesHumansError, TrainConfig, describe_error
from .outputs import ClassOutput
from .atomic import atomic_path, write_json_atomic

MODEL_FILE = "model.keras"  # the last epoch's weights
BEST_MODEL_FILE = "model-best.keras"  # the best epoch's weights by CHECKPOINT_MONITOR
CHECKPOINT_FILES = {"best": BEST_MODEL_FILE, "last": MODEL_FILE}
# Every consumer (evaluate, predict, serve, export, report, explain, runs, best_run) uses this one unless told otherwise.
DEFAULT_CHECKPOINT = "best"
# val_accuracy: the number users compare runs by (and EarlyStopping watches); ties keep the earlier epoch.
CHECKPOINT_MONITOR = "val_accuracy"
CHECKPOINT_RULE = "highest val_accuracy over all epochs (every stage); ties keep the earlier epoch"
OPTIMISM_NOTE = ("validation accuracy chose the best epoch, so it is optimistic for that checkpoint; "
                 "a held-out test split (evaluate --split test) or real photos (evaluate --data DIR) measure it fairly")
MODEL_CARD_FILE = "MODEL_CARD.md"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
LABELS_FILE = "labels.json"
ENVIRONMENT_FILE = "environment.json"
DATA_FILE = "data.json"  # the data folder, its layout, and the exact files of each side (see rundata.py)
CALIBRATION_FILE = "calibration.json"  # the fitted temperature (calibration.py), and other helpers' keys
# A run is finished when METRICS_FILE exists. Until then RESUME_DIR holds Keras' BackupAndRestore state, so a killed
# `train` continues with `train --resume RUN`; atomic.py's temporary files are named ".NAME.*.tmp*".
RESUME_DIR = "resume"
TEMP_GLOB = ".*.tmp*"


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
    checkpoint: str = DEFAULT_CHECKPOINT  # which checkpoint load_model loads unless told: "best" or "last"

    @property
    def class_names(self) -> list[str]:
        return self.labels["class_names"]

    @property
    def output(self) -> ClassOutput:
        """How to read this run's model output (classes, sigmoid or softmax, threshold, calibrated temperature)."""
        calibration = read_calibration(self.path)
        return ClassOutput.from_labels({**self.labels, "temperature": calibration.get("temperature", 1.0)})

    @property
    def raw_output(self) -> ClassOutput:
        """The output uncalibrated (T = 1): what the model itself says, which calibration fits and exports match."""
        return replace(self.output, temperature=1.0)

    @property
    def image_size(self) -> int:
        return self.labels["input_size"]

    def checkpoint_path(self, checkpoint: str | None = None) -> Path:
        """The file of a checkpoint (default: the run's); runs made before checkpoints have model.keras as both."""
        path = self.path / CHECKPOINT_FILES[check_checkpoint(checkpoint or self.checkpoint)]
        return path if path.exists() else self.path / MODEL_FILE

    def checkpoint_record(self, checkpoint: str | None = None) -> dict:
        """{file, epoch, val_accuracy, val_loss} of a checkpoint, from metrics.json (older runs: model.keras, the
        last epoch, for both)."""
        name = check_checkpoint(checkpoint or self.checkpoint)
        recorded = self.metrics.get("checkpoints", {}).get(name)
        if recorded:
            return recorded
        return {"file": MODEL_FILE, "epoch": self.metrics.get("epochs_run") or len(self.history) or None,
                "val_accuracy": self.metrics.get("val_accuracy"), "val_loss": self.metrics.get("val_loss")}

    @property
    def served_accuracy(self) -> float | None:
        """Validation accuracy of the checkpoint load_model loads (optimistic for the best one: see OPTIMISM_NOTE)."""
        return self.checkpoint_record().get("val_accuracy")

    def load_model(self, checkpoint: str | None = None):
        """The saved float32 Keras model of a checkpoint (default: the run's) (raw 0-255 RGB pixels in; out as
        labels.json's output_kind says)."""
        import keras

        path = self.checkpoint_path(checkpoint)
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


def check_checkpoint(checkpoint: str) -> str:
    """The checkpoint name, or a one-line error naming the choices."""
    if checkpoint not in CHECKPOINT_FILES:
        raise HorsesHumansError(f"--checkpoint {checkpoint!r}: choose one of {', '.join(CHECKPOINT_FILES)} "
                                f"(default {DEFAULT_CHECKPOINT}).")
    return checkpoint


def save_model(path: Path, model, name: str = MODEL_FILE) -> None:
    """Save a Keras model atomically into the run directory (as model.keras unless named)."""
    with atomic_path(Path(path) / name, suffix=".keras") as tmp:
        model.save(tmp)


def save_json(run_dir: Path, name: str, obj) -> None:
    """Write one of the run's JSON files atomically."""
    write_json_atomic(Path(run_dir) / name, obj)


def load_run(path: str | Path, checkpoint: str | None = None) -> Run:
    """Read a run directory whose load_model loads `checkpoint` (default: DEFAULT_CHECKPOINT); a clear error if it is
    not one or its training did not finish."""
    path = Path(path)
    checkpoint = check_checkpoint(checkpoint or DEFAULT_CHECKPOINT)
    if not path.is_dir():
        raise HorsesHumansError(f"{path}: no such run directory.")
    missing = [n for n in (MODEL_FILE, CONFIG_FILE, LABELS_FILE) if not (path / n).exists()]
    if missing:
        raise HorsesHumansError(f"{path}: not a finished run (missing {', '.join(missing)}). Train one with `horses-humans train`.")
    read = lambda name: json.loads((path / name).read_text()) if (path / name).exists() else {}  # noqa: E731
    return Run(path, TrainConfig.from_dict(read(CONFIG_FILE)), read(LABELS_FILE), read(METRICS_FILE),
               read(HISTORY_FILE) or [], read(ENVIRONMENT_FILE), read(DATA_FILE), checkpoint)


def list_runs(runs_dir: Path, checkpoint: str | None = None) -> list[Run]:
    """Every finished run under runs_dir (one level), sorted by name, each set to `checkpoint`."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return [load_run(p, checkpoint) for p in sorted(runs_dir.iterdir()) if (p / MODEL_FILE).exists() and (p / CONFIG_FILE).exists()]


def best_run(runs_dir: Path, checkpoint: str | None = None) -> Run:
    """The finished run whose served checkpoint (`checkpoint`, default DEFAULT_CHECKPOINT) has the highest validation
    accuracy (the newest among equals); a clear error if none."""
    runs = list_runs(runs_dir, checkpoint)
    if not runs:
        raise HorsesHumansError(f"{runs_dir}: no finished runs. Train one with `horses-humans train --runs-dir {runs_dir}` "
                                "or name a run directory.")
    return max(runs, key=lambda run: (run.served_accuracy or 0.0, run.path.name))


def read_calibration(run_dir) -> dict:
    """RUN/calibration.json (the temperature, the unsure rule: each written by its own module) as a dict, {} for a
    run that has none; a clear error if it is damaged."""
    path = Path(run_dir) / CALIBRATION_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise HorsesHumansError(f"{path}: not valid JSON ({exc}); delete it and run `horses-humans calibrate RUN` "
                                "and `horses-humans unsure RUN`.") from None


def update_calibration(run_dir, **entries) -> dict:
    """Merge entries into RUN/calibration.json, keeping every other key (temperature and unsure rule share it);
    the run directory is locked while the file is read, merged and atomically replaced."""
    path = Path(run_dir) / CALIBRATION_FILE
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        record = {**read_calibration(run_dir), **entries}
        write_json_atomic(path, record)
        return record
    finally:
        os.close(fd)  # closing releases the lock
