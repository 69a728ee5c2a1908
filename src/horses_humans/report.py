"""`horses-humans report`: a run's views as PNG files and one self-contained report.html (images embedded, opens
offline). Arrays come from explain.py and evaluation.py, figures from plots.py, the page from htmlpage.py.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve

from . import explain, plots
from .atomic import write_text_atomic
from .compare import runs_curves_view
from .data import Split
from .evaluation import classification_metrics, predict_split
from .htmlpage import View, page_html, sections_html
from .predict import Predictor
from .recipes import get_recipe, last_conv_layer
from .runs import Run, load_run

REPORT_DIR = "report"
GALLERY_SIZE = 12  # misclassified images shown, worst first


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

def write_report(run_dir: Path, data_dir: Path | None = None, cache_dir: Path | None = None, compare: Sequence[Path] = (), log=print) -> Path:
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


def evaluate(run: Run, data_dir: Path | None, cache_dir: Path | None, log=print) -> Evaluated:
    """Load the run's model and predict its validation split (in its own data folder unless data_dir is given)."""
    return Evaluated(run, *predict_split(run, "validation", data_dir, None, cache_dir, log))


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


def activations_view(ev: Evaluated, out: Path) -> View:
    """Tiled feature maps of one validation image."""
    i = spread(ev.split.y, 1, 1)[0]
    fig = explain.activation_figure(ev.predictor.model, ev.split.x[i])
    caption = (f"What {Path(ev.split.files[i]).name} looks like inside the model: each layer's feature maps, "
               "each standardised on its own (yellow: stronger than the map's average, purple: weaker) and tiled, "
               "as the reference notebook draws them. Layers with many channels show their most active ones.")
    return View("activations", "Intermediate activations", caption, plots.save_png(fig, out / "activations.png"))


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
    fig = plots.plot_confusion_matrix(metrics["confusion_matrix"], ev.run.class_names)
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
