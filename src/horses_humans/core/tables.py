"""Every Markdown table the package writes goes through markdown_table. The tables of finished runs (the results
table of `horses-humans runs`, the side-by-side rows of `horses-humans compare`) share their grouping and number
formatting; the export trade-off table (`horses-humans export --all`) is built here too, and a results document's
summary table is copied into README from here."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..config import HorsesHumansError
from .atomic import write_text_atomic

RESULTS_HEADER = [
    "recipe",
    "size",
    "epochs",
    "options",
    "seeds",
    "train acc %",
    "val acc % (final)",
    "val acc % (best epoch)",
    "val acc % (served*)",
    "s/epoch",
    "training s",
    "precision",
    "path",  # each run's folder, as RUN takes it (one per seed of the row)
]
SERVED_NOTE = (
    "\\* served: the checkpoint every command uses unless given `--checkpoint` (best: the epoch with the "
    "highest validation accuracy; runs made before checkpoints: their last epoch), scored as its saved float32 file "
    "answers (training's own figure for runs made before that was recorded). Validation chose it, so "
    "the number is optimistic: `horses-humans evaluate RUN --split test` or `--data DIR` measures it fairly."
)
REFERENCE_CLASSES = ["horses", "humans"]  # runs on them say nothing about their classes in the tables
COMPARE_HEADER = [
    "run",
    "recipe",
    "size",
    "epochs",
    "options",
    "seeds",
    "train acc %",
    "val acc % (final)",
    "val acc % (best epoch)",
    "gap train − val (points)",
    "s/epoch",
    "parameters",
    "precision",
]


def fmt_mean_std(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    """'85.2 ± 1.3' (mean ± sample std, scaled); a single value has no ±; no values (missing keys) is '-'."""
    values = [v * scale for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def fmt_parameters(metrics: list[dict]) -> str:
    """'9,494,561', or '47,512,481 (38,537,217 trainable)' when not all are trainable; '-' if never recorded."""
    known = [m for m in metrics if m.get("parameters") is not None]
    if not known:
        return "-"
    total, trainable = known[0]["parameters"], known[0].get("trainable_parameters")
    return f"{total:,}" + (f" ({trainable:,} trainable)" if trainable is not None and trainable != total else "")


def overfitting_gap(metrics: dict) -> float | None:
    """Final training minus final validation accuracy (a fraction; None if either is missing)."""
    train, val = metrics.get("train_accuracy"), metrics.get("val_accuracy")
    return None if train is None or val is None else train - val


def metric_cells(runs: list) -> dict[str, str]:
    """Formatted mean ± std over runs of every per-run number the tables show."""
    m = [r.metrics for r in runs]
    return {
        "train": fmt_mean_std([x.get("train_accuracy") for x in m]),
        "val": fmt_mean_std([x.get("val_accuracy") for x in m]),
        "best": fmt_mean_std([x.get("best_val_accuracy") for x in m]),
        "gap": fmt_mean_std([overfitting_gap(x) for x in m]),
        "epoch_seconds": fmt_mean_std([x.get("mean_epoch_seconds") for x in m], scale=1.0, digits=2),
        "train_seconds": fmt_mean_std([x.get("train_seconds") for x in m], scale=1.0, digits=1),
        "parameters": fmt_parameters(m),
    }


def group_key(run) -> tuple:
    """Runs that differ only by seed share a row (runs on other classes are other data: never averaged together)."""
    return (*sorted((k, str(v)) for k, v in run.config.to_dict().items() if k != "seed"), classes_text(run))


def group_runs(runs: list) -> list[list]:
    """Runs grouped by group_key, groups in the order their first run comes."""
    groups = defaultdict(list)
    for run in runs:
        groups[group_key(run)].append(run)
    return list(groups.values())


def options_text(config) -> str:
    """The options of a config that differ from its class's defaults (TrainConfig's), short."""
    default = type(config)()
    differs = lambda *names: any(getattr(config, n) != getattr(default, n) for n in names)  # noqa: E731
    augmented = config.recipe == "augmented" or config.augment
    parts = [
        f"{config.augmentation} augmentation" if augmented and differs("augmentation") else "",
        f"dropout {config.dropout}" if differs("dropout") else "",
        f"L2 {config.l2}" if differs("l2") else "",
        "early stop" if differs("early_stopping") else "",
        "LR on plateau" if differs("reduce_lr") else "",
        "balanced class weights" if differs("class_weight") else "",
        f"val split {config.val_split}" if differs("val_split") else "",
        f"conv {'-'.join(map(str, config.conv_filters))} k{config.kernel_size}"
        if config.recipe in ("baseline", "augmented") and differs("conv_filters", "kernel_size")
        else "",
    ]
    return ", ".join(p for p in parts if p) or "-"


def classes_text(run) -> str:
    """The classes a run tells apart, short: '' for the reference's horses and humans, 'cats vs dogs' for another
    pair, '5 classes' for more."""
    names = run.labels.get("class_names", REFERENCE_CLASSES)
    return "" if names == REFERENCE_CLASSES else " vs ".join(names) if len(names) == 2 else f"{len(names)} classes"


def setting_cells(runs: list) -> list[str]:
    """recipe, size, epochs, options (and classes, unless horses and humans), seeds of a group of runs."""
    c = runs[0].config
    options = ", ".join(p for p in (classes_text(runs[0]), options_text(c)) if p and p != "-") or "-"
    return [c.recipe, str(c.image_size), str(c.epochs), options, ",".join(str(r.config.seed) for r in runs)]


def precision_text(runs: list) -> str:
    """The precisions the runs trained in ('?' for runs that did not record it)."""
    return ",".join(sorted({r.environment.get("precision", "?") for r in runs}))


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured Markdown table: the one builder every table in the package and its scripts uses."""
    return "\n".join([markdown_row(header), "|" + "---|" * len(header)] + [markdown_row(row) for row in rows])


