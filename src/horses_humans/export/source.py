"""What every export is made from and checked against: a run's model as it runs at inference (augmentation
stripped), its validation images and the Keras model's own class probabilities on them, plus the intermediates
(SavedModel, float ONNX, int8 calibration images) that several formats start from, each made once."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from ..data.pixels import Split
from ..models.outputs import ClassOutput
from ..runs.layout import EXPORT_DIR, EXPORTS_FILE
from ..runs.record import load_run_split
from ..runs.store import Run
from . import served

logger = logging.getLogger(__name__)  # progress lines; the CLI sends them to stderr

REPRESENTATIVE_IMAGES = 128  # training images that calibrate int8 activation ranges


@dataclass
class ExportSource:
    """What every export is made from and checked against: the run, its Keras model and its validation answers."""

    run: Run
    model: object  # the run's Keras model, as saved
    validation: Split
    reference: np.ndarray  # the Keras model's own class probabilities (N, C) on validation.x (uncalibrated)
    data_dir: Path | None  # None: the run's own data folder
    cache_dir: Path | None = None
    log: Callable = logger.info
    _scratch: object = field(default=None, repr=False)  # TemporaryDirectory for `saved_model` and `onnx`

    @cached_property
    def inference_model(self):
        """The model as it runs at inference, called once (exporters need a built, called model)."""
        model = strip_augmentation(self.model)
        model(np.zeros((1, self.run.image_size, self.run.image_size, 3), np.float32))
        return model

    @property
    def output(self) -> ClassOutput:
        """How the run's model output reads: its classes, sigmoid or softmax, threshold; uncalibrated (T = 1), so
        parity compares the model's own probabilities: calibration is applied after any model, the same on all."""
        return self.run.raw_output

    @property
    def export_root(self) -> Path:
        """RUN/export/: every published export, and exports.md."""
        return self.run.path / EXPORT_DIR

    @property
    def exports_table_path(self) -> Path:
        """RUN/export/exports.md: the trade-off table of every export."""
        return self.export_root / EXPORTS_FILE

    def accuracy(self, probabilities: np.ndarray, pick=slice(None)) -> float:
        """Fraction of validation images (those `pick` selects) whose label (from probabilities (N, C), as the model
        is read) is right."""
        return float(np.mean(self.output.predicted(probabilities) == np.asarray(self.validation.y)[pick]))

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        """An export's raw outputs (N, K) -> class probabilities (N, C); a width other than the model's is an error."""
        raw = np.asarray(raw, np.float32)
        if raw.ndim != 2 or raw.shape[1] != self.output.units:
            raise ValueError(
                f"the export outputs {raw.shape[1:]} per image, the model {self.output.units} "
                f"({self.output.kind}); the conversion lost the output layer's shape"
            )
        return self.output.probabilities(raw)

    def served_probabilities(self, answered: np.ndarray) -> np.ndarray:
        """A served export's outputs, already class probabilities (N, C); any other width is an error."""
        answered = np.asarray(answered, np.float32)
        if answered.ndim != 2 or answered.shape[1] != len(self.run.class_names):
            raise ValueError(
                f"the export outputs {answered.shape[1:]} per image, not one probability for each of the "
                f"{len(self.run.class_names)} classes; the served model lost its output's shape"
            )
        return answered

    def scratch(self, name: str) -> Path:
        """A path in this source's scratch folder (removed with the object): intermediate files made once."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="horses-humans-export-")
        return Path(self._scratch.name) / name

    @cached_property
    def saved_model(self) -> Path:
        """The inference model as a SavedModel, written once: the savedmodel export copies it and every TFLite
        conversion starts from it."""
        path = self.scratch("saved_model")
        save_inference_model(self.inference_model, self.run.image_size, path)
        return path

    @cached_property
    def onnx(self) -> Path:
        """The inference model as float ONNX (Keras' exporter, i.e. tf2onnx), written once: both web builds start from
        it.
        """
        path = self.scratch("model.onnx")
        self.inference_model.export(str(path), format="onnx", verbose=False)
        return path

    @cached_property
    def served_model(self):
        """The inference model wrapped to answer as `predict` does (served.py): uint8 in, served probabilities out."""
        run = self.run
        return served.served_model(self.inference_model, run.output, run.image_size, run.config.tta)

    @cached_property
    def served_saved_model(self) -> Path:
        """The served model as a SavedModel (uint8 input), written once: the tflite_labels conversions start from it."""
        path = self.scratch("served_saved_model")
        served.save_served_model(self.served_model, self.run.image_size, path)
        return path

    @cached_property
    def served_reference(self) -> np.ndarray:
        """What `predict` answers on validation.x with this model (N, C): calibrated, flips averaged when the run has
        them; what the served formats are checked against."""
        from ..inference.predictor import Predictor

        predictor = Predictor(self.model, self.run.class_names, self.run.image_size, output=self.run.output)
        predictor.tta = self.run.config.tta
        return predictor.predict_proba(np.asarray(self.validation.x))

    @cached_property
    def representative(self) -> np.ndarray:
        """A fixed random sample of training images (seed 0) that calibrates int8 quantization."""
        split = load_run_split(self.run, "train", self.data_dir, self.cache_dir, self.log)
        pick = np.random.default_rng(0).permutation(len(split))[:REPRESENTATIVE_IMAGES]
        return np.asarray(split.x[np.sort(pick)], np.float32)


def strip_augmentation(model):
    """A copy of the model without augmentation layers, which are identity at inference but trace random ops
    (StatelessRandomUniform, ImageProjectiveTransform) that TFLite and ONNX cannot take; other layers are shared."""
    import keras

    augmentation = (
        keras.layers.RandomFlip,
        keras.layers.RandomRotation,
        keras.layers.RandomZoom,
        keras.layers.RandomTranslation,
        keras.layers.RandomContrast,
        keras.layers.RandomBrightness,
    )
    if not any(isinstance(layer, augmentation) for layer in model.layers):
        return model
    return keras.models.clone_model(
        model,
        clone_function=lambda layer: (
            keras.layers.Identity(name=layer.name) if isinstance(layer, augmentation) else layer
        ),
    )


def save_inference_model(model, image_size: int, target: Path) -> None:
    """Write a SavedModel with keras.export.ExportArchive, without `track(model)`: `model.export()` tracks the
    model and so stores every weight twice, once per wrapper object (keras-team/keras#23553, open), doubling the
    file. The traced endpoint captures the variables itself, which is all a SavedModel needs."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.add_endpoint(
        "serve",
        lambda pixels: model(pixels, training=False),
        input_signature=[tf.TensorSpec((None, image_size, image_size, 3), tf.float32, name="pixels")],
    )
    archive.write_out(str(target), verbose=False)
