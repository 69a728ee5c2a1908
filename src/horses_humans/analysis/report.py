"""`horses-humans report`: a run's views as PNG files and one self-contained report.html (images embedded, opens
offline). Arrays come from explain.py and evaluation.py, figures from plots.py, the page from htmlpage.py.
Every view reads the model's answers as class probabilities (N, C) through the run's ClassOutput, so it works for
two classes (one sigmoid unit, labels at the threshold) and for more (softmax, labels by the largest probability).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import auc, roc_curve

from ..core.atomic import write_text_atomic
from ..data.pixels import Split
from ..inference.calibration import describe_map, reliability_bins
from ..inference.predictor import Predictor
from ..inference.unsure import tradeoff_curve
from ..models.outputs import ClassOutput
from ..models.recipes import get_recipe, last_conv_layer
from ..runs.layout import EVALUATIONS_DIR, REPORT_DIR
from ..runs.modelcard import read_evaluation
from ..runs.store import OPTIMISM_NOTE, Run, load_run, read_calibration
from . import explain, plots
from .answers import folder_names, load_measuring_folder
from .compare import runs_curves_view
from .evaluation import EvalSplit, classification_metrics, predict_split
from .htmlpage import View, page_html, sections_html, table_html

logger = logging.getLogger(__name__)  # progress lines; the CLI sends them to stderr

GALLERY_SIZE = 12  # misclassified images shown, worst first


@dataclass
class Evaluated:
    """A run with its loaded model and its predictions on the validation split."""

    run: Run
    predictor: Predictor
    split: Split
    probabilities: np.ndarray  # (N, C), columns in class_names order

    @property
    def layer(self) -> str:
        """The layer Grad-CAM explains: the recipe's last conv layer."""
        return last_conv_layer(self.run.config)

    @property
    def output(self) -> ClassOutput:
        return self.predictor.output

    @property
    def predicted(self) -> np.ndarray:
        """The class index (N,) each image is labelled with, as the model is read (threshold or argmax)."""
        return self.output.predicted(self.probabilities)

    def describe(self, i: int) -> str:
        """'file\ntrue -> predicted p=...' for image i of the split; p is the predicted label's probability."""
        names, k = self.run.class_names, int(self.predicted[i])
        return (
            f"{Path(self.split.files[i]).name}\n{names[int(self.split.y[i])]} -> "
            f"{names[k]}  p={float(self.probabilities[i, k]):.3f}"
        )

    @property
    def classes(self) -> int:
        return len(self.run.class_names)


# ---------------------------------------------------------------- the report


def write_report(
    run_dir: Path,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    compare: Sequence[Path] = (),
    log=logger.info,
    checkpoint: str | None = None,
) -> Path:
    """Compute and draw every view of a run (its `checkpoint`, default the run's) into RUN/report/, then report.html
    (written last)."""
    ev = evaluate(load_run(run_dir, checkpoint), data_dir, cache_dir, log)
    out = ev.run.path / REPORT_DIR
    metrics = classification_metrics(ev.split.y, ev.probabilities, ev.output)
    views = [
        samples_view(ev, out),
        augmentation_view(ev, out),
        curves_view(ev.run, compare, out),
        activations_view(ev, out),
        gradcam_view(ev, out),
        confusion_view(ev, metrics, out),
        roc_view(ev, metrics, out),
        reliability_view(ev, out),
        tradeoff_view(ev, cache_dir, out, log),
        misclassified_view(ev, out),
    ]
    views = [view for view in views if view is not None]
    path = out / "report.html"
    write_text_atomic(path, render_html(ev.run, metrics, views))
    return path


def evaluate(run: Run, data_dir: Path | None, cache_dir: Path | None, log=logger.info) -> Evaluated:
    """Load the run's model and predict its validation split (in its own data folder unless data_dir is given)."""
    return Evaluated(run, *predict_split(run, EvalSplit(data_dir=data_dir), cache_dir, log))


