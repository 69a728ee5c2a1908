"""Resuming interrupted training: RUN/resume holds the state of an unfinished run after its last completed epoch.

After every epoch, EpochBackup writes the fitted model's weights with its optimizer state, the best epoch's weights
(BestWeights), and state.json last, atomically, naming them: a kill at any moment leaves the previous epoch's complete
backup (Keras' BackupAndRestore writes its two files in place, so a kill between them pairs one epoch's weights with
another's count). The arrays are copied at the epoch's end and written by a thread while the next epoch trains, so
training waits for the copy alone: for the baseline at 150 px (114 MB of weights and RMSprop state) 0.09 s an epoch,
where the write takes 0.20 s and Keras' save_weights 0.25 s (`python bench/bench_backup.py`, 2-core CPU, busy).
history.json is rewritten after every epoch already (EpochRecorder);
a resumed run keeps its rows up to the backed-up epoch. `train --resume RUN` (training.resume_run) rebuilds the model
from the recorded config, skips the stages that finished, restores the stage that was running and continues; on
success RESUME_DIR and leftover temporary files are removed, and metrics.json marks the run finished.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import keras
import numpy as np

from ..config import HorsesHumansError, TrainConfig
from ..core.atomic import atomic_path, write_json_atomic
from ..runs import schema as runschema
from ..runs.layout import RESUME_STATE_FILE
from ..runs.store import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, RESUME_DIR, TEMP_GLOB, read_json
from .plan import Stage

STATE_FILE = (
    RESUME_STATE_FILE  # in RESUME_DIR: {stage, index, stage_start, epochs, done, weights, best, counters}; last
)
# What EarlyStopping and ReduceLROnPlateau count between epochs: backed up, so their patience runs on across a resume.
COUNTED = (keras.callbacks.EarlyStopping, keras.callbacks.ReduceLROnPlateau)
COUNTERS = ("wait", "best", "best_epoch", "cooldown_counter")


class Backup:
    """RUN/resume of one run: what its last completed epoch left (state), written by EpochBackup, read on resume."""

    def __init__(self, run_dir: Path, best=None):
        self.run_dir, self.folder, self.best = Path(run_dir), Path(run_dir) / RESUME_DIR, best
        self.state = read_state(self.folder)
        self.writer: threading.Thread | None = None  # the previous epoch's backup, being written
        self.error: Exception | None = None
        self.prune()  # files of a later epoch the killed process wrote but never recorded

    @property
    def epochs(self) -> int:
        """Epochs completed before the interruption (0 for a fresh run)."""
        return self.state.get("epochs", 0)

    @property
    def index(self) -> int:
        """The place of the stage the backup is of, 0 for none (older versions recorded only the place, as stage)."""
        legacy = self.state.get("stage")
        return self.state.get("index", legacy if isinstance(legacy, int) else 0)

    def holds(self, stage: Stage) -> bool:
        """True when the backup is of this stage: by its name, or by its place in a backup an older version wrote."""
        return self.state.get("stage") in (stage.name, stage.index)

    def superseded(self, stage: Stage) -> bool:
        """True when a later stage had started: this one needs neither fitting nor restoring."""
        return self.index > stage.index

    def begin(self, stage: Stage) -> Stage:
        """The stage as it resumes: beginning at the epoch count the backup recorded, if the backup is of it."""
        return stage.starting_at(self.state["stage_start"]) if self.holds(stage) else stage

    def end(self, stage: Stage, done_epochs: int) -> int:
        """The epoch a stage's fit runs to: its last epoch, or where it stopped if it finished (early stopping)."""
        return done_epochs if self.holds(stage) and self.state.get("done") else stage.last_epoch

    def callback(self, stage: Stage, done_epochs: int) -> EpochBackup:
        """The callback that restores this stage (if the backup is of it) and backs it up after each epoch."""
        return EpochBackup(self, stage, done_epochs)

    def restore(self, recorder, best) -> None:
        """Put the backed-up history rows and best epoch back into the recorder and BestWeights."""
        rows = read_json(self.run_dir, HISTORY_FILE, runschema.HISTORY, []) if self.epochs else []
        if len(rows) < self.epochs:
            raise HorsesHumansError(
                f"{self.run_dir / HISTORY_FILE}: {len(rows)} epochs recorded but the backup is of "
                f"epoch {self.epochs}; the run cannot be resumed: train it again."
            )
        recorder.history[:] = rows[: self.epochs]
        record = self.state.get("best")
        if record and best is not None:
            with np.load(self.folder / record["file"]) as saved:
                best.best, best.epoch = record["value"], record["epoch"]
                best.weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]

    def restore_fit(self, model, stage: Stage) -> None:
        """Load the backed-up weights and optimizer state into the model being fitted, if the backup is of this
        stage."""
        if not self.holds(stage):
            return
        path = self.folder / self.state["weights"]
        with np.load(path) as saved:
            arrays = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        if not load_snapshot(model, arrays):
            raise HorsesHumansError(
                f"{path}: does not fit the model this run's config builds; delete {self.folder} to "
                "resume from the first epoch."
            )

    def restore_counters(self, callbacks: list, stage: Stage) -> None:
        """Put back the backed-up counters of these callbacks (EarlyStopping, ...), if the backup is of this stage."""
        if self.holds(stage):
            for callback, saved in zip(callbacks, self.state.get("counters", [])):
                for name, value in saved.items():
                    setattr(callback, name, value)

    def save(self, model, stage: Stage, epochs: int, done: bool, counters: list | None = None) -> None:
        """Copy the fitted model's state and start writing it, the best epoch, then state.json naming them (a thread:
        training goes on meanwhile; the last save of a stage is waited for)."""
        self.wait()
        arrays, weights = snapshot(model), f"{stage.name}-epoch{epochs}.npz"
        best = self.best if self.best is not None and self.best.weights is not None else None
        best_record = best and {"value": best.best, "epoch": best.epoch, "file": f"best-epoch{best.epoch}.npz"}
        state = {
            "stage": stage.name,
            "index": stage.index,
            "stage_start": stage.first_epoch,
            "epochs": epochs,
            "done": done,
            "weights": weights,
            "best": best_record,
            "counters": counters or [],
        }
        best_weights = best.weights if best else None  # BestWeights replaces its list, never changes it: no copy
        # not a daemon: after Ctrl-C the interpreter finishes this backup before it exits
        self.writer = threading.Thread(target=self.write, args=(arrays, best_weights, state))
        self.writer.start()
        if done:
            self.wait()

    def write(self, arrays: list, best_weights: list | None, state: dict) -> None:
        """The thread's work: both array files, then state.json, then the files it no longer names."""
        try:
            save_arrays(self.folder / state["weights"], arrays)
            if state["best"] and not (self.folder / state["best"]["file"]).exists():
                save_arrays(self.folder / state["best"]["file"], best_weights)
            write_json_atomic(self.folder / STATE_FILE, state)
            self.state = state
            self.prune()
        except Exception as exc:  # handed to the training thread by wait()
            self.error = exc

    def wait(self) -> None:
        """Wait for the backup being written; raise what went wrong writing it."""
        if self.writer is not None:
            self.writer.join()
            self.writer = None
        if self.error is not None:
            error, self.error = self.error, None
            raise HorsesHumansError(
                f"{self.folder}: cannot write the resume backup ({error}); free disk space or "
                "fix the folder's permissions, then `horses-humans train --resume "
                f"{self.run_dir}`."
            ) from None

    def prune(self) -> None:
        """Remove every file of RESUME_DIR that state.json does not name (older epochs, half-written files)."""
        keep = {STATE_FILE, self.state.get("weights"), (self.state.get("best") or {}).get("file")}
        for path in self.folder.glob("*") if self.folder.is_dir() else []:
            if path.name not in keep:
                path.unlink(missing_ok=True)


