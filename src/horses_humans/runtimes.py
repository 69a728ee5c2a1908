"""Exported models run by the runtime each format is meant for, behind one call: predict(pixels) -> raw outputs.

Every runtime takes raw 0-255 RGB pixels (N, S, S, 3), as the Keras model does, and returns the model's raw output
layer (N, K): one sigmoid unit (K = 1) for two classes, one softmax unit per class otherwise. Consumers turn it into
class probabilities (N, C) with the run's outputs.ClassOutput. The parity check and the latency measurement of
`export` go through these.
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
        """Raw outputs (N, K) float32 for (N, S, S, 3) pixels (uint8 or float), batch by batch."""
        pixels = np.asarray(pixels, np.float32)
        if not len(pixels):  # batched cannot size an empty result without knowing K
            raise ValueError("a runtime needs at least one image to predict")
        return batched(self.predict_batch, pixels, BATCH, (-1,))  # (-1,): K is whatever the output layer gives

    def predict_batch(self, pixels: np.ndarray) -> np.ndarray:
        """Raw outputs of one float32 batch, any shape with one leading row per image."""
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
        return np.stack([self.invoke(image[None]) for image in pixels])

    def invoke(self, image: np.ndarray) -> np.ndarray:
        """One (1, S, S, 3) image through the interpreter -> its raw outputs (K,)."""
        self.interpreter.set_tensor(self.input["index"], image.astype(self.input["dtype"]))
        self.interpreter.invoke()
        return np.array(self.interpreter.get_tensor(self.output["index"]), np.float32).reshape(-1)  # a copy: the tensor is reused


class OnnxRuntime(Runtime):
    """An ONNX model in ONNX Runtime's CPU provider (the browser page runs the same file in ONNX Runtime Web)."""

    name = "ONNX Runtime"

    def __init__(self, path: Path):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def predict_batch(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: pixels})[0])
