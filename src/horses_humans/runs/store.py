"""The run-directory contract: what a training run leaves behind, and how to read it back."""

from __future__ import annotations

import fcntl
import os
import sys
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import DEFAULT_RESIZE, HorsesHumansError, TrainConfig, describe_error
from ..core.atomic import atomic_path, write_json_atomic
from ..models.distance import DISTANCE_FILE, gated, load_gate
from ..models.outputs import ClassOutput
from . import schema as runschema
from .layout import (  # noqa: F401  (re-exported: the names every module imports with the store)
    BEST_MODEL_FILE,
    CALIBRATION_FILE,
    CHECKPOINT_FILES,
    CONFIG_FILE,
    DATA_FILE,
    ENVIRONMENT_FILE,
    HISTORY_FILE,
    LABELS_FILE,
    METRICS_FILE,
    MODEL_CARD_FILE,
    MODEL_FILE,
    RESUME_DIR,
    TEMP_GLOB,
)

# Every consumer (evaluate, predict, serve, export, report, explain, runs, best_run) uses this one unless told
# otherwise.
DEFAULT_CHECKPOINT = "best"
# val_accuracy: the number users compare runs by (and EarlyStopping watches); ties keep the earlier epoch.
CHECKPOINT_MONITOR = "val_accuracy"
CHECKPOINT_RULE = "highest val_accuracy over all epochs (every stage); ties keep the earlier epoch"
OPTIMISM_NOTE = (
    "validation accuracy chose the best epoch, so it is optimistic for that checkpoint; "
    "a held-out test split (evaluate --split test) or real photos (evaluate --data DIR) measure it fairly"
)

KERAS_ARCHIVE_MEMBERS = {"config.json", "model.weights.h5"}  # inside a .keras zip (Keras' names, not the run's)


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
        """How to read this run's model output (classes, sigmoid or softmax, threshold, and the calibration:
        temperature, class scale and bias; records with only a temperature read as before)."""
        calibration = read_calibration(self.path)
        fitted = {key: calibration.get(key) for key in ("class_scale", "class_bias")}
        try:
            return ClassOutput.from_labels(
                {**self.labels, "temperature": calibration.get("temperature", 1.0), **fitted}
            )
        except HorsesHumansError as exc:  # a scale or bias that does not fit the classes: name the file
            raise HorsesHumansError(f"{self.path / CALIBRATION_FILE}: {exc}") from exc

    @property
    def raw_output(self) -> ClassOutput:
        """The output uncalibrated: what the model itself says, which calibration fits and exports match."""
        return self.output.uncalibrated()

    @property
    def has_distance_check(self) -> bool:
        """Was the run trained with --distance-unsure (its DISTANCE_FILE is there): load_model answers uniform on
        images unlike every one it was given."""
        return (self.path / DISTANCE_FILE).exists()

    @property
    def image_size(self) -> int:
        return self.labels["input_size"]

    @property
    def resize(self) -> str:
        """How an image becomes the model's square (squash, crop, pad): labels.json's, else config.json's; runs made
        before --resize have neither and squash."""
        return self.labels.get("resize") or self.config.resize or DEFAULT_RESIZE

    def checkpoint_path(self, checkpoint: str | None = None) -> Path:
        """The file of a checkpoint (default: the run's), as metrics.json names it: when that file is missing, a clear
        error; no other file stands in for it. Runs made before checkpoints have model.keras as both."""
        name = check_checkpoint(checkpoint or self.checkpoint)
        recorded = (self.metrics.get("checkpoints") or {}).get(name)
        if recorded is None:  # a run from before checkpoints were recorded
            path = self.path / CHECKPOINT_FILES[name]
            return path if path.exists() else self.path / MODEL_FILE
        path = self.path / recorded["file"]
        if not path.exists():
            raise HorsesHumansError(
                f"{path}: missing, but {METRICS_FILE} names it as the {name} checkpoint (epoch "
                f"{recorded.get('epoch')}) and no other file answers for it; {self.checkpoint_fix(name)}."
            )
        return path

    def checkpoint_fix(self, name: str) -> str:
        """What to do about a missing or damaged checkpoint file: the other checkpoint when it is sound, else train."""
        if name == "best" and model_file_problem(self.path / MODEL_FILE) is None:
            return f"use --checkpoint last for the last epoch's {MODEL_FILE}, or train the run again"
        return "train the run again"

    def checkpoint_record(self, checkpoint: str | None = None) -> dict:
        """{file, epoch, val_accuracy, val_loss} of a checkpoint, from metrics.json (older runs: model.keras, the
        last epoch, for both)."""
        name = check_checkpoint(checkpoint or self.checkpoint)
        recorded = self.metrics.get("checkpoints", {}).get(name)
        if recorded:
            return recorded
        return {
            "file": MODEL_FILE,
            "epoch": self.metrics.get("epochs_run") or len(self.history) or None,
            "val_accuracy": self.metrics.get("val_accuracy"),
            "val_loss": self.metrics.get("val_loss"),
        }

    @property
    def served_accuracy(self) -> float | None:
        """Validation accuracy of the checkpoint load_model loads, measured on the saved float32 file where training
        recorded it (training may run in bfloat16), else training's own figure (optimistic: see OPTIMISM_NOTE)."""
        record = self.checkpoint_record()
        saved = record.get("saved_val_accuracy")
        return saved if saved is not None else record.get("val_accuracy")

    def load_model(self, checkpoint: str | None = None):
        """The saved float32 Keras model of a checkpoint (default: the run's) (raw 0-255 RGB pixels in; out as
        labels.json's output_kind says)."""
        import keras

        path = self.checkpoint_path(checkpoint)
        fix = (
            "train the run again (or use --checkpoint last)"
            if path.name == BEST_MODEL_FILE and model_file_problem(self.path / MODEL_FILE) is None
            else "train the run again"
        )
        problem = model_file_problem(path)
        if problem:
            raise HorsesHumansError(f"{path}: cannot load the model ({problem}); {fix}.")
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as exc:  # a damaged file fails in many ways (bad JSON, missing weights, ...)
            raise HorsesHumansError(
                f"{path}: cannot load the model ({describe_error(exc)}); the file is damaged or incomplete: {fix}."
            ) from None
        check_model_shapes(model, path, self.labels, fix)
        gate = load_gate(self.path)  # train --distance-unsure: uniform answers on images unlike every training image
        return gated(model, gate, self.path / DISTANCE_FILE) if gate else model


