"""Why does the augmented CNN validate worse than the baseline? Probe finished runs on the validation set.

For each run: accuracy on the plain validation images; the share predicted 'humans' (a model that leans to
one class shows it here); accuracy when the validation images go through the model's own augmentation
layers too (training=True, mean probability over 8 draws), i.e. the distribution the model was trained on;
and accuracy on plain images that were only resampled (rotated by 0 degrees through the same bilinear
interpolation path), which separates "blur from interpolation" from "geometry". Labels are read at each run's
own threshold (labels.json). Progress goes to stderr, the Markdown table to stdout at the end.

    python scripts/augmentation_study.py runs/results/augmented-* runs/results/baseline-*
"""

import sys

from horses_humans.core import backend  # noqa: E402

backend.configure()  # before keras is imported

import keras  # noqa: E402
import numpy as np  # noqa: E402

from horses_humans.config import resolve_data_dir  # noqa: E402
from horses_humans.core.batching import batched  # noqa: E402
from horses_humans.core.tables import markdown_table  # noqa: E402
from horses_humans.data.layouts import VALIDATION  # noqa: E402
from horses_humans.data.pixels import load_split  # noqa: E402
from horses_humans.runs.store import Run, load_run  # noqa: E402

HEADER = [
    "run",
    "augmentation",
    "threshold",
    "final val acc (training log)",
    "val acc (float32 model)",
    "predicted 'humans'",
    "val acc, images augmented as in training (8 draws)",
    "val acc, images only resampled",
]


def probabilities(model, x, training: bool, draws: int = 1) -> np.ndarray:
    """Mean probability of class 1 over `draws` forward passes."""
    out = np.zeros(len(x))
    for _ in range(draws):
        out += batched(lambda batch: model(batch, training=training), x, 64)
    return out / draws


def resampled(x: np.ndarray) -> np.ndarray:
    """Images passed through a tiny rotation with bilinear interpolation: the blur augmentation adds, no real geometry
    change.
    """
    layer = keras.layers.RandomRotation((0.005, 0.005), interpolation="bilinear", seed=0)
    return batched(lambda batch: layer(batch.astype("float32"), training=True), x, 64, x.shape[1:])


def study_row(run: Run, x: np.ndarray, y: np.ndarray) -> list[str]:
    """One run's cells: accuracy on plain, augmented and resampled images, at the run's threshold."""
    threshold = run.labels.get("threshold", 0.5)
    model = run.load_model("last")  # the final epoch, which metrics["val_accuracy"] describes
    plain = probabilities(model, x, training=False)
    aug = probabilities(model, x, training=True, draws=8) if run.config.recipe == "augmented" else None
    blur = probabilities(model, resampled(x), training=False)
    acc = lambda p: f"{100 * np.mean((p >= threshold) == y):.1f}"  # noqa: E731
    preset = run.config.augmentation if run.config.recipe == "augmented" else "none"
    return [
        run.path.name,
        preset,
        f"{threshold:g}",
        f"{100 * run.metrics['val_accuracy']:.1f}",
        acc(plain),
        f"{100 * np.mean(plain >= threshold):.0f}%",
        acc(aug) if aug is not None else "-",
        acc(blur),
    ]


def main(paths: list[str]) -> None:
    keras.utils.set_random_seed(0)
    data_dir = resolve_data_dir(None)
    rows = []
    for path in paths:
        run = load_run(path)
        split = load_split(data_dir, VALIDATION, run.image_size, warn=lambda s: None)
        rows.append(study_row(run, np.asarray(split.x).astype("float32"), split.y))
        print(f"done: {run.path.name}", file=sys.stderr, flush=True)
    print(markdown_table(HEADER, rows))


if __name__ == "__main__":
    main(sys.argv[1:])