class EpochBackup(keras.callbacks.Callback):
    """Restores a stage's backup when its fit begins, backs it up after each epoch and marks it done when the fit
    ends (so a finished stage, early-stopped or not, is skipped on resume). It runs after every other callback."""

    def __init__(self, backup: Backup, stage: Stage, done_epochs: int):
        super().__init__()
        self.backup, self.stage, self.epochs = backup, stage, done_epochs
        self.watched: list = []

    def watch(self, callbacks) -> EpochBackup:
        """Also back up the counters of those callbacks that keep any (EarlyStopping,
        ReduceLROnPlateau); returns self."""
        self.watched = [c for c in callbacks if isinstance(c, COUNTED)]
        return self

    def counters(self) -> list[dict]:
        return [{name: to_json(getattr(c, name)) for name in COUNTERS if hasattr(c, name)} for c in self.watched]

    def on_train_begin(self, logs=None):  # after every other callback's: their counters were just reset
        self.backup.restore_fit(self.model, self.stage)
        self.backup.restore_counters(self.watched, self.stage)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs = epoch + 1
        self.backup.save(self.model, self.stage, self.epochs, False, self.counters())

    def on_train_end(self, logs=None):  # after EarlyStopping's restore of its best weights
        self.backup.save(self.model, self.stage, self.epochs, True, self.counters())