def model_file_problem(path: Path) -> str | None:
    """Why a .keras file cannot be a model, read from its zip directory alone (cheap), or None."""
    if not Path(path).is_file():  # missing, or a FIFO that would block the read
        return "missing or not a regular file"
    if Path(path).stat().st_size == 0:
        return "empty file: training was cut short or the disk was full"
    try:
        with zipfile.ZipFile(path) as archive:
            missing = KERAS_ARCHIVE_MEMBERS - set(archive.namelist())
    except (zipfile.BadZipFile, OSError):  # no or a broken zip directory: cut short, overwritten, unreadable
        return "not a Keras zip archive: its bytes are cut short or overwritten"
    return f"the archive lacks {', '.join(sorted(missing))}: it is incomplete" if missing else None


def check_model_shapes(model, path: Path, labels: dict, fix: str = "train the run again") -> None:
    """A clear error when a model's input or output does not fit labels.json (a file copied from another run)."""
    size, units = labels["input_size"], ClassOutput.from_labels(labels).units
    expected = (size, size, 3)
    taken = tuple(model.input_shape[1:]) if isinstance(model.input_shape, tuple) else None
    if taken is None or len(taken) != 3 or any(t not in (None, e) for t, e in zip(taken, expected)):
        raise HorsesHumansError(
            f"{path}: the model takes input {taken} but {LABELS_FILE} says {list(expected)}: "
            f"the files come from different runs; {fix}."
        )
    given = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    if given != units:
        raise HorsesHumansError(
            f"{path}: the model's output is {given} wide but {LABELS_FILE} needs {units} for "
            f"{len(labels['class_names'])} classes: the files come from different runs; {fix}."
        )


