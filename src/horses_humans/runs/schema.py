"""The schema of a run directory's JSON files: load_run checks each one it reads against it, so a damaged, emptied or
hand-edited file is one error naming the file and the fix, not a traceback from deep inside a command.

Files are validated strictly as JSON (a number in quotes is wrong, not coerced); keys a newer version may add are
allowed. config.json is checked by TrainConfig itself (pydantic validates the dataclass and runs its __post_init__
checks), so a new config field needs no edit here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from ..config import RESIZE_MODES, HorsesHumansError, TrainConfig
from .layout import CHECKPOINT_FILES

RETRAIN = "the run is damaged: train it again (or restore the file from a copy)"


class Record(BaseModel):
    """A JSON object whose known keys are typed; unknown keys (from newer versions, or documentation) are kept."""

    model_config = ConfigDict(extra="allow", strict=True)


class Labels(Record):
    """labels.json: the classes in output order, how to read the output, and the input the model takes."""

    class_names: list[str] = Field(min_length=2)
    output_kind: Literal["sigmoid", "softmax"] | None = None  # runs made before N classes have none: sigmoid
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    input_size: int = Field(ge=1)
    input_shape: list[int] | None = None  # [size, size, 3]
    resize: Literal[RESIZE_MODES] | None = None  # runs made before --resize have none: squash

    @model_validator(mode="after")
    def consistent(self) -> Labels:
        """Unique class names, an output kind that fits their number, an input shape that matches input_size."""
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"class_names {self.class_names} repeat a name")
        if self.output_kind and (self.output_kind == "sigmoid") != (len(self.class_names) == 2):
            raise ValueError(f"output_kind {self.output_kind!r} does not fit {len(self.class_names)} classes")
        if self.input_shape is not None and self.input_shape != [self.input_size, self.input_size, 3]:
            raise ValueError(f"input_shape {self.input_shape} differs from input_size {self.input_size}")
        return self


CheckpointFile = Literal[tuple(CHECKPOINT_FILES.values())]  # a file name inside the run: never a path elsewhere


class Checkpoint(Record):
    """metrics.json's record of one checkpoint file: training's own figures, and the saved float32 file's."""

    file: CheckpointFile
    epoch: int | None = None
    val_accuracy: float | None = None  # as training measured it (in its precision, e.g. bfloat16)
    val_loss: float | None = None
    saved_val_accuracy: float | None = None  # the saved float32 file on the same validation images


class Checkpoints(Record):
    """metrics.json's "checkpoints": the best and last epoch's files (plus the rule that chose them)."""

    best: Checkpoint | None = None
    last: Checkpoint | None = None


class Metrics(Record):
    """metrics.json: written last, it makes a run finished; val_accuracy is what runs are compared and served by."""

    val_accuracy: float | None
    train_accuracy: float | None = None
    best_val_accuracy: float | None = None
    mean_epoch_seconds: float | None = None
    train_seconds: float | None = None
    epochs_run: int | None = None
    parameters: int | None = None
    trainable_parameters: int | None = None
    checkpoints: Checkpoints | None = None


class DataSide(Record):
    """One side of data.json: its folder inside the data folder and {file: sha256}."""

    folder: str
    files: dict[str, str]


class DataUsed(Record):
    """data.json: the data folder, its layout, classes and the exact files of each side."""

    data_dir: str
    layout: str
    class_names: list[str]
    sides: dict[str, DataSide]


class Unsure(Record):
    """calibration.json's "unsure" rule (missing entries take their defaults)."""

    min_confidence: float = Field(0.0, ge=0.0, le=1.0)
    neither_class: str | None = None


class Calibration(Record):
    """calibration.json: the fitted calibration (temperature, and per-class scale and bias for the richer methods)
    and the unsure rule, each optional; records from before the richer methods hold only a temperature."""

    method: str | None = None
    temperature: float | None = Field(None, gt=0.0)
    class_scale: list[float] | None = None
    class_bias: list[float] | None = None
    unsure: Unsure | None = None


class Evaluation(Record):
    """evaluations/NAME.json (and evaluation.json): what was scored, with which checkpoint, and how well."""

    split: str | None = None
    folder: str | None = None
    checkpoint: str | None = None
    images: int | None = None
    accuracy: float | None = None
    per_class: dict[str, dict] | None = None


class ExportParity(Record):
    """export.json's "parity": how the export compared with the Keras model when it was made."""

    passed: bool
    rule: str | None = None


class ExportFile(Record):
    """export.json's record of one file of the export folder, as it was published."""

    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ExportRecord(Record):
    """RUN/export/NAME/export.json: where the export came from, its parity check, its speed and its files."""

    name: str
    format: str
    quantize: str
    checkpoint_file: CheckpointFile
    latency_ms_p50: float = Field(ge=0.0)
    parity: ExportParity
    files: dict[str, ExportFile] | None = None  # exports made before checksums have none: unverified


class ExportLabels(Labels):
    """RUN/export/NAME/labels.json: the run's labels plus the model file to feed."""

    model_file: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")  # a name inside the export folder, never a path
    temperature: float = Field(1.0, gt=0.0)
    class_scale: list[float] | None = None  # the web export's calibration after the model (served exports: inside)
    class_bias: list[float] | None = None


def resolved(config: TrainConfig) -> TrainConfig:
    """A run's config was resolved by its recipe before training: its size and epochs are set."""
    unset = [name for name in ("image_size", "epochs") if getattr(config, name) is None]
    if unset:
        raise ValueError(f"{' and '.join(unset)} missing (a run's config names them)")
    return config


CONFIG = TypeAdapter(Annotated[TrainConfig, AfterValidator(resolved)])
HISTORY = TypeAdapter(list[dict])
ENVIRONMENT = TypeAdapter(dict)


def check_json(path: Path, schema, fix: str = RETRAIN):
    """The JSON file at path validated by schema (a model class or TypeAdapter): a TrainConfig for CONFIG, else the
    file's own dict or list; a one-line error naming the file, the first problem and the fix."""
    path = Path(path)
    adapter = schema if isinstance(schema, TypeAdapter) else TypeAdapter(schema)
    if not path.is_file():  # a FIFO or a device would block the read forever
        raise HorsesHumansError(f"{path}: not a regular file; {fix}.")
    try:
        text = path.read_bytes()
        value = adapter.validate_json(text, strict=True)
    except OSError as exc:
        raise HorsesHumansError(f"{path}: cannot read it ({exc.strerror}); {fix}.") from None
    except ValidationError as exc:
        raise HorsesHumansError(f"{path}: {first_problem(exc, text)}; {fix}.") from None
    except HorsesHumansError as exc:  # TrainConfig's own checks (an option out of range)
        raise HorsesHumansError(f"{path}: {str(exc).rstrip('.')}; {fix}.") from None
    return value if isinstance(value, TrainConfig) else json.loads(text)  # the file as written, every key in order


def first_problem(exc: ValidationError, text: bytes) -> str:
    """'empty file', 'not valid JSON (...)' or 'KEY.SUB: what is wrong' for the first error pydantic found."""
    if not text.strip():
        return "empty file"
    error = exc.errors(include_url=False)[0]
    if error["type"] == "json_invalid":
        return f"not valid JSON ({error['msg'].removeprefix('Invalid JSON: ')}: cut short or overwritten)"
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    count = exc.error_count()
    more = f" (and {count - 1} more problem{'s' if count > 2 else ''})" if count > 1 else ""
    return f"{where + ': ' if where else ''}{message}{more}"