def to_json(value):
    """A counter as JSON takes it: NumPy and backend scalars as Python numbers (inf stays inf)."""
    return value if isinstance(value, (int, float)) or value is None else float(value)


def snapshot(model) -> list[np.ndarray]:
    """Copies of a fitted model's weights, then of its optimizer's variables (step, learning rate, slots)."""
    optimizer = model.optimizer.variables if model.optimizer is not None else []
    return [*model.get_weights(), *(keras.ops.convert_to_numpy(v) for v in optimizer)]


def load_snapshot(model, arrays: list[np.ndarray]) -> bool:
    """Put a snapshot back into a compiled model (its optimizer built first); False if it does not fit the model."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # its variables must exist to be loaded
    n, variables = len(model.weights), (model.optimizer.variables if model.optimizer is not None else [])
    shapes = [tuple(w.shape) for w in [*model.weights, *variables]]
    if shapes != [a.shape for a in arrays]:
        return False
    model.set_weights(arrays[:n])
    for variable, value in zip(variables, arrays[n:]):
        variable.assign(value)
    return True


def save_arrays(path: Path, arrays: list[np.ndarray]) -> None:
    """arrays as an uncompressed .npz (arr_0, arr_1, ...), atomically."""
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, *arrays)


def read_state(folder: Path) -> dict:
    """RESUME_DIR/state.json, {} when there is none; a clear error when it is damaged."""
    state = read_state_file(folder / STATE_FILE)
    if state and not {"stage", "stage_start", "epochs", "done", "weights"} <= set(state):
        raise HorsesHumansError(
            f"{folder / STATE_FILE}: not a backup this version wrote; delete {folder} to resume from the first epoch."
        )
    if state and not (folder / state["weights"]).is_file():
        raise HorsesHumansError(
            f"{folder / state['weights']}: missing; delete {folder} to resume from the first epoch."
        )
    return state


def read_state_file(path: Path) -> dict:
    """state.json's content, {} when it does not exist; a clear error when it is not JSON (the run's own files are
    read through runs.read_json and their schemas)."""
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HorsesHumansError(f"{path}: unreadable ({exc}); the run cannot be resumed: train it again.") from None


def resumable_config(run_dir: Path) -> TrainConfig:
    """The recorded config of an unfinished run; a one-line error when run_dir is not one."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise HorsesHumansError(
            f"{run_dir}: not a run directory (no {CONFIG_FILE}); give --resume a folder that "
            "`horses-humans train` made."
        )
    if (run_dir / METRICS_FILE).exists():
        raise HorsesHumansError(f"{run_dir}: already finished ({METRICS_FILE} is there); nothing to resume.")
    return read_json(run_dir, CONFIG_FILE, runschema.CONFIG)  # the schema every command reads config.json with


def option_conflicts(given: dict, recorded: TrainConfig) -> list[str]:
    """'--epochs 5 (config.json: 4)' for each given option whose value differs from the run's recorded one."""
    recorded = recorded.to_dict()
    same = lambda a, b: json.loads(json.dumps(a)) == json.loads(json.dumps(b))  # noqa: E731  (tuples as lists)
    return [
        f"--{name.replace('_', '-')} {value} ({CONFIG_FILE}: {recorded[name]})"
        for name, value in given.items()
        if not same(value, recorded[name])
    ]


def given_options(values: dict) -> dict:
    """The TrainConfig options among `values` ({field name: value, None for one not given}) that differ from their
    defaults: the ones the user gave."""
    defaults = TrainConfig()  # None: an option not given (a repeatable one's absence, whose field default is ())
    return {name: value for name, value in values.items() if value is not None and value != getattr(defaults, name)}


def clean_run_dir(run_dir: Path) -> None:
    """Remove RESUME_DIR and atomic.py's leftover temporary files from a finished run."""
    shutil.rmtree(Path(run_dir) / RESUME_DIR, ignore_errors=True)
    for path in Path(run_dir).glob(TEMP_GLOB):
        path.unlink(missing_ok=True)
