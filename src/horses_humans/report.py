"""A run's views as PNG files and one self-contained report.html (images embedded, opens offline),
plus `explain` for a single image. Arrays come from explain.py and evaluation.py, figures from plots.py.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve

from . import explain, plots
from .config import HorsesHumansError
from .data import Split
from .evaluation import classification_metrics, predict_validation
from .images import ImageError, load_pixels
from .atomic import write_text_atomic
from .predict import Predictor
from .recipes import get_recipe, last_conv_layer
from .runs import Run, load_run
from .tables import compare_rows, markdown_table

REPORT_DIR = "report"
EXPLAIN_DIR = "explain"
GALLERY_SIZE = 12  # misclassified images shown, worst first


@dataclass
class View:
    """One section of the report: a PNG (None when there is nothing to draw) and what it shows."""

    key: str
    title: str
    caption: str
    png: Path | None = None


@dataclass
class Evaluated:
    """A run with its loaded model and its predictions on the validation split."""

    run: Run
    predictor: Predictor
    split: Split
    probabilities: np.ndarray

    @property
    def layer(self) -> str:
        """The layer Grad-CAM explains: the recipe's last conv layer."""
        return last_conv_layer(self.run.config)

    def describe(self, i: int) -> str:
        """'file\ntrue -> predicted p=...' for image i of the split."""
        p = float(self.probabilities[i])
        return (f"{Path(self.split.files[i]).name}\n{self.run.class_names[int(self.split.y[i])]} -> "
                f"{self.predictor.label_of(p)}  p={p:.3f}")


# ---------------------------------------------------------------- the report

def write_report(run_dir: Path, data_dir: Path, cache_dir: Path | None = None, compare: Sequence[Path] = (), log=print) -> Path:
    """Compute and draw every view of a run into RUN/report/, then report.html (written last)."""
    ev = evaluate(load_run(run_dir), data_dir, cache_dir, log)
    out = ev.run.path / REPORT_DIR
    metrics = classification_metrics(ev.split.y, ev.probabilities, ev.predictor.threshold)
    views = [
        samples_view(ev, out), augmentation_view(ev, out), curves_view(ev.run, compare, out),
        activations_view(ev, out), gradcam_view(ev, out), confusion_view(ev, metrics, out),
        roc_view(ev, metrics, out), misclassified_view(ev, out),
    ]
    path = out / "report.html"
    write_text_atomic(path, render_html(ev.run, metrics, views))
    return path


def evaluate(run: Run, data_dir: Path, cache_dir: Path | None, log=print) -> Evaluated:
    """Load the run's model and predict the validation split."""
    return Evaluated(run, *predict_validation(run, data_dir, cache_dir, log))


def spread(y: np.ndarray, cls: int, n: int) -> np.ndarray:
    """n indices of class cls, evenly spread over the split (deterministic)."""
    members = np.flatnonzero(np.asarray(y) == cls)
    return members[np.linspace(0, len(members) - 1, min(n, len(members))).round().astype(int)]


def samples_view(ev: Evaluated, out: Path) -> View:
    """Evenly spaced validation images of each class, labelled."""
    idx = np.concatenate([spread(ev.split.y, c, 8) for c in range(len(ev.run.class_names))])
    fig = plots.sample_grid(ev.split.x[idx], ev.split.y[idx], ev.run.class_names)
    return View("samples", "Data set samples", f"{len(idx)} validation images, evenly spaced through each class folder, "
                f"at the model's input size ({ev.run.image_size} px).", plots.save_png(fig, out / "samples.png"))


def augmentation_view(ev: Evaluated, out: Path) -> View:
    """One image through the model's augmentation layers (or the `augmented` recipe's), many draws."""
    layers = explain.augmentation_layers(ev.predictor.model)
    if layers:
        note = f"this model's own augmentation layers ({', '.join(l.name for l in layers)})"
    else:
        from .recipes.cnn import build_augmentation

        layers = build_augmentation()
        note = "the `augmented` recipe's layers (this model has no augmentation layers of its own)"
    image = ev.split.x[spread(ev.split.y, 1, 1)[0]]
    fig = plots.augmentation_grid(image, explain.augment(layers, image, 11), f"Draws through {note}")
    caption = f"One image and 11 random draws through {note}, called with training=True; at inference they are the identity."
    return View("augmentation", "Augmentation preview", caption, plots.save_png(fig, out / "augmentation.png"))


def curves_view(run: Run, compare: Sequence[Path], out: Path) -> View:
    """Accuracy and loss per epoch, train vs validation, other runs overlaid."""
    return runs_curves_view([run, *(load_run(p) for p in compare if Path(p).resolve() != run.path.resolve())], out)