def new_run_dir(runs_dir: Path, config: TrainConfig) -> Path:
    """A fresh, uniquely named run directory: RECIPE-SIZE-sSEED-TIMESTAMP."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{config.recipe}-{config.image_size}-s{config.seed}-{stamp}"
    path = make_first_free(Path(runs_dir) / (base if n == 0 else f"{base}-{n}") for n in range(1000))
    if path is None:
        raise HorsesHumansError(f"{runs_dir}: cannot create a new run directory named {base}.")
    return path


def make_first_free(candidates: Iterable[Path]) -> Path | None:
    """Make the first of candidates that does not exist yet (mkdir: two processes never get the same one) and return
    it; None when every one exists."""
    for path in candidates:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    return None


def labels_record(class_names: list[str], image_size: int, resize: str = DEFAULT_RESIZE) -> dict:
    """What travels with every model: class order, output kind and how to read it, input size and how an image is
    brought to it, pixel range."""
    return {
        **ClassOutput.for_classes(class_names).record(),
        "input_size": image_size,
        "input_shape": [image_size, image_size, 3],
        "resize": resize,
        "pixel_range": [0, 255],
        "color": "RGB",
    }


def check_checkpoint(checkpoint: str) -> str:
    """The checkpoint name, or a one-line error naming the choices."""
    if checkpoint not in CHECKPOINT_FILES:
        raise HorsesHumansError(
            f"--checkpoint {checkpoint!r}: choose one of {', '.join(CHECKPOINT_FILES)} (default {DEFAULT_CHECKPOINT})."
        )
    return checkpoint


def save_model(path: Path, model, name: str = MODEL_FILE) -> None:
    """Save a Keras model atomically into the run directory (as model.keras unless named)."""
    with atomic_path(Path(path) / name, suffix=".keras") as tmp:
        model.save(tmp)


def save_json(run_dir: Path, name: str, obj) -> None:
    """Write one of the run's JSON files atomically."""
    write_json_atomic(Path(run_dir) / name, obj)


def load_run(path: str | Path, checkpoint: str | None = None) -> Run:
    """Read a run directory whose load_model loads `checkpoint` (default: DEFAULT_CHECKPOINT), every JSON file checked
    against runschema; a clear error if it is not one, its training did not finish, or a file is damaged."""
    path = Path(path)
    checkpoint = check_checkpoint(checkpoint or DEFAULT_CHECKPOINT)
    if not path.is_dir():
        raise HorsesHumansError(f"{path}: no such run directory.")
    missing = [n for n in (MODEL_FILE, CONFIG_FILE, LABELS_FILE) if not (path / n).exists()]
    if missing:
        raise HorsesHumansError(
            f"{path}: not a finished run (missing {', '.join(missing)}). Train one with `horses-humans train`."
        )
    read = lambda name, schema, missing=None: read_json(path, name, schema, missing)  # noqa: E731
    run = Run(
        path,
        read(CONFIG_FILE, runschema.CONFIG),
        read(LABELS_FILE, runschema.Labels),
        read(METRICS_FILE, runschema.Metrics, {}),
        read(HISTORY_FILE, runschema.HISTORY, []),
        read(ENVIRONMENT_FILE, runschema.ENVIRONMENT, {}),
        read_data_record(path),
        checkpoint,
    )
    run.output  # calibration.json is read lazily by it: a damaged one is reported now, before any work is done
    return run


def read_json(run_dir: Path, name: str, schema, missing=None, fix: str = runschema.RETRAIN):
    """RUN/name checked against its runschema schema; `missing` when the file does not exist."""
    path = Path(run_dir) / name
    return runschema.check_json(path, schema, fix) if path.exists() else missing


def read_data_record(run_dir: Path) -> dict:
    """RUN/data.json checked, {} for runs made before it (deleting a damaged one makes the run use its data folder's
    split as found now)."""
    fix = "delete it to use the data folder's split as found now, or train the run again"
    return read_json(run_dir, DATA_FILE, runschema.DataUsed, {}, fix)


def is_finished(path: Path) -> bool:
    """Whether a directory holds a finished run: its model, config, labels and (written last) metrics.json."""
    return all((Path(path) / name).exists() for name in (MODEL_FILE, CONFIG_FILE, LABELS_FILE, METRICS_FILE))


def warn(line: str) -> None:
    """Print a warning on stderr (stdout stays a clean table or JSON)."""
    print(line, file=sys.stderr)


def list_runs(runs_dir: Path, checkpoint: str | None = None, log=warn) -> list[Run]:
    """Every finished run under runs_dir (one level), sorted by name, each set to `checkpoint`; a damaged one is
    skipped with one warning line through log."""
    runs = []
    for path in run_dirs(runs_dir):
        if is_finished(path):
            try:
                run = load_run(path, checkpoint)
                run.checkpoint_path()  # its served file is there (a missing one is reported, not replaced)
                runs.append(run)
            except HorsesHumansError as exc:
                log(f"warning: skipped {path.name}: {exc}")
    return runs


