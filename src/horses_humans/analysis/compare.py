"""`horses-humans compare`: several runs side by side, as compare.md (curves.png beside it) and a self-contained
compare.html, and the overlaid training curves that the report draws too. Rows come from tables.compare_rows.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from ..core.atomic import write_text_atomic
from ..core.tables import compare_rows, markdown_table
from ..runs.store import Run, load_run
from . import plots
from .htmlpage import View, page_html, sections_html, table_html

COMPARE_NOTE = (
    "One row per run, or per group of runs differing only by seed (mean ± sample std). 'final' is the last "
    "epoch, 'best epoch' the best validation accuracy of any epoch (selected on the validation set, so "
    "optimistic); the gap is final training minus final validation accuracy, in percentage points. "
    "'-': not recorded by that run."
)


def write_comparison(run_dirs: Sequence[Path], out_dir: Path) -> tuple[str, list[Path]]:
    """compare.md (with curves.png beside it) and a self-contained compare.html for several runs.
    Returns the Markdown and the paths written."""
    runs = unique_runs(run_dirs)
    out = Path(out_dir)
    header, rows = compare_rows(runs)
    view = runs_curves_view(runs, out)
    note = " ".join(filter(None, [COMPARE_NOTE, classes_warning(runs)]))
    markdown = comparison_markdown(header, rows, view, note)
    body = f'<h2>Runs</h2><p class="caption">{html.escape(note)}</p>{table_html(header, rows)}\n{sections_html([view])}'
    paths = [out / "compare.md", out / "compare.html"]
    write_text_atomic(paths[0], markdown)
    write_text_atomic(paths[1], page_html("horses-humans compare", f"horses-humans compare: {len(runs)} runs", body))
    return markdown, paths


def unique_runs(run_dirs: Sequence[Path]) -> list[Run]:
    """The finished runs at run_dirs, each once, in the order given."""
    seen, runs = set(), []
    for path in run_dirs:
        if Path(path).resolve() not in seen:
            seen.add(Path(path).resolve())
            runs.append(load_run(path))
    return runs


def classes_warning(runs: Sequence[Run]) -> str:
    """A sentence when the runs were trained on different class lists (their accuracies do not compare); '' if not."""
    groups: dict[tuple, int] = {}
    for run in runs:
        groups[tuple(run.class_names)] = groups.get(tuple(run.class_names), 0) + 1
    if len(groups) < 2:
        return ""
    parts = "; ".join(f"{', '.join(names)} ({count} run{'s' if count > 1 else ''})" for names, count in groups.items())
    return f"Caution: the runs classify different classes ({parts}), so their accuracies are not comparable."


def runs_curves_view(runs: Sequence[Run], out: Path) -> View:
    """Training curves of several runs overlaid in one figure (out/curves.png)."""
    histories = {r.path.name: r.history for r in runs if r.history}
    if not histories:
        return View("curves", "Training curves", "No run has a per-epoch history (history.json) to draw.")
    caption = "Accuracy and loss per epoch on the training and validation splits" + (
        f", {len(histories)} runs overlaid." if len(histories) > 1 else "."
    )
    return View(
        "curves", "Training curves", caption, plots.save_png(plots.training_curves(histories), out / "curves.png")
    )


def comparison_markdown(header: list[str], rows: list[list[str]], curves: View, note: str = COMPARE_NOTE) -> str:
    """The comparison as a Markdown document; the curves PNG is linked, as it lies beside the file."""
    figure = f"![{curves.title}]({curves.png.name})\n\n" if curves.png else ""
    return f"# Comparison\n\n{note}\n\n{markdown_table(header, rows)}\n\n{figure}{curves.caption}\n"