def runs_curves_view(runs: Sequence[Run], out: Path) -> View:
    """Training curves of several runs overlaid in one figure (out/curves.png)."""
    histories = {r.path.name: r.history for r in runs if r.history}
    if not histories:
        return View("curves", "Training curves", "No run has a per-epoch history (history.json) to draw.")
    caption = "Accuracy and loss per epoch on the training and validation splits" + (
        f", {len(histories)} runs overlaid." if len(histories) > 1 else ".")
    return View("curves", "Training curves", caption, plots.save_png(plots.training_curves(histories), out / "curves.png"))


def activations_view(ev: Evaluated, out: Path) -> View:
    """Tiled feature maps of one validation image."""
    i = spread(ev.split.y, 1, 1)[0]
    fig = activation_figure(ev.predictor.model, ev.split.x[i])
    caption = (f"What {Path(ev.split.files[i]).name} looks like inside the model: each layer's feature maps, "
               "each standardised on its own (yellow: stronger than the map's average, purple: weaker) and tiled, "
               "as the reference notebook draws them. Layers with many channels show their most active ones.")
    return View("activations", "Intermediate activations", caption, plots.save_png(fig, out / "activations.png"))


def activation_figure(model, pixels: np.ndarray):
    """The tiled feature maps of the model's conv/pool (or backbone stage) layers for one image."""
    return plots.activation_grids(explain.activations(model, pixels, explain.feature_layers(model)), pixels)


def gradcam_view(ev: Evaluated, out: Path) -> View:
    """Grad-CAM overlays of a few validation images of each class."""
    idx = np.concatenate([spread(ev.split.y, c, 4) for c in range(len(ev.run.class_names))])
    fig = gradcam_figure(ev, idx, f"Grad-CAM at {ev.layer}")
    caption = (f"Where the model looked, for {len(idx)} validation images: Grad-CAM of the predicted class at layer "
               f"{ev.layer} (red = most important; each map scaled to its own maximum; an all-blue map means no "
               "location added evidence for the predicted class). Titles: file, true -> predicted label, "
               f"p = probability of {ev.run.class_names[1]!r}.")
    return View("gradcam", "Grad-CAM", caption, plots.save_png(fig, out / "gradcam.png"))


def gradcam_figure(ev: Evaluated, idx: np.ndarray, title: str):
    """Grad-CAM pairs for images idx of the split; wrong answers in red, empty maps said so."""
    heatmaps = explain.gradcam(ev.predictor.model, np.asarray(ev.split.x[idx]), ev.layer)
    titles = [ev.describe(i) + ("" if h.max() > 0 else "\n(no positive evidence)") for i, h in zip(idx, heatmaps)]
    wrong = [ev.predictor.label_of(float(ev.probabilities[i])) != ev.run.class_names[int(ev.split.y[i])] for i in idx]
    return plots.gradcam_grid(ev.split.x[idx], heatmaps, titles, title, colours=[plots.WRONG_COLOUR if w else "black" for w in wrong])


def confusion_view(ev: Evaluated, metrics: dict, out: Path) -> View:
    """The confusion matrix at the run's threshold."""
    fig = plots.confusion_matrix(metrics["confusion_matrix"], ev.run.class_names)
    caption = f"Rows: true class; columns: predicted at threshold {ev.predictor.threshold}; row percentages."
    return View("confusion", "Confusion matrix", caption, plots.save_png(fig, out / "confusion.png"))


def roc_view(ev: Evaluated, metrics: dict, out: Path) -> View:
    """The ROC curve and its area."""
    fpr, tpr, _ = roc_curve(ev.split.y, ev.probabilities)
    fig = plots.plot_roc(fpr, tpr, metrics["roc_auc"], ev.run.class_names[1])
    return View("roc", "ROC curve", f"True vs false positive rate over all thresholds; ROC AUC {metrics['roc_auc']:.4f}.",
                plots.save_png(fig, out / "roc.png"))


def misclassified_view(ev: Evaluated, out: Path) -> View:
    """The wrongly labelled validation images, highest loss first, with Grad-CAM."""
    wrong = explain.misclassified(ev.split.y, ev.probabilities, ev.predictor.threshold)
    (out / "misclassified.png").unlink(missing_ok=True)  # from an earlier report of a worse model
    if not len(wrong):
        return View("misclassified", "Misclassified images", "No validation image is misclassified.")
    shown = wrong[:GALLERY_SIZE]
    fig = gradcam_figure(ev, shown, f"Misclassified, worst first (Grad-CAM at {ev.layer})")
    caption = (f"{len(wrong)} of {len(ev.split)} validation images are misclassified; the {len(shown)} with the highest "
               "loss are shown, each with its probability and the Grad-CAM of the (wrong) predicted class.")
    return View("misclassified", "Misclassified images", caption, plots.save_png(fig, out / "misclassified.png"))


# ---------------------------------------------------------------- HTML

STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:.2em .8em;border:1px solid #ddd;text-align:left}
img{max-width:100%;height:auto}p.caption{color:#555}nav a{margin-right:1em}"""


def data_uri(png: Path) -> str:
    """A PNG file as a base64 data URI, so the report needs no other file."""
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def summary_rows(run: Run, metrics: dict) -> list[tuple[str, str]]:
    """(name, value) rows for the report's summary table."""
    cfg = run.config
    rows = [("run", run.path.name), ("recipe", f"{cfg.recipe} ({get_recipe(cfg.recipe).description})"),
            ("input size", f"{run.image_size} px"), ("epochs run", str(len(run.history)))]
    rows += [(k, f"{metrics[k]:.4f}") for k in ("accuracy", "precision", "recall", "f1", "roc_auc")]
    return rows + [("validation images", str(metrics["images"])), ("positive class", run.class_names[1])]


def render_html(run: Run, metrics: dict, views: list[View]) -> str:
    """The whole report as one HTML page with every image inline."""
    esc = html.escape
    table = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in summary_rows(run, metrics))
    nav = "".join(f'<a href="#{v.key}">{esc(v.title)}</a>' for v in views)
    body = f"<nav>{nav}</nav>\n<h2>Summary (validation split)</h2><table>{table}</table>\n{sections_html(views)}"
    return page_html(run.path.name, f"horses-humans report: {run.path.name}", body)


def sections_html(views: Sequence[View]) -> str:
    """One <section> per view: title, caption and its PNG inline (when it has one)."""
    esc = html.escape
    return "".join(
        f'<section id="{v.key}"><h2>{esc(v.title)}</h2><p class="caption">{esc(v.caption)}</p>'
        + (f'<img alt="{esc(v.title)}" src="{data_uri(v.png)}">' if v.png else "") + "</section>\n"
        for v in views)


def page_html(title: str, heading: str, body: str) -> str:
    """A self-contained HTML page (inline style, no external resources) around an HTML body."""
    esc = html.escape
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n<h1>{esc(heading)}</h1>\n{body}</body></html>\n")


def table_html(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A header row and body rows as an HTML table (text escaped)."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


# ---------------------------------------------------------------- several runs side by side

def write_comparison(run_dirs: Sequence[Path], out_dir: Path) -> tuple[str, list[Path]]:
    """compare.md (with curves.png beside it) and a self-contained compare.html for several runs.
    Returns the Markdown and the paths written."""
    runs = unique_runs(run_dirs)
    out = Path(out_dir)
    header, rows = compare_rows(runs)
    view = runs_curves_view(runs, out)
    markdown = comparison_markdown(header, rows, view)
    body = f"<h2>Runs</h2><p class=\"caption\">{html.escape(COMPARE_NOTE)}</p>{table_html(header, rows)}\n{sections_html([view])}"
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


COMPARE_NOTE = ("One row per run, or per group of runs differing only by seed (mean ± sample std). 'final' is the last "
                "epoch, 'best epoch' the best validation accuracy of any epoch (selected on the validation set, so "
                "optimistic); the gap is final training minus final validation accuracy, in percentage points. "
                "'-': not recorded by that run.")


def comparison_markdown(header: list[str], rows: list[list[str]], curves: View) -> str:
    """The comparison as a Markdown document; the curves PNG is linked, as it lies beside the file."""
    figure = f"![{curves.title}]({curves.png.name})\n\n" if curves.png else ""
    return f"# Comparison\n\n{COMPARE_NOTE}\n\n{markdown_table(header, rows)}\n\n{figure}{curves.caption}\n"


# ---------------------------------------------------------------- one image

def write_explanation(run_dir: Path, image: Path, layer: str | None = None, out_dir: Path | None = None) -> dict:
    """Activation tiles and a Grad-CAM overlay for one image file -> {label, probability, paths}."""
    run = load_run(run_dir)
    try:
        pixels = load_pixels(image, run.image_size, name=str(image))
    except ImageError as exc:
        raise HorsesHumansError(str(exc)) from None
    predictor = Predictor.from_run(run)
    layer = layer or last_conv_layer(run.config)
    explain.check_paths(predictor.model, [layer])
    p = float(predictor.predict_pixels(pixels[None])[0])
    heatmap = explain.gradcam(predictor.model, pixels, layer)
    out, stem = Path(out_dir or run.path / EXPLAIN_DIR), Path(image).stem
    title = f"{Path(image).name}: {predictor.label_of(p)}, p({run.class_names[1]}) = {p:.4f}"
    panel = f"Grad-CAM at {layer}" + ("" if heatmap.max() > 0 else " (no positive evidence)")
    paths = [plots.save_png(activation_figure(predictor.model, pixels), out / f"{stem}-activations.png"),
             plots.save_png(plots.gradcam_grid([pixels], [heatmap], [panel], title, 1, cell=4.0), out / f"{stem}-gradcam.png")]
    return {"label": predictor.label_of(p), "probability": p, "paths": [str(x) for x in paths]}