def run_dirs(runs_dir: Path) -> list[Path]:
    """The folders directly under runs_dir that hold any run file (finished or not), sorted by name."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    marks = (CONFIG_FILE, LABELS_FILE, MODEL_FILE, METRICS_FILE, RESUME_DIR)
    return [p for p in sorted(runs_dir.iterdir()) if p.is_dir() and any((p / m).exists() for m in marks)]


def unfinished_runs(runs_dir: Path) -> list[Path]:
    """Run folders under runs_dir whose training has not finished (or lost a file), by name."""
    return [path for path in run_dirs(runs_dir) if not is_finished(path)]


@dataclass(frozen=True)
class RunProblem:
    """A folder or file under a runs directory that is not a usable finished run, and why."""

    name: str  # relative to the runs directory
    state: str  # "unfinished", "damaged" or "temporary file"
    why: str


def run_problems(runs_dir: Path) -> list[RunProblem]:
    """Unfinished and damaged runs under runs_dir (one level), then leftover temporary files, for `runs --all`."""
    runs_dir = Path(runs_dir)
    problems = [problem for path in run_dirs(runs_dir) if (problem := run_problem(path))]  # unfinished ones included
    temp = sorted({*runs_dir.glob(TEMP_GLOB), *(t for path in run_dirs(runs_dir) for t in path.rglob(TEMP_GLOB))})
    return problems + [
        RunProblem(
            str(t.relative_to(runs_dir)),
            "temporary file",
            "left by a write that was interrupted (or is running now): delete it when no command is running",
        )
        for t in temp
        if t.is_file()
    ]


def run_problem(path: Path) -> RunProblem | None:
    """Why the run folder at path is unfinished or damaged, or None for a good finished run (JSON files checked,
    model files checked cheaply: the model is not loaded)."""
    missing = [n for n in (MODEL_FILE, CONFIG_FILE, LABELS_FILE, METRICS_FILE) if not (path / n).exists()]
    if METRICS_FILE in missing:
        resume = (
            f"resume with `horses-humans train --resume {path}`"
            if (path / RESUME_DIR).is_dir()
            else "nothing to resume from: delete it, or train again"
        )
        return RunProblem(path.name, "unfinished", f"training did not finish (no {METRICS_FILE}): {resume}")
    if missing:
        return RunProblem(path.name, "damaged", f"missing {', '.join(missing)}: train the run again")
    try:
        load_run(path).checkpoint_path()  # a checkpoint metrics.json names but that is missing is damage too
    except HorsesHumansError as exc:
        return RunProblem(path.name, "damaged", str(exc).replace(f"{path}/", ""))  # the file's name is enough here
    bad = [
        (name, why)
        for name in (MODEL_FILE, BEST_MODEL_FILE)
        if (path / name).exists() and (why := model_file_problem(path / name))
    ]
    return RunProblem(path.name, "damaged", f"{bad[0][0]}: {bad[0][1]}; train the run again") if bad else None


def ranked_runs(runs_dir: Path, checkpoint: str | None = None, log=warn) -> list[Run]:
    """Finished runs, best first: by the validation accuracy of their served checkpoint (`checkpoint`, default
    DEFAULT_CHECKPOINT), the newest among equals; damaged ones skipped with a warning."""
    runs = list_runs(runs_dir, checkpoint, log)
    return sorted(runs, key=lambda run: (run.served_accuracy or 0.0, run.path.name), reverse=True)


def best_run(runs_dir: Path, checkpoint: str | None = None, log=warn) -> Run:
    """The first of ranked_runs; a clear error if there is none."""
    runs = ranked_runs(runs_dir, checkpoint, log)
    if not runs:
        raise no_runs(runs_dir)
    return runs[0]


def servable_run(run_dir: Path | None, runs_dir: Path, checkpoint: str | None = None, log=warn) -> Run:
    """The named run, else the best in runs_dir whose model loads (the others skipped with a warning), its model
    loaded once and checked against labels.json: what a server can start with, checked before it listens."""
    if run_dir:
        run = load_run(run_dir, checkpoint)
        run.load_model()
        return run
    for run in ranked_runs(runs_dir, checkpoint, log):
        try:
            run.load_model()
            return run
        except HorsesHumansError as exc:
            log(f"warning: skipped {run.path.name}: {exc}")
    raise no_runs(runs_dir)


def no_runs(runs_dir: Path) -> HorsesHumansError:
    """The error for a runs directory without a usable finished run."""
    return HorsesHumansError(
        f"{runs_dir}: no finished runs. Train one with `horses-humans train --runs-dir {runs_dir}` "
        "or name a run directory."
    )


def read_calibration(run_dir) -> dict:
    """RUN/calibration.json (the temperature, the unsure rule: each written by its own module) as a dict, {} for a
    run that has none; a clear error if it is damaged."""
    fix = "delete it and run `horses-humans calibrate RUN` and `horses-humans unsure RUN`"
    return read_json(run_dir, CALIBRATION_FILE, runschema.Calibration, {}, fix)


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
