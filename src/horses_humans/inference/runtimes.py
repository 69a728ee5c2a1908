"""Exported models run by the runtime each format is meant for, behind one call: predict(pixels) -> raw outputs.

Every runtime takes raw 0-255 RGB pixels (N, S, S, 3), as the Keras model does, and returns the model's raw output
layer (N, K): one sigmoid unit (K = 1) for two classes, one softmax unit per class otherwise. Consumers turn it into
class probabilities (N, C) with the run's outputs.ClassOutput. The parity check and the latency measurement of
`export` go through these.

`predict` (and the server, through predict.Predictor.from_run) can run a run's published exports instead of Keras:
choose_export picks one that passed its parity check for the checkpoint asked for, without importing TensorFlow.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import HorsesHumansError
from ..core.batching import batched

BATCH = 32
EXPORT_DIR = "export"  # RUN/export/NAME/: where export.py publishes each export that passed its parity check
RUNTIMES = ("auto", "keras", "onnx", "tflite")  # predict --runtime
FORMAT_RUNTIMES = {"web": "onnx", "tflite": "tflite"}  # export format -> the runtime that runs it without TensorFlow
NEEDS = {"onnx": "onnxruntime", "tflite": "ai_edge_litert"}  # runtime -> the module it needs (extra: export)


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

    def predict_on_batch(self, pixels: np.ndarray) -> np.ndarray:
        """Keras' name for predict_batch (any pixel dtype): a Runtime stands in for a Keras model in a Predictor."""
        return self.predict_batch(np.asarray(pixels, np.float32))


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
        return np.array(self.interpreter.get_tensor(self.output["index"]), np.float32).reshape(
            -1
        )  # a copy: the tensor is reused


class OnnxRuntime(Runtime):
    """An ONNX model in ONNX Runtime's CPU provider (the browser page runs the same file in ONNX Runtime Web)."""

    name = "ONNX Runtime"

    def __init__(self, path: Path, spinning: bool = True):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if not spinning:  # idle threads sleep instead of spinning: they share the CPUs with predict's decoding threads
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def predict_batch(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: pixels})[0])


@dataclass(frozen=True)
class Export:
    """One published export of a run, as its export.json describes it."""

    name: str  # web, tflite, tflite-int8, ...
    runtime: str  # onnx | tflite
    model_file: Path
    quantize: str
    checkpoint_file: str  # the run's checkpoint it was made from (model-best.keras, model.keras)
    latency_ms: float  # p50 of one image, measured when it was exported

    def load(self) -> Runtime:
        """The export in its runtime (ONNX Runtime or LiteRT: no TensorFlow)."""
        if self.runtime == "onnx":
            return OnnxRuntime(self.model_file, spinning=False)
        return LiteRTRuntime(self.model_file)

    def describe(self) -> str:
        """What answers, in words: `ONNX Runtime (export web, 1.23 ms per image)`."""
        engine = {"onnx": OnnxRuntime, "tflite": LiteRTRuntime}[self.runtime].name
        return f"{engine} (export {self.name} of {self.checkpoint_file}, p50 {self.latency_ms:.2f} ms per image)"


def published_exports(run_dir: Path) -> list[Export]:
    """The run's exports that passed their parity check and that a TensorFlow-free runtime runs; a folder without a
    readable export.json (an export in progress, a damaged one) is left out."""
    found = []
    for record_file in sorted((Path(run_dir) / EXPORT_DIR).glob("*/export.json")):
        try:
            record = json.loads(record_file.read_text())
            labels = json.loads((record_file.parent / "labels.json").read_text())
            export = Export(
                record["name"],
                FORMAT_RUNTIMES[record["format"]],
                record_file.parent / labels["model_file"],
                record["quantize"],
                record["checkpoint_file"],
                float(record["latency_ms_p50"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if record.get("parity", {}).get("passed") and export.model_file.exists():
            found.append(export)
    return found


def choose_export(run_dir: Path, checkpoint_file: str, runtime: str = "auto") -> Export | None:
    """The export `predict --runtime` runs, None for Keras. auto: the fastest full-precision export of the
    checkpoint whose runtime is installed (its answers match Keras' to 1e-4), else None; onnx / tflite: that
    runtime's export (full precision first, then the fastest), or a clear error."""
    if runtime not in RUNTIMES:
        raise HorsesHumansError(f"--runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}.")
    if runtime == "keras":
        return None
    exports = [e for e in published_exports(run_dir) if e.checkpoint_file == checkpoint_file]
    if runtime == "auto":
        usable = [e for e in exports if e.quantize == "none" and importlib.util.find_spec(NEEDS[e.runtime])]
        return min(usable, key=lambda e: e.latency_ms, default=None)
    mine = sorted((e for e in exports if e.runtime == runtime), key=lambda e: (e.quantize != "none", e.latency_ms))
    fmt = next(f for f, r in FORMAT_RUNTIMES.items() if r == runtime)
    if not mine:
        raise HorsesHumansError(
            f"{run_dir}: no parity-checked {runtime} export of {checkpoint_file}; make one with "
            f"`horses-humans export {run_dir} --format {fmt}`, or use --runtime keras."
        )
    if importlib.util.find_spec(NEEDS[runtime]) is None:
        raise HorsesHumansError(f"--runtime {runtime} needs {NEEDS[runtime]}: pip install 'horses-humans[export]'.")
    return mine[0]
