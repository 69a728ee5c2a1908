"""Finished runs of a tiny hand-set Keras model for any number of classes, written without training, so the
server, exports and pages are tested on 2, 3 and 5 classes without depending on the recipes.

The model is Input -> Rescaling -> Conv2D 1x1 (identity, named conv3: the baseline's Grad-CAM layer) ->
GlobalAveragePooling2D -> Dense: a nearest-centroid classifier of the mean colour, whose centroids are the colour
casts of tests/synthetic.py, so it labels those images right. Two classes keep one sigmoid unit (P(class 1)),
more a softmax, as outputs.ClassOutput.for_classes says.
"""

from pathlib import Path

import numpy as np

from horses_humans.config import TrainConfig
from horses_humans.models.outputs import ClassOutput
from horses_humans.models.recipes import resolve
from horses_humans.runs.store import (
    CONFIG_FILE,
    ENVIRONMENT_FILE,
    HISTORY_FILE,
    LABELS_FILE,
    METRICS_FILE,
    labels_record,
    new_run_dir,
    save_json,
    save_model,
)

from .fake_runs import history_of
from .synthetic import CASTS, class_names, make_own_dataset

SHARPNESS = 5.0  # logit scale: confident on the synthetic images, yet not saturated (float16 parity stays meaningful)


def centroids(n_classes: int) -> np.ndarray:
    """(C, 3) mean colour in [0, 1] of each synthetic class (noise 0-89 plus the class's cast)."""
    return (44.5 + np.array(CASTS[:n_classes], np.float64)) / 255


def centroid_weights(n_classes: int, sharpness: float = SHARPNESS) -> tuple[np.ndarray, np.ndarray]:
    """Dense kernel (3, units) and bias (units,): logit_i = k (2 c_i.x - |c_i|^2), the nearest centroid wins (k:
    sharpness). Two classes: one unit, logit_1 - logit_0, so the sigmoid is the softmax of the two."""
    c = centroids(n_classes)
    kernel, bias = sharpness * 2 * c.T, -sharpness * (c**2).sum(axis=1)
    if n_classes == 2:
        kernel, bias = kernel[:, 1:] - kernel[:, :1], bias[1:] - bias[:1]
    return kernel.astype(np.float32), bias.astype(np.float32)


def centroid_model(n_classes: int, image_size: int = 32, lopsided: bool = False, sharpness: float = SHARPNESS):
    """The tiny classifier, its output layer as ClassOutput.for_classes wants it. lopsided: the mean colour is
    weighted from 0.2 at the left edge to 1.8 at the right (Flatten + Dense), so a mirrored image answers otherwise
    (what test-time flips need to be seen); sharpness: the logit scale (low: right but underconfident)."""
    import keras

    output = ClassOutput.for_classes(class_names(n_classes))
    pooling = keras.layers.Flatten() if lopsided else keras.layers.GlobalAveragePooling2D()
    model = keras.Sequential(
        [
            keras.Input((image_size, image_size, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(3, 1, name="conv3"),
            pooling,
            keras.layers.Dense(output.units, activation=output.kind, name="output"),
        ],
        name=f"centroids{n_classes}",
    )
    model.get_layer("conv3").set_weights([np.eye(3, dtype=np.float32)[None, None], np.zeros(3, np.float32)])
    kernel, bias = centroid_weights(n_classes, sharpness)
    if lopsided:  # (S, S, 3, units) flattened: column j of the image weighs ramp[j] / S^2
        ramp = np.linspace(0.2, 1.8, image_size, dtype=np.float32)[None, :, None, None]
        weighted = np.broadcast_to(ramp * kernel[None, None], (image_size, image_size, 3, output.units))
        kernel = (weighted / image_size**2).reshape(-1, output.units)
    model.get_layer("output").set_weights([kernel, bias])
    return model


def write_centroid_run(
    runs_dir: Path,
    n_classes: int,
    image_size: int = 32,
    lopsided: bool = False,
    tta: bool = False,
    names: list[str] | None = None,
    sharpness: float = SHARPNESS,
    **config_options,
) -> Path:
    """A finished run directory of the tiny model (a baseline config, so Grad-CAM's layer is conv3); tta: the run
    answers with test-time flips; names: its classes (default synthetic.class_names, class i has cast i); sharpness:
    centroid_model's; config_options: more TrainConfig fields (e.g. reject_class, resize: default squash)."""
    config = resolve(TrainConfig(recipe="baseline", image_size=image_size, epochs=1, tta=tta, **config_options))
    path = new_run_dir(Path(runs_dir), config)
    save_model(path, centroid_model(n_classes, image_size, lopsided, sharpness))
    save_json(path, CONFIG_FILE, config.to_dict())
    save_json(path, LABELS_FILE, labels_record(names or class_names(n_classes), image_size, config.resize))
    save_json(path, ENVIRONMENT_FILE, {"precision": "float32", "platform": "test-platform"})
    save_json(path, METRICS_FILE, {"train_accuracy": 1.0, "val_accuracy": 1.0, "best_val_accuracy": 1.0})
    save_json(path, HISTORY_FILE, history_of(1.0, 1.0, epochs=1))
    return path


def centroid_setup(root: Path, n_classes: int, **run_options) -> tuple[Path, Path]:
    """(run dir, data dir): the tiny run (write_centroid_run's options) and an official-layout synthetic set of its
    classes under root."""
    data = make_own_dataset(Path(root) / "data", n_classes, "official", per_class=6)
    return write_centroid_run(Path(root) / "runs", n_classes, **run_options), data
