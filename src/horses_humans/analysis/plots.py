"""Figures from plain arrays and dicts (no model calls): sample and augmentation grids, training curves,
activation tiles, Grad-CAM overlays, confusion matrix (C x C), ROC curves (one, or one per class).

Figures are built with matplotlib's object API on the Agg canvas (no pyplot, no global backend, no
display needed), so they can be drawn from any process or thread.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..core.atomic import atomic_path

TITLE_SIZE = 9
CLASS_COLOURS = ("#8c510a", "#01665e")  # class 0 (horses) brown, class 1 (humans) teal: both readable on white
RUN_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")
WRONG_COLOUR = "#b2182b"


def new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas (inches)."""
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: Path) -> Path:
    """Write a figure as PNG atomically; returns the path."""
    with atomic_path(Path(path), suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


# ---------------------------------------------------------------- image grids


def image_grid(
    images, titles: list[str], cols: int = 8, title: str = "", colours: list[str] | None = None, cell: float = 1.8
) -> Figure:
    """Images (N, S, S, 3) uint8 in a grid, each with a title wrapped to its cell (at least 6 inches wide)."""
    n = len(images)
    rows = max(1, -(-n // cols))
    cols = min(cols, max(n, 1))
    titles = [wrap(t, int(14 * cell)) for t in titles]  # ~14 characters per inch at TITLE_SIZE
    width = max(cell * cols, 6.0)
    fig = new_figure(width, (cell + 0.2 * max([t.count("\n") + 1 for t in titles] or [1])) * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(images[i])
            ax.set_title(titles[i], fontsize=TITLE_SIZE, color=(colours or ["black"] * n)[i])
    if title:
        fig.suptitle(wrap(title, int(10 * width)), fontsize=TITLE_SIZE + 2)
    return fig


def wrap(text: str, width: int) -> str:
    """Wrap each line of text to width characters."""
    return "\n".join(textwrap.fill(line, max(width, 12)) for line in text.split("\n"))


def class_colour(index: int, classes: int) -> str:
    """A class's title colour: brown and teal for two classes (as always), the run palette for more."""
    palette = CLASS_COLOURS if classes == 2 else RUN_COLOURS
    return palette[index % len(palette)]


def sample_grid(images, labels, class_names: list[str], cols: int = 8) -> Figure:
    """Data set samples, each titled and coloured by its class."""
    titles = [class_names[int(y)] for y in labels]
    colours = [class_colour(int(y), len(class_names)) for y in labels]
    return image_grid(images, titles, cols, "Validation images and their labels", colours)


def augmentation_grid(original: np.ndarray, draws: np.ndarray, note: str, cols: int = 6) -> Figure:
    """The original image, then random draws through the augmentation layers."""
    images = [original, *draws]
    titles = ["original"] + [f"draw {i + 1}" for i in range(len(draws))]
    return image_grid(images, titles, cols, note, cell=2.0)


# ---------------------------------------------------------------- training curves


def training_curves(histories: dict[str, list[dict]]) -> Figure:
    """Accuracy and loss per epoch, train (solid) vs validation (dashed), one colour per run."""
    fig = new_figure(11, 4.2)
    axes = fig.subplots(1, 2)
    for (name, history), colour in zip(histories.items(), RUN_COLOURS * 4):
        epochs = [row["epoch"] for row in history]
        for ax, metric in zip(axes, ("accuracy", "loss")):
            ax.plot(
                epochs, [row.get(metric, np.nan) for row in history], "-o", color=colour, ms=3, label=f"{name} train"
            )
            ax.plot(
                epochs,
                [row.get(f"val_{metric}", np.nan) for row in history],
                "--s",
                color=colour,
                ms=3,
                label=f"{name} validation",
            )
    for ax, metric in zip(axes, ("accuracy", "loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric}: train (solid) vs validation (dashed)", fontsize=TITLE_SIZE + 1)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].legend(fontsize=TITLE_SIZE - 1, loc="lower right")
    return fig


# ---------------------------------------------------------------- activations


def normalise_map(feature_map: np.ndarray) -> np.ndarray:
    """One (h, w) feature map as the reference notebook shows it: standardised, x64 + 128, clipped to 0-255."""
    x = np.asarray(feature_map, np.float64) - feature_map.mean()
    std = x.std()
    return np.clip(x / std * 64 + 128 if std > 0 else x + 128, 0, 255)


def tile_maps(activation: np.ndarray, max_maps: int = 64) -> tuple[np.ndarray, int]:
    """(h, w, c) -> a near-square mosaic of the normalised maps (NaN gaps between them), and the number shown.
    Beyond max_maps channels, the most active ones (by mean) are shown."""
    h, w, c = activation.shape
    keep = np.sort(np.argsort(-activation.mean(axis=(0, 1)), kind="stable")[:max_maps])
    cols = int(np.ceil(np.sqrt(len(keep) * h / w)))
    rows = -(-len(keep) // cols)
    mosaic = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for i, channel in enumerate(keep):
        r, q = divmod(i, cols)
        mosaic[r * (h + 1) : r * (h + 1) + h, q * (w + 1) : q * (w + 1) + w] = normalise_map(activation[..., channel])
    return mosaic, len(keep)


def activation_grids(acts: dict[str, np.ndarray], image: np.ndarray | None = None, max_maps: int = 64) -> Figure:
    """One tiled panel per layer (viridis, as the reference), the input image first when given."""
    panels = [(name, *tile_maps(a, max_maps), a.shape) for name, a in acts.items()]
    cols = 3
    rows = -(-(len(panels) + (image is not None)) // cols)
    fig = new_figure(15, 5.2 * rows)
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    if image is not None:
        axes[0].imshow(image)
        axes[0].set_title("input image", fontsize=TITLE_SIZE + 1)
        axes = axes[1:]
    cmap = colormaps["viridis"].with_extremes(bad="white")
    for ax, (name, mosaic, shown, shape) in zip(axes, panels):
        ax.imshow(mosaic, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
        more = f", {shown} most active shown" if shown < shape[-1] else ""
        ax.set_title(f"{name}  {shape[0]}x{shape[1]}x{shape[2]}{more}", fontsize=TITLE_SIZE + 1)
    for ax in fig.axes:
        ax.set_axis_off()
    return fig


# ---------------------------------------------------------------- Grad-CAM


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Blend a [0, 1] heatmap (jet colours: red = most important) over a uint8 image of the same size."""
    jet = colormaps["jet"](np.clip(heatmap, 0, 1))[..., :3] * 255
    return np.clip((1 - alpha) * np.asarray(image, np.float64) + alpha * jet, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class PairLayout:
    """How a figure of image pairs is laid out: its heading, pairs per row, and each cell's side (inches)."""

    title: str = ""
    pairs_per_row: int = 4
    cell: float = 2.0


def gradcam_grid(
    images, heatmaps, titles: list[str], colours: list[str] | None = None, layout: PairLayout = PairLayout()
) -> Figure:
    """Each image beside its Grad-CAM overlay; the pair's title (in its colour, default black) goes over the
    overlay."""
    pictures, names, tints = [], [], []
    for image, heatmap, text, colour in zip(images, heatmaps, titles, colours or ["black"] * len(titles)):
        pictures += [image, overlay(image, heatmap)]
        names += ["", text]
        tints += ["black", colour]
    return image_grid(pictures, names, 2 * layout.pairs_per_row, layout.title, tints, cell=layout.cell)


# ---------------------------------------------------------------- metrics


def plot_confusion_matrix(cm, class_names: list[str]) -> Figure:
    """Counts and row percentages of a C x C matrix; rows are true classes, columns predicted. The figure grows
    with C (about 0.9 inch a cell) and the numbers shrink, so 10 classes stay readable."""
    cm = np.asarray(cm)
    n = len(class_names)
    side = max(4.6, 0.9 * n + 1.8)
    fig = new_figure(side, side - 0.6)
    ax = fig.subplots()
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(int(cm.sum(axis=1).max()), 1))
    rows = np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 12 if n <= 3 else 10 if n <= 6 else 8
    for (i, j), count in np.ndenumerate(cm):
        dark = count > 0.6 * rows.max()
        ax.text(
            j,
            i,
            f"{count}\n{100 * count / rows[i, 0]:.1f}%",
            ha="center",
            va="center",
            fontsize=size,
            color="white" if dark else "black",
        )
    ax.set_xticks(range(n), class_names, rotation=30 if n > 3 else 0, ha="right" if n > 3 else "center")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix ({int(cm.sum())} validation images)", fontsize=TITLE_SIZE + 1)
    return fig


def plot_roc(curves: dict[str, tuple], title: str) -> Figure:
    """ROC curves with their areas, and the chance diagonal: curves maps a legend name to (fpr, tpr, auc), the
    points from sklearn.metrics.roc_curve: one curve ("model") for two classes, one per class (against the rest)
    for more."""
    fig = new_figure(4.6 if len(curves) == 1 else 5.4, 4.4 if len(curves) == 1 else 5.2)
    ax = fig.subplots()
    for (name, (fpr, tpr, auc)), colour in zip(curves.items(), RUN_COLOURS * 4):
        ax.plot(fpr, tpr, color=colour, lw=2 if len(curves) == 1 else 1.5, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=TITLE_SIZE + 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=TITLE_SIZE)
    return fig


def plot_reliability(bins_before: dict, bins_after: dict | None = None) -> Figure:
    """Reliability diagrams, before and (if given) after calibration: per equal-width confidence bin, the accuracy
    (bars) against the mean confidence (the diagonal is perfect calibration), with each panel's ECE. A bins dict is
    calibration.reliability_bins' (edges, confidence, accuracy, count; empty bins NaN or None)."""
    panels = {"before calibration": bins_before, **({"after calibration": bins_after} if bins_after else {})}
    fig = new_figure(4.2 * len(panels), 4.3)
    for ax, (name, bins) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels.items()):
        edges, count = np.asarray(bins["edges"], float), np.asarray(bins["count"], float)
        conf, acc = (np.array([np.nan if v is None else v for v in bins[k]], float) for k in ("confidence", "accuracy"))
        filled = count > 0
        ece = float(np.sum(np.abs(acc - conf)[filled] * count[filled]) / max(count.sum(), 1))
        ax.bar(
            edges[:-1][filled],
            acc[filled],
            width=np.diff(edges)[filled],
            align="edge",
            color=RUN_COLOURS[0],
            edgecolor="white",
            label="accuracy",
        )
        ax.plot(conf[filled], acc[filled], "o", color=WRONG_COLOUR, ms=4, label="bin: (mean confidence, accuracy)")
        ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("confidence (probability of the answer)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{name}: ECE {ece:.4f} ({int(count.sum())} images)", fontsize=TITLE_SIZE + 1)
        ax.legend(loc="upper left", fontsize=TITLE_SIZE - 1)
    return fig


def plot_tradeoff(curves: dict[str, dict], title: str) -> Figure:
    """The unsure trade-off: per model (curves maps a legend name to unsure.tradeoff_curve's dict, with "chosen": its
    calibrated tau, if any), the share of real-class images answered right against the share of `neither` (or of
    real-class) images answered unsure as tau rises from 0; a dot marks the chosen tau."""
    fig = new_figure(5.6, 4.4 + 0.25 * len(curves))
    ax = fig.subplots()
    for (name, curve), colour in zip(curves.items(), RUN_COLOURS * 4):
        unsure, right = 100 * np.asarray(curve["unsure"], float), 100 * np.asarray(curve["right"], float)
        chosen = curve.get("chosen")
        label = f"{name}" + (f" (dot: calibrated tau {chosen:.3f})" if chosen is not None else "")
        ax.step(unsure, right, where="post", color=colour, lw=1.8, label=label)
        if chosen is not None:
            at = int(np.searchsorted(np.asarray(curve["tau"]), chosen))  # tradeoff_curve includes it
            ax.plot(unsure[at], right[at], "o", color=colour, ms=7, mec="black")
    ax.set_xlim(-2, 102)
    ax.set_ylim(-2, 102)
    what = {curve["unsure_of"] for curve in curves.values()}
    ax.set_xlabel(f"{' / '.join(sorted(what))} images answered unsure (%)")
    ax.set_ylabel("real classes answered right (%; unsure is not right)")
    ax.set_title(title, fontsize=TITLE_SIZE + 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=TITLE_SIZE - 1, frameon=False)
    return fig
