"""The served model: a run's inference model wrapped so that it answers as `predict` does, with nothing around it.

In: uint8 RGB pixels (N, S, S, 3), already resized (bilinear; squashed, cropped or padded as the run's resize says) to
the run's size. Out: class probabilities (N, C) in class_names order, calibrated (softmax(log p * scale / T + bias),
the run's calibration) and, for a run trained with
--tta, averaged with the mirrored image's, in that order, as predictor.Predictor.predict_proba does.

It is built in Keras, before conversion, rather than by editing the converted ONNX graph: one wrapper feeds both the
ONNX and the TFLite exports (tf2onnx and the TFLite converter each turn it into their own ops), and its answers can be
checked against the Predictor's in Keras itself. Only names and metadata are set on the ONNX file afterwards.
"""

from __future__ import annotations

from pathlib import Path

from ..models.outputs import PROBABILITY_FLOOR, SIGMOID, ClassOutput
from ..runs.store import Run

INPUT_NAME = "image"  # the served model's input, in every file made from it
OUTPUT_NAME = "probabilities"


def class_probabilities(raw, output: ClassOutput):
    """The model's raw outputs (N, K) -> calibrated class probabilities (N, C), in Keras ops: outputs.ClassOutput's
    `probabilities` (two columns for one sigmoid unit, then softmax(log p * scale / T + bias)) for symbolic tensors."""
    import keras
    import numpy as np

    ops = keras.ops
    probabilities = ops.concatenate([1.0 - raw[:, :1], raw[:, :1]], axis=1) if output.kind == SIGMOID else raw
    if not output.is_calibrated:  # as outputs.calibrated: an uncalibrated run's probabilities are the model's own
        return probabilities
    log_p = ops.log(ops.clip(probabilities, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR))
    weight = np.ones(len(output.class_names)) if output.scale is None else np.asarray(output.scale)
    logits = log_p * (weight / output.temperature).astype(np.float32)[None]  # (1, C) constants in the graph
    if output.bias is not None:
        logits = logits + np.asarray(output.bias, np.float32)[None]
    return ops.softmax(logits, axis=1)


def served_model(model, output: ClassOutput, image_size: int, tta: bool):
    """A Keras model around `model` (raw 0-255 float pixels -> raw outputs): uint8 `image` in, calibrated
    (flip-averaged when tta) class probabilities out."""
    import keras

    image = keras.Input((image_size, image_size, 3), dtype="uint8", name=INPUT_NAME)
    pixels = keras.ops.cast(image, "float32")
    probabilities = class_probabilities(model(pixels), output)
    if tta:  # each side calibrated first, then averaged: Predictor.predict_proba's order
        mirrored = class_probabilities(model(keras.ops.flip(pixels, axis=2)), output)
        probabilities = (probabilities + mirrored) / 2
    return keras.Model(image, probabilities, name="served")


def save_served_model(model, image_size: int, target: Path, named: bool = False) -> None:
    """A SavedModel of the served model whose `serve` endpoint takes uint8 `image` (N, S, S, 3): what the TFLite
    and TF.js converters start from (the variables are captured by the traced endpoint, as
    pipeline.save_inference_model). named: the endpoint answers {"probabilities": ...}, so its signature names it."""
    import keras
    import tensorflow as tf

    def serve(image):
        probabilities = model(image, training=False)
        return {OUTPUT_NAME: probabilities} if named else probabilities

    archive = keras.export.ExportArchive()
    archive.add_endpoint(
        "serve",
        serve,
        input_signature=[tf.TensorSpec((None, image_size, image_size, 3), tf.uint8, name=INPUT_NAME)],
    )
    archive.write_out(str(target), verbose=False)


def served_labels(run: Run) -> dict:
    """labels.json entries of a served export: uint8 in, and probabilities that need no calibration or flips after."""
    size, output = run.image_size, run.output
    return {
        "input": {
            "name": INPUT_NAME,
            "dtype": "uint8",
            "shape": [None, size, size, 3],
            "layout": "NHWC",
            "note": f"raw 0-255 RGB pixels, resized ({run.resize}, bilinear) to the size; scaling is inside the model",
        },
        "output": (
            f"{OUTPUT_NAME} (N, {len(output.class_names)}), one per class in class_names order, calibrated"
            + (" and averaged with the mirrored image's" if run.config.tta else "")
            + " inside the model: read them as they are"
        ),
        "output_shape": [None, len(output.class_names)],
        "temperature": 1.0,  # applied inside: a reader must not apply it again
        "temperature_applied": output.temperature,
        "calibration_applied": {"method": output.calibration_method, **output.calibration_record()},
        "flip_average_applied": run.config.tta,
    }
