"""Exported models run by the runtime each format is meant for, behind one call: predict(pixels) -> probabilities.

Every runtime takes raw 0-255 RGB pixels (N, S, S, 3), as the Keras model does, and returns the probability of
class 1 per image. The parity check and the latency measurement of `export` go through these.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .batching import batched

BATCH = 32


class Runtime:
    """One loaded model; subclasses implement predict_batch for a float32 batch."""

    name = "?"

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities of class 1 for (N, S, S, 3) pixels (uint8 or float), batch by batch."""
        return batched(self.predict_batch, np.asarray(pixels, np.float32), BATCH)

    def predict_batch(self, pixels: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class KerasRuntime(Runtime):
    """A Keras model, called as the prediction service calls it (predict_on_batch: Keras' compiled predict step)."""

    name = "Keras"

    def __init__(self, model):
        self.model = model

    def predict_batch(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(pixels))


def load_keras(path: Path) -> KerasRuntime:
    """A .keras file, loaded as `Run.load_model` loads it."""
    import keras

    return KerasRuntime(keras.saving.load_model(path, compile=False))


class SavedModelRuntime(Runtime):
    """A TensorFlow SavedModel through its `serve` endpoint (what TF Serving and `tf.saved_model.load` use)."""

    name = "TensorFlow"

    def __init__(self, path: Path):
        import tensorflow as tf

        self.loaded = tf.saved_model.load(str(path))  # keep it: `serve` alone does not keep its variables alive

    def predict_batch(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(self.loaded.serve(pixels))


class LiteRTRuntime(Runtime):
    """A .tflite model in the LiteRT interpreter (ai-edge-litert), one image per invoke as on a phone."""

    name = "LiteRT"

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path))
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def predict_batch(self, pixels: np.ndarray) -> np.ndarray:
        return np.array([self.invoke(image[None]) for image in pixels], np.float32)

    def invoke(self, image: np.ndarray) -> float:
        """One (1, S, S, 3) image through the interpreter."""
        self.interpreter.set_tensor(self.input["index"], image.astype(self.input["dtype"]))
        self.interpreter.invoke()
        return float(self.interpreter.get_tensor(self.output["index"]).reshape(-1)[0])


class OnnxRuntime(Runtime):
    """An ONNX model in ONNX Runtime's CPU provider (the browser page runs the same file in ONNX Runtime Web)."""

    name = "ONNX Runtime"

    def __init__(self, path: Path):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def predict_batch(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: pixels})[0])
