"""Where `predict` writes its rows as they come: a table, CSV, JSON Lines or a JSON array, on stdout or in a file.

Each batch's rows are written in one call and flushed, so a killed run keeps every row it had written (at worst the
last line is cut short). `--resume` reads such a file back: the complete rows say which files are done, anything
after the last complete row is cut off, and the writer continues where it stopped; nothing is written twice.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from ..config import HorsesHumansError
from .predictor import Prediction, table_header, table_line

FORMATS = ("table", "csv", "jsonl", "json")
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
RESUMABLE = ("csv", "jsonl", "json")


def choose_format(fmt: str | None, output: Path | None) -> str:
    """The format asked for, else the output file's extension (.csv, .jsonl/.ndjson, .json), else a table."""
    if fmt:
        return fmt
    return EXTENSIONS.get(output.suffix.lower(), "table") if output else "table"


class ResultWriter:
    """Rows of one format on a text stream; `done` holds the files already there (from --resume)."""

    def __init__(self, stream: TextIO, class_names: list[str], rows_before: int = 0, done: set[str] | None = None):
        self.stream, self.class_names, self.rows = stream, list(class_names), rows_before
        self.done = done or set()  # files whose rows an interrupted run already wrote

    def write(self, batch: list[Prediction]) -> None:
        """One batch's rows in one write, flushed: a kill after it returns loses none of them."""
        text = self.render(batch)
        self.rows += len(batch)
        if text:
            self.stream.write(text)
            self.stream.flush()

    def render(self, batch: list[Prediction]) -> str:
        raise NotImplementedError

    def close(self) -> None:
        """Whatever ends the format (the JSON array's bracket)."""


class CsvWriter(ResultWriter):
    """A header, then Prediction.csv_row per file (one p_<class> column per class)."""

    def header(self) -> list[str]:
        return list(Prediction("").csv_row(self.class_names))

    def render(self, batch: list[Prediction]) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.header())
        if self.rows == 0:
            writer.writeheader()
        writer.writerows(r.csv_row(self.class_names) for r in batch)
        return buf.getvalue()


class JsonlWriter(ResultWriter):
    """One Prediction.to_dict object per line."""

    def render(self, batch: list[Prediction]) -> str:
        return "".join(json.dumps(r.to_dict()) + "\n" for r in batch)


class JsonWriter(ResultWriter):
    """A JSON array, one object per line: `[`, objects separated by `,` + newline, `]` when the run ends."""

    def render(self, batch: list[Prediction]) -> str:
        return "".join(
            ("[\n" if self.rows == 0 and i == 0 else ",\n") + json.dumps(r.to_dict()) for i, r in enumerate(batch)
        )

    def close(self) -> None:
        self.stream.write("\n]\n" if self.rows else "[]\n")
        self.stream.flush()


class TableWriter(ResultWriter):
    """The terminal table: its column widths are the first batch's (a longer name later only shifts its own row)."""

    widths: tuple[int, int] | None = None

    def render(self, batch: list[Prediction]) -> str:
        if not batch:
            return ""
        lines = []
        if self.widths is None:
            self.widths = (max([len(r.file) for r in batch] + [4]), max([len(r.label or "") for r in batch] + [8]))
            lines.append(table_header(*self.widths))
        lines += [table_line(r, *self.widths) for r in batch]
        return "\n".join(lines) + "\n"


WRITERS = {"table": TableWriter, "csv": CsvWriter, "jsonl": JsonlWriter, "json": JsonWriter}


def check_output(output: Path | None, fmt: str, resume: bool) -> None:
    """A clear error for --resume without a file it can read back (called before the model loads)."""
    if resume and output is None:
        raise HorsesHumansError("--resume continues an --output FILE: name the file the interrupted run wrote.")
    if resume and fmt not in RESUMABLE:
        raise HorsesHumansError(
            f"{output}: --resume reads the file back, which a table cannot be: "
            f"write {', '.join(RESUMABLE)} (--format or the extension)."
        )


@contextmanager
def open_results(output: Path | None, fmt: str, class_names: list[str], resume: bool = False):
    """A ResultWriter on stdout or on `output` (created, or with --resume continued after its complete rows);
    its `done` set names the files already in it."""
    check_output(output, fmt, resume)
    if output is None:
        writer = WRITERS[fmt](sys.stdout, class_names)
        yield writer
        writer.close()
        return
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    done, rows, keep = read_done(output, fmt, class_names) if resume and output.exists() else (set(), 0, 0)
    with open(output, "r+b" if keep else "wb") as raw:
        raw.truncate(keep)  # a row cut short by the kill goes; complete rows stay
        raw.seek(keep)
        with io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="") as stream:
            writer = WRITERS[fmt](stream, class_names, rows, done)
            yield writer
            writer.close()


def read_done(path: Path, fmt: str, class_names: list[str]) -> tuple[set[str], int, int]:
    """(files with a complete row, how many rows, bytes to keep) of an output file an interrupted run left."""
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    records, end = (read_csv if fmt == "csv" else read_json_lines)(text, fmt, class_names, path)
    if not records:
        return set(), 0, 0  # nothing complete: start the file again (header or bracket included)
    return {record["file"] for record in records}, len(records), len(text[:end].encode("utf-8", "surrogateescape"))


def read_csv(text: str, fmt: str, class_names: list[str], path: Path) -> tuple[list[dict], int]:
    """The complete rows of a CSV (a header and lines ending in a newline) and the offset after the last one."""
    lines = io.StringIO(text, newline="").readlines()
    ends = [0]
    for line in lines:
        ends.append(ends[-1] + len(line))
    reader, records, end = csv.reader(lines), [], 0
    expected = CsvWriter(io.StringIO(), class_names).header()
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
