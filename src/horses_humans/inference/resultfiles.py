"""The one writer of prediction rows (a table, CSV, JSON Lines or a JSON array, on stdout or in a file), for the
local path and the Ray engine alike; the row itself is Prediction.csv_row / Prediction.to_dict.

Each batch's rows are written in one call and flushed, so a killed run keeps every row it had written (at worst the
last line is cut short). `--resume` reads such a file back: the complete rows say which files are done, anything
after the last complete row is cut off, and the writer continues where it stopped; nothing is written twice.

Every output file says which model answered (ModelStamp: run, checkpoint, runtime): JSON Lines and JSON rows carry
it in a "model" field; a CSV in a sidecar FILE.meta.json, so the CSV itself stays a plain header and rows that every
CSV reader takes (a `#` comment line would become the header of csv.DictReader, pandas and spreadsheets).
`--resume` refuses a file another model began: its rows would not be one model's answers.
"""

from __future__ import annotations

import csv
import io
import json
import numbers
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import HorsesHumansError
from ..core.atomic import write_json_atomic
from ..runs.store import Run
from .predictor import Prediction
from .runtimes import choose_export

FORMATS = ("table", "csv", "jsonl", "json")
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
RESUMABLE = ("csv", "jsonl", "json")
DECIMALS = 4  # places of a probability in the table and the CSV
SIDECAR = ".meta.json"  # out.csv -> out.csv.meta.json
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # what a terminal would act on (ESC starts colours, cursor moves)


@dataclass(frozen=True)
class ModelStamp:
    """Which model answered: the run (its folder name, the server's model id), the checkpoint file, the runtime
    ("keras", or RUNTIME:EXPORT for a published export, e.g. "onnx:web", "tflite:tflite-int8")."""

    run: str
    checkpoint: str
    runtime: str

    def describe(self) -> str:
        """`run R, checkpoint model-best.keras, runtime onnx:web`."""
        return f"run {self.run}, checkpoint {self.checkpoint}, runtime {self.runtime}"


def model_stamp(run: Run, checkpoint: str | None = None, runtime: str = "auto", warn=None) -> ModelStamp:
    """The stamp of what Predictor.from_run(run, checkpoint, runtime) loads (the same choice of export); `warn`
    gets auto's warnings (None: the runtimes' default, stderr; pass a no-op when the Predictor will say them)."""
    checkpoint_file = run.checkpoint_path(checkpoint).name
    export = choose_export(run.path, checkpoint_file, runtime, *([warn] if warn else []))
    return ModelStamp(run.path.name, checkpoint_file, f"{export.runtime}:{export.name}" if export else "keras")


def choose_format(fmt: str | None, output: Path | None) -> str:
    """The format asked for, else the output file's extension (.csv, .jsonl/.ndjson, .json), else a table."""
    if fmt:
        return fmt
    return EXTENSIONS.get(output.suffix.lower(), "table") if output else "table"


def csv_columns(class_names: list[str]) -> list[str]:
    """The CSV header (and Parquet's columns): Prediction.csv_row's keys, one p_<class> column per class."""
    return list(Prediction("").csv_row(class_names))


def from_csv_row(row: dict, class_names: list[str]) -> Prediction:
    """A Prediction back from its flat row (Ray's rows travel as pyarrow tables of csv_row)."""
    known = {name: row[f"p_{name}"] for name in class_names if row.get(f"p_{name}") is not None}
    fields = ("file", "label", "probability", "error", "unsure_reason", "unsure_score")
    return Prediction(**{name: row.get(name) for name in fields}, probabilities=known or None)


def without_raw_bytes(text: str) -> str:
    """A file name's bytes that are not UTF-8 (surrogate escapes from the file system) as \\xNN text."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a lone surrogate no file system gave: escape it as it is
            return text.encode("utf-8", "backslashreplace").decode("utf-8")


def text_cells(row: dict) -> dict:
    """A csv_row whose texts (file names, errors that quote them) hold no raw bytes: what a CSV or an Arrow string
    column (UTF-8 only) can take."""
    return {name: without_raw_bytes(value) if isinstance(value, str) else value for name, value in row.items()}


def rounded_cells(row: dict) -> dict:
    """A csv_row with its numbers (probabilities, unsure score) to DECIMALS places, as the table shows them: a
    float32 model's 17 digits are noise; JSON, JSON Lines and Parquet keep them whole."""
    return {name: f"{value:.{DECIMALS}f}" if is_fraction(value) else value for name, value in row.items()}