def per_class(classes: int, most: int, total: int) -> int:
    """Images of each class in a grid: `most` for two classes (the reference report), fewer as classes grow, so the
    grid stays about `total` images (at least one of each class)."""
    return max(1, min(most, total // classes))


def spread(y: np.ndarray, cls: int, n: int) -> np.ndarray:
    """n indices of class cls, evenly spread over the split (deterministic)."""
    members = np.flatnonzero(np.asarray(y) == cls)
    return members[np.linspace(0, len(members) - 1, min(n, len(members))).round().astype(int)]


def samples_view(ev: Evaluated, out: Path) -> View:
    """Evenly spaced validation images of each class, labelled."""
    n = per_class(ev.classes, 8, 24)
    idx = np.concatenate([spread(ev.split.y, c, n) for c in range(ev.classes)])
    fig = plots.sample_grid(ev.split.x[idx], ev.split.y[idx], ev.run.class_names)
    return View(
        "samples",
        "Data set samples",
        f"{len(idx)} validation images, evenly spaced through each class folder, "
        f"at the model's input size ({ev.run.image_size} px).",
        plots.save_png(fig, out / "samples.png"),
    )


def augmentation_view(ev: Evaluated, out: Path) -> View | None:
    """One image through the model's own augmentation layers, many draws; None for a run trained without any (the
    report shows only the augmentation the run used)."""
    layers = explain.augmentation_layers(ev.predictor.model)
    if not layers:
        return None
    note = f"this model's own augmentation layers ({', '.join(layer.name for layer in layers)})"
    image = ev.split.x[spread(ev.split.y, 1, 1)[0]]
    fig = plots.augmentation_grid(image, explain.augment(layers, image, 11), f"Draws through {note}")
    caption = (
        f"One image and 11 random draws through {note}, called with training=True; at inference they are the identity."
    )
    return View("augmentation", "Augmentation preview", caption, plots.save_png(fig, out / "augmentation.png"))


def curves_view(run: Run, compare: Sequence[Path], out: Path) -> View:
    """Accuracy and loss per epoch, train vs validation, other runs overlaid."""
    return runs_curves_view([run, *(load_run(p) for p in compare if Path(p).resolve() != run.path.resolve())], out)


def activations_view(ev: Evaluated, out: Path) -> View:
    """Tiled feature maps of one validation image."""
    i = spread(ev.split.y, 1, 1)[0]
    fig = explain.activation_figure(ev.predictor.model, ev.split.x[i])
    caption = (
        f"What {Path(ev.split.files[i]).name} looks like inside the model: each layer's feature maps, "
        "each standardised on its own (yellow: stronger than the map's average, purple: weaker) and tiled, "
        "as the reference notebook draws them. Layers with many channels show their most active ones."
    )
    return View("activations", "Intermediate activations", caption, plots.save_png(fig, out / "activations.png"))


def gradcam_view(ev: Evaluated, out: Path) -> View:
    """Grad-CAM overlays of a few validation images of each class."""
    idx = np.concatenate([spread(ev.split.y, c, per_class(ev.classes, 4, 12)) for c in range(ev.classes)])
    fig = gradcam_figure(ev, idx, f"Grad-CAM at {ev.layer}")
    caption = (
        f"Where the model looked, for {len(idx)} validation images: Grad-CAM of the predicted class at layer "
        f"{ev.layer} (red = most important; each map scaled to its own maximum; an all-blue map means no "
        "location added evidence for the predicted class). Titles: file, true -> predicted label, "
        "p = probability of the predicted label."
    )
    return View("gradcam", "Grad-CAM", caption, plots.save_png(fig, out / "gradcam.png"))


def gradcam_figure(ev: Evaluated, idx: np.ndarray, title: str):
    """Grad-CAM pairs for images idx of the split; wrong answers in red, empty maps said so."""
    predicted = ev.predicted[idx]  # explained as labelled (at the run's threshold), not by the logit's sign
    heatmaps = explain.gradcam(ev.predictor.model, np.asarray(ev.split.x[idx]), ev.layer, predicted)
    titles = [ev.describe(i) + ("" if h.max() > 0 else "\n(no positive evidence)") for i, h in zip(idx, heatmaps)]
    wrong = predicted != np.asarray(ev.split.y)[idx]
    colours = [plots.WRONG_COLOUR if w else "black" for w in wrong]
    return plots.gradcam_grid(ev.split.x[idx], heatmaps, titles, colours, plots.PairLayout(title))


def confusion_view(ev: Evaluated, metrics: dict, out: Path) -> View:
    """The C x C confusion matrix, labels as the model is read."""
    fig = plots.plot_confusion_matrix(metrics["confusion_matrix"], ev.run.class_names)
    rule = f"at threshold {ev.output.threshold}" if ev.output.units == 1 else "as the most probable class"
    caption = f"Rows: true class; columns: predicted {rule}; row percentages."
    return View("confusion", "Confusion matrix", caption, plots.save_png(fig, out / "confusion.png"))


def roc_curves(y: np.ndarray, probabilities: np.ndarray, output: ClassOutput) -> dict[str, tuple]:
    """name -> (fpr, tpr, auc): class 1's curve ("model") for two classes; for more, each class against the rest,
    over the thresholds of its own probability (a class with no validation image, or only its images, has none)."""
    y, probabilities = np.asarray(y), np.asarray(probabilities)
    if output.units == 1:
        fpr, tpr, _ = roc_curve(y, probabilities[:, 1])
        return {"model": (fpr, tpr, auc(fpr, tpr))}
    curves = {}
    for k, name in enumerate(output.class_names):
        if 0 < np.sum(y == k) < len(y):
            fpr, tpr, _ = roc_curve(y == k, probabilities[:, k])
            curves[name] = (fpr, tpr, auc(fpr, tpr))
    return curves


def roc_view(ev: Evaluated, metrics: dict, out: Path) -> View:
    """The ROC curve and its area; one curve per class (one-vs-rest) for more than two classes."""
    curves = roc_curves(ev.split.y, ev.probabilities, ev.output)
    if ev.output.units == 1:
        fig = plots.plot_roc(curves, f"ROC curve (positive class: {ev.run.class_names[1]})")
        caption = f"True vs false positive rate over all thresholds; ROC AUC {metrics['roc_auc']:.4f}."
        return View("roc", "ROC curve", caption, plots.save_png(fig, out / "roc.png"))
    fig = plots.plot_roc(curves, "ROC curves, each class against the rest")
    missing = [n for n in ev.run.class_names if n not in curves]
    caption = (
        f"One curve per class: that class against all the others, over every threshold on its probability; "
        f"one-vs-rest macro ROC AUC {metrics['roc_auc']:.4f} (the mean of the per-class areas)."
        + (
            f" No curve for {', '.join(missing)}: the validation split needs images of it and of others."
            if missing
            else ""
        )
    )
    return View("roc", "ROC curves", caption, plots.save_png(fig, out / "roc.png"))


def reliability_view(ev: Evaluated, out: Path) -> View:
    """Reliability diagrams before and after calibration (as calibration.json recorded them on validation)."""
    record = read_calibration(ev.run.path)
    if "reliability_before" not in record:  # a run made before calibration: what it serves now, uncalibrated
        fig = plots.plot_reliability(reliability_bins(ev.split.y, ev.probabilities))
        caption = "Not calibrated: `horses-humans calibrate RUN` fits the calibration and draws the after panel."
    else:
        fig = plots.plot_reliability(record["reliability_before"], record["reliability_after"])
        caption = (
            f"Accuracy against confidence in {record['bins']} equal-width bins on {record['images']} validation "
            f"images; {describe_map(record)} (fitted on these images, so the after panel is optimistic); served "
            "probabilities are the calibrated ones."
        )
    return View("reliability", "Reliability diagram", caption, plots.save_png(fig, out / "reliability.png"))


def tradeoff_view(ev: Evaluated, cache_dir: Path | None, out: Path, log=logger.info) -> View:
    """The unsure trade-off curve on the labelled folder the run was last evaluated on (evaluate --data DIR), else on
    its validation split."""
    folder = evaluated_folder(ev.run)
    if folder is not None:
        split = load_measuring_folder(ev.run, folder, cache_dir, log)
        probabilities, source = ev.predictor.predict_proba(split.x), f"the labelled folder {folder}"
    else:
        split, probabilities, source = ev.split, ev.probabilities, "the validation split"
    names, reject = folder_names(ev.run), ev.run.config.reject_class
    tau = ev.predictor.unsure.min_confidence
    curve = tradeoff_curve(probabilities, split.y, ev.output, names.index(reject), tau, reject)
    fig = plots.plot_tradeoff({ev.run.path.name: curve}, f"unsure trade-off on {len(split)} images")
    caption = (
        f"On {source}: as the minimum confidence tau rises from 0, the share of the real-class images "
        f"answered right (unsure is not right) against the share of the {curve['unsure_of']} images answered "
        f"unsure; the dot is the run's calibrated tau {curve['chosen']:.3f}. `evaluate RUN --data DIR` on "
        f"real photos (with a {reject}/ folder where the run has that class) draws it there."
    )
    return View("tradeoff", "Unsure trade-off", caption, plots.save_png(fig, out / "tradeoff.png"))


def evaluated_folder(run: Run) -> Path | None:
    """The labelled folder of the run's latest `evaluate --data DIR` that is still there, or None."""
    records = sorted((run.path / EVALUATIONS_DIR).glob("data-*.json"), key=lambda p: p.stat().st_mtime)
    for record in reversed(records):
        folder = Path(read_evaluation(record).get("folder") or "")
        if folder.is_dir():
            return folder
    return None


def misclassified_view(ev: Evaluated, out: Path) -> View:
    """The wrongly labelled validation images, highest loss first, with Grad-CAM."""
    wrong = explain.misclassified(ev.split.y, ev.probabilities, ev.output)
    (out / "misclassified.png").unlink(missing_ok=True)  # from an earlier report of a worse model
    if not len(wrong):
        return View("misclassified", "Misclassified images", "No validation image is misclassified.")
    shown = wrong[:GALLERY_SIZE]
    fig = gradcam_figure(ev, shown, f"Misclassified, worst first (Grad-CAM at {ev.layer})")
    caption = (
        f"{len(wrong)} of {len(ev.split)} validation images are misclassified; the {len(shown)} with the highest "
        "loss (-log of the true class's probability) are shown, each with the probability of its (wrong) label "
        "and the Grad-CAM of that predicted class."
    )
    return View("misclassified", "Misclassified images", caption, plots.save_png(fig, out / "misclassified.png"))


# ---------------------------------------------------------------- HTML


def summary_rows(run: Run, metrics: dict) -> list[tuple[str, str]]:
    """(name, value) rows for the report's summary table: class 1's precision/recall/F1 for two classes, the macro
    averages and the one-vs-rest AUC for more."""
    cfg, names = run.config, run.class_names
    rows = [
        ("run", run.path.name),
        ("recipe", f"{cfg.recipe} ({get_recipe(cfg.recipe).description})"),
        ("input size", f"{run.image_size} px"),
        ("epochs run", str(len(run.history))),
        checkpoint_row(run),
        calibration_row(run, metrics),
    ]
    if len(names) == 2:
        rows += [(k, f"{metrics[k]:.4f}") for k in ("accuracy", "precision", "recall", "f1", "roc_auc")]
        return rows + [("validation images", str(metrics["images"])), ("positive class", names[1])]
    rows += [("accuracy", f"{metrics['accuracy']:.4f}")]
    rows += [(f"macro {k}", f"{metrics['macro'][k]:.4f}") for k in ("precision", "recall", "f1")]
    rows += [
        ("weighted f1", f"{metrics['weighted']['f1']:.4f}"),
        ("roc_auc (one-vs-rest, macro)", f"{metrics['roc_auc']:.4f}"),
    ]
    return rows + [("validation images", str(metrics["images"])), ("classes", f"{len(names)}: {', '.join(names)}")]


def checkpoint_row(run: Run) -> tuple[str, str]:
    """Which checkpoint the report scores, and why its validation numbers are optimistic."""
    record = run.checkpoint_record()
    return ("checkpoint", f"{run.checkpoint} ({record['file']}, epoch {record.get('epoch') or '?'}); {OPTIMISM_NOTE}")


def calibration_row(run: Run, metrics: dict) -> tuple[str, str]:
    """ECE of the served probabilities, and before calibration when the run has been calibrated."""
    record, served = read_calibration(run.path), f"{metrics['ece']:.4f}"
    if "ece_before" not in record:
        return f"ECE ({metrics['ece_bins']} bins, not calibrated)", served
    return (
        f"ECE ({metrics['ece_bins']} bins), before -> after {describe_map(record)}",
        f"{record['ece_before']:.4f} -> {served}",
    )


def class_rows(metrics: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the per-class table: precision, recall, F1, support, then the macro and weighted averages."""
    cells = lambda s: [f"{s[k]:.4f}" for k in ("precision", "recall", "f1")]  # noqa: E731
    rows = [[name, *cells(s), str(s["support"])] for name, s in metrics["per_class"].items()]
    rows += [
        [f"{average} average", *cells(metrics[average]), str(metrics["images"])] for average in ("macro", "weighted")
    ]
    return ["class", "precision", "recall", "f1", "images"], rows


def render_html(run: Run, metrics: dict, views: list[View]) -> str:
    """The whole report as one HTML page with every image inline."""
    esc = html.escape
    table = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in summary_rows(run, metrics))
    nav = "".join(f'<a href="#{v.key}">{esc(v.title)}</a>' for v in views)
    body = (
        f"<nav>{nav}</nav>\n<h2>Summary (validation split)</h2><table>{table}</table>\n"
        f"<h2>Per class</h2>{table_html(*class_rows(metrics))}\n{sections_html(views)}"
    )
    return page_html(run.path.name, f"horses-humans report: {run.path.name}", body)