def markdown_row(cells: list) -> str:
    """'| a | b |'; a '|' inside a cell is escaped, so "max |dp|" does not split it."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def results_table(runs: list) -> str:
    """One row per configuration: mean ± std over seeds of final/best/served validation accuracy and more, then the
    note on the served number (its optimism)."""
    rows = []
    for members in group_runs(runs):
        cells = metric_cells(members)
        served = fmt_mean_std([run.served_accuracy for run in members])
        rows.append(
            [
                *setting_cells(members),
                cells["train"],
                cells["val"],
                cells["best"],
                served,
                cells["epoch_seconds"],
                cells["train_seconds"],
                precision_text(members),
                ", ".join(str(run.path) for run in members),
            ]
        )
    table = markdown_table(RESULTS_HEADER, rows or [["(no finished runs)"] + [""] * (len(RESULTS_HEADER) - 1)])
    return f"{table}\n\n{SERVED_NOTE}" if rows else table


PROBLEMS_HEADER = ["run or file", "state", "why"]


def run_problems_table(problems: list) -> str:
    """Markdown: the unfinished and damaged runs and leftover temporary files (runs.RunProblem) `runs --all` lists."""
    rows = [[p.name, p.state, p.why] for p in problems]
    return markdown_table(PROBLEMS_HEADER, rows or [["(none: every run is finished and readable)", "", ""]])


def compare_rows(runs: list) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the side-by-side comparison: one row per run, or per group differing only by seed."""
    rows = []
    for members in group_runs(runs):
        cells = metric_cells(members)
        rows.append(
            [
                ", ".join(r.path.name for r in members),
                *setting_cells(members),
                cells["train"],
                cells["val"],
                cells["best"],
                cells["gap"],
                cells["epoch_seconds"],
                cells["parameters"],
                precision_text(members),
            ]
        )
    return COMPARE_HEADER, rows


# ---------------------------------------------------------------- exports of one model

EXPORTS_HEADER = [
    "export",
    "runtime",
    "file",
    "MB",
    "folder MB",
    "x float",
    "val acc %",
    "mean abs dp",
    "max abs dp",
    "same label %",
    "p50 ms (1 image)",
    "parity",
]
EXPORTS_KEYS = [
    "export",
    "runtime",
    "file",
    "mb",
    "folder_mb",
    "ratio",
    "accuracy",
    "mean_abs_diff",
    "max_abs_diff",
    "agreement",
    "latency",
    "parity",
]  # the keys of `export.ExportResult.row()`, in EXPORTS_HEADER's order


def megabytes(size: int) -> str:
    """Bytes as MB with three significant figures (1 MB = 10^6 bytes)."""
    return f"{size / 1e6:.3g}"


def exports_table(rows: list[dict]) -> str:
    """Markdown: one row per export (the dicts `export.ExportResult.row()` makes)."""
    return markdown_table(EXPORTS_HEADER, [[r[key] for key in EXPORTS_KEYS] for r in rows]) + "\n"


def exports_markdown(source, results: list) -> str:
    """The trade-off table of one model's exports (export.ExportSource, export.ExportResult), with a line saying
    what it is and how it was measured."""
    float_bytes = next(
        (r.model_bytes for r in results if r.format == "tflite" and r.quantize == "none" and r.model_bytes), None
    )
    run, n = source.run, len(source.validation)
    keras_accuracy = 100 * source.accuracy(source.reference)
    head = (
        f"**{run.path.name}** ({run.config.recipe}, {run.image_size} px; Keras validation accuracy "
        f"{keras_accuracy:.1f}% "
        f"on {n} images). Differences are against the Keras model's probabilities on the same {n} validation images "
        "(onnx, tflite_labels and tfjs: against predict's, calibrated and flip-averaged as the run answers; tfjs, run "
        "in Node, on at most 32 of them); 'x float' is "
        "the size relative to the float TFLite file; latency is the median of single-image calls on this CPU.\n\n"
    )
    return head + exports_table([r.row(float_bytes) for r in results])


def write_exports_markdown(source, results: list) -> tuple[str, Path]:
    """The trade-off table, also written to RUN/export/exports.md."""
    table = exports_markdown(source, results)
    path = source.exports_table_path
    write_text_atomic(path, table)
    return table, path


# ---------------------------------------------------------------- README


def first_table(markdown: str) -> str:
    """The first Markdown table (consecutive lines starting with '|') of a document; '' if it has none."""
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def copy_table(document: Path, readme: Path, marker: str) -> None:
    """Put the first table of a results document (its summary) into readme between `<!-- MARKER:start -->` and
    `<!-- MARKER:end -->`: how README shows docs/results.md and docs/reproduce.md (scripts/readme_tables.py)."""
    table = first_table(Path(document).read_text())
    if not table:
        raise HorsesHumansError(
            f"{document}: no Markdown table to copy; write it with `horses-humans experiment reproduce` first."
        )
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = Path(readme).read_text()
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise HorsesHumansError(
            f"{readme}: needs one {start} ... {end} block; put the two markers where the table goes."
        )
    head, rest = text.split(start)
    write_text_atomic(Path(readme), f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}")