def is_fraction(value) -> bool:
    """A float of any kind (Python's, NumPy's float32), not an int or a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)


def printable(text: str) -> str:
    """Text safe on a terminal: raw bytes and control characters (ESC, CR, ...) as \\xNN."""
    return CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", without_raw_bytes(text))


class StdoutSink:
    """Text to standard output, flushed at once (a closed pipe raises BrokenPipeError: the CLI ends quietly)."""

    path = None

    def write(self, text: str) -> None:
        """Write and flush."""
        sys.stdout.write(text)
        sys.stdout.flush()


class FileSink:
    """Text appended to an open file, every byte handed to the kernel before write returns (no buffer holds rows
    back); a failed write (a full disk) is one error line naming the file."""

    def __init__(self, path: Path, fd: int, resumable: bool):
        self.path, self.fd, self.resumable = path, fd, resumable

    def write(self, text: str) -> None:
        """Write all of `text`, or raise HorsesHumansError: the rows before it stay, at worst one cut short."""
        data = text.encode("utf-8", "surrogateescape")
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError as exc:
            then = "run the same command again with --resume" if self.resumable else "run it again"
            raise HorsesHumansError(
                f"{self.path}: cannot write ({exc.strerror or exc}); the rows written so far are kept: "
                f"make room, then {then}."
            ) from None


class ResultWriter:
    """Rows of one format on a sink; `done` holds the files already there (from --resume), as written."""

    def __init__(self, sink, class_names: list[str], model: ModelStamp, rows_before: int = 0, done=None):
        self.sink, self.class_names, self.model, self.rows = sink, list(class_names), model, rows_before
        self.done = done or set()  # files whose rows an interrupted run already wrote

    def holds(self, path: str | Path) -> bool:
        """Whether an interrupted run already wrote this file's row."""
        return self.cell(str(path)) in self.done

    def cell(self, text: str) -> str:
        """A text as this format writes it (and reads it back)."""
        return text

    def write(self, batch: list[Prediction]) -> None:
        """One batch's rows in one write, flushed: a kill after it returns loses none of them."""
        text = self.render(batch)
        self.rows += len(batch)
        if text:
            self.sink.write(text)

    def render(self, batch: list[Prediction]) -> str:
        raise NotImplementedError

    def close(self) -> None:
        """Whatever ends the format (the JSON array's bracket)."""

    def record(self, row: Prediction) -> dict:
        """A row's JSON object: Prediction.to_dict and the model that answered."""
        return {**row.to_dict(), "model": asdict(self.model)}


class CsvWriter(ResultWriter):
    """A header, then Prediction.csv_row per file, numbers to DECIMALS places; names' non-UTF-8 bytes as \\xNN (a
    CSV is text)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.headed = self.rows > 0  # a resumed file with rows has its header

    def cell(self, text: str) -> str:
        return without_raw_bytes(text)

    def render(self, batch: list[Prediction]) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=csv_columns(self.class_names))
        if not self.headed:
            writer.writeheader()
            self.headed = True
        writer.writerows(text_cells(rounded_cells(r.csv_row(self.class_names))) for r in batch)
        return buf.getvalue()

    def close(self) -> None:
        """A file of no rows still gets its header (as Ray's always did)."""
        if not self.headed:
            self.sink.write(self.render([]))


class JsonRows(ResultWriter):
    """JSON objects whose texts hold no raw bytes: a name's non-UTF-8 bytes as \\xNN text, as the CSV writes them
    (a lone surrogate escape, what Python would write, is refused by strict parsers and by any UTF-8 encoder)."""

    def cell(self, text: str) -> str:
        return without_raw_bytes(text)

    def record(self, row: Prediction) -> dict:
        return text_cells(super().record(row))


class JsonlWriter(JsonRows):
    """One object per line: Prediction.to_dict and "model"."""

    def render(self, batch: list[Prediction]) -> str:
        return "".join(json.dumps(self.record(r)) + "\n" for r in batch)


class JsonWriter(JsonRows):
    """A JSON array, one object per line: `[`, objects separated by `,` + newline, `]` when the run ends."""

    def render(self, batch: list[Prediction]) -> str:
        return "".join(
            ("[\n" if self.rows == 0 and i == 0 else ",\n") + json.dumps(self.record(r)) for i, r in enumerate(batch)
        )

    def close(self) -> None:
        self.sink.write("\n]\n" if self.rows else "[]\n")


class TableWriter(ResultWriter):
    """The terminal table: its column widths are the first batch's (a longer name later only shifts its own row);
    names and errors printable (no raw bytes, no escape sequences)."""

    widths: tuple[int, int] | None = None

    def render(self, batch: list[Prediction]) -> str:
        if not batch:
            return ""
        lines = []
        if self.widths is None:
            names = [printable(r.file) for r in batch]
            self.widths = (max([len(n) for n in names] + [4]), max([len(r.label or "") for r in batch] + [8]))
            lines.append(table_header(*self.widths))
        lines += [table_line(r, *self.widths) for r in batch]
        return "\n".join(lines) + "\n"


def table_header(width: int, label_width: int) -> str:
    """The table's first line, its columns `width` and `label_width` wide."""
    return f"{'file':<{width}}  {'label':<{label_width}}  probability"


def table_line(r: Prediction, width: int, label_width: int) -> str:
    """One file's table line: label and probability (and why it is unsure), or its error."""
    if r.error is not None:
        return f"{printable(r.file):<{width}}  error: {printable(r.error)}"
    why = f"  ({r.unsure_reason}, score {r.unsure_score:.2f})" if r.unsure_reason else ""
    return f"{printable(r.file):<{width}}  {r.label:<{label_width}}  {r.probability:.{DECIMALS}f}{why}"


WRITERS = {"table": TableWriter, "csv": CsvWriter, "jsonl": JsonlWriter, "json": JsonWriter}


def check_output(
    output: Path | None, fmt: str, resume: bool, class_names: list[str] | None = None, model: ModelStamp | None = None
) -> None:
    """A clear error for --resume without a file it can read back, or (given the classes and model) with a file
    another model began: called before the model loads."""
    if resume and output is None:
        raise HorsesHumansError("--resume continues an --output FILE: name the file the interrupted run wrote.")
    if resume and fmt not in RESUMABLE:
        raise HorsesHumansError(
            f"{output}: --resume reads the file back, which a table cannot be: "
            f"write {', '.join(RESUMABLE)} (--format or the extension)."
        )
    if resume and model is not None and Path(output).exists():
        read_done(Path(output), fmt, class_names or [], model)


def sidecar_path(output: Path) -> Path:
    """Where a CSV's model record lives: FILE.meta.json beside FILE."""
    return output.with_name(output.name + SIDECAR)


def write_sidecar(output: Path, fmt: str, class_names: list[str], model: ModelStamp) -> None:
    """For a CSV: FILE.meta.json saying which model answered and the classes of its p_<class> columns."""
    if fmt != "csv":
        return
    try:
        write_json_atomic(sidecar_path(output), {"model": asdict(model), "class_names": list(class_names)})
    except OSError as exc:
        raise HorsesHumansError(
            f"{sidecar_path(output)}: cannot write ({exc.strerror or exc}); make room, then run it again."
        ) from None


@contextmanager
def file_sink(path: Path, keep: int, resumable: bool, shown: Path | None = None) -> Iterator[FileSink]:
    """A FileSink on `path` (errors name `shown`, the file the user asked for, when `path` is its temporary twin):
    its first `keep` bytes kept (a row cut short by a kill goes), the rest appended."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
    try:
        os.ftruncate(fd, keep)
        os.lseek(fd, keep, os.SEEK_SET)
        yield FileSink(shown or path, fd, resumable)
    finally:
        os.close(fd)


@contextmanager
def open_results(output: Path | None, fmt: str, class_names: list[str], model: ModelStamp, resume: bool = False):
    """A ResultWriter on stdout or on `output` (created, or with --resume continued after its complete rows, when
    the same model began it); its `done` set names the files already in it."""
    check_output(output, fmt, resume)
    if output is None:
        writer = WRITERS[fmt](StdoutSink(), class_names, model)
        yield writer
        writer.close()
        return
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    done, rows, keep = read_done(output, fmt, class_names, model) if resume and output.exists() else (set(), 0, 0)
    if not keep:
        write_sidecar(output, fmt, class_names, model)
    with file_sink(output, keep, fmt in RESUMABLE) as sink:
        writer = WRITERS[fmt](sink, class_names, model, rows, done)
        yield writer
        writer.close()


def read_done(path: Path, fmt: str, class_names: list[str], model: ModelStamp) -> tuple[set[str], int, int]:
    """(files with a complete row, how many rows, bytes to keep) of an output file an interrupted run left; a file
    another model began is refused."""
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    records, end = (read_csv if fmt == "csv" else read_json_lines)(text, fmt, class_names, path)
    if not records:
        return set(), 0, 0  # nothing complete: start the file again (header or bracket included)
    for recorded in recorded_models(path, fmt, records):
        check_same_model(path, recorded, model)
    return {record["file"] for record in records}, len(records), len(text[:end].encode("utf-8", "surrogateescape"))


def recorded_models(path: Path, fmt: str, records: list[dict]) -> list[dict | None]:
    """The model each row says answered it (a CSV: its sidecar's, once; None where nothing says)."""
    if fmt != "csv":
        return list({json.dumps(r.get("model"), sort_keys=True): r.get("model") for r in records}.values())
    try:
        return [json.loads(sidecar_path(path).read_text()).get("model")]
    except FileNotFoundError:
        return [None]
    except (OSError, ValueError, AttributeError) as exc:
        raise HorsesHumansError(
            f"{sidecar_path(path)}: cannot read which model began {path.name} ({exc}); "
            "write to a new file, or delete both and start again."
        ) from None


def check_same_model(path: Path, recorded: dict | None, model: ModelStamp) -> None:
    """Refuse, in one line, to continue a file whose rows another model (or an unknown one) answered."""
    if recorded == asdict(model):
        return
    known = isinstance(recorded, dict) and set(recorded) == set(asdict(model))
    by = f"was begun by {ModelStamp(**recorded).describe()}" if known else "does not say which model began it"
    raise HorsesHumansError(
        f"{path}: {by}, not {model.describe()}: its rows would mix two models' answers; "
        "write to a new file, or resume with the run, --checkpoint and --runtime that began it."
    )


def read_csv(text: str, fmt: str, class_names: list[str], path: Path) -> tuple[list[dict], int]:
    """The complete rows of a CSV (a header and lines ending in a newline) and the offset after the last one."""
    lines = io.StringIO(text, newline="").readlines()
    ends = [0]
    for line in lines:
        ends.append(ends[-1] + len(line))
    reader, records, end = csv.reader(lines), [], 0
    expected = csv_columns(class_names)
    for row in reader:
        complete = lines[reader.line_num - 1].endswith(("\n", "\r"))
        if not complete or (reader.line_num > 1 and len(row) != len(expected)):
            break
        if reader.line_num == 1 and row != expected:
            raise HorsesHumansError(
                f"{path}: its header {','.join(row)} is not this run's ({','.join(expected)}); "
                "write to a new file, or resume with the run that wrote it."
            )
        if reader.line_num > 1:
            records.append(dict(zip(expected, row)))
        end = ends[reader.line_num]
    return records, end


def read_json_lines(text: str, fmt: str, class_names: list[str], path: Path) -> tuple[list[dict], int]:
    """The complete objects of a JSON Lines file, or of a JSON array as JsonWriter writes it, and the offset after
    the last one (for the array: before its separator, which the writer puts before the next object)."""
    records, end, offset = [], 0, 0
    for i, line in enumerate(io.StringIO(text, newline="").readlines()):
        start, offset = offset, offset + len(line)
        body = line.rstrip("\r\n")
        if fmt == "json" and i == 0 and body == "[":
            continue
        body = body[:-1] if fmt == "json" and body.endswith(",") else body
        if fmt == "jsonl" and not line.endswith("\n"):
            break  # cut short by the kill
        try:
            record = json.loads(body)
        except json.JSONDecodeError:
            break
        if not isinstance(record, dict) or "file" not in record:
            break
        records.append(record)
        end = offset if fmt == "jsonl" else start + len(body)
    return records, end
