"""`export --format tfjs`: a TF.js graph model (model.json + weight shards) of the served model, for web pages.

Made by the official converter (tensorflowjs, in its own venv: tfjs_env.py) from a SavedModel of served.py's
wrapper (uint8 `image` in, `probabilities` out, calibrated and flip-averaged inside), the route that works across the
two TensorFlows: this project's Keras 3 .keras files cannot be read by TensorFlow 2.19's tf.keras, but its
SavedModels can. model.json carries the same metadata as the ONNX file (onnx_file.metadata), typed, under
userDefinedMetadata.horses_humans. The parity check runs the files in Node with @tensorflow/tfjs (tfjs_run.cjs, the
CPU backend), the package web/package-lock.json pins: there is no Python loader for TF.js graph models.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..config import HorsesHumansError
from ..inference.runtimes import Runtime
from ..inference.unsure import UnsureRule
from ..runs.store import Run
from .onnx_file import metadata

MODEL_JSON = "model.json"
METADATA_KEY = "horses_humans"  # model.json: userDefinedMetadata.horses_humans
ENV_TFJS = "HORSES_HUMANS_TFJS"  # the @tensorflow/tfjs package folder (node_modules/@tensorflow/tfjs)
TFJS_VERSION = "4.22.0"  # as pinned in web/package.json
RUNNER = Path(__file__).with_name("tfjs_run.cjs")
NUMBERS = ("image_size", "threshold", "unsure_threshold", "temperature_applied")
QUANTIZATION = {"none": None, "float16": {"float16": True}}  # converter: every weight stored as float16

CONVERT = """import json, sys
from tensorflowjs.converters import tf_saved_model_conversion_v2 as convert
saved, out, meta, quantization = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
convert.convert_tf_saved_model(saved, out, signature_def="serve", saved_model_tags="serve",
                               quantization_dtype_map=quantization, metadata=meta)
"""


def tfjs_metadata(run: Run, rule: UnsureRule) -> dict:
    """The ONNX file's metadata (the same keys, left out alike when they have no value) as JSON types."""
    entries = metadata(run, run.output, rule, run.config.tta)
    typed = {key: float(value) for key, value in entries.items() if key in NUMBERS}
    typed["image_size"] = int(entries["image_size"])
    typed["class_names"] = json.loads(entries["class_names"])
    for flag in ("flip_average_applied", "distance_check_applied"):
        if flag in entries:
            typed[flag] = True
    return {**entries, **typed}


def convert(python: Path, saved_model: Path, folder: Path, meta: dict, quantize: str) -> None:
    """Run the converter (in its own venv) on the SavedModel; model.json and its shards land in folder."""
    arguments = [str(saved_model), str(folder), json.dumps({METADATA_KEY: meta}), json.dumps(QUANTIZATION[quantize])]
    done = subprocess.run([str(python), "-c", CONVERT, *arguments], capture_output=True, text=True)
    if done.returncode != 0 or not (folder / MODEL_JSON).is_file():
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise RuntimeError(f"the TF.js converter failed: {lines[-1] if lines else f'exit {done.returncode}'}")


def graph_model_bytes(model_json: Path) -> int:
    """Bytes of model.json and the weight shards it lists."""
    manifest = json.loads(model_json.read_text())["weightsManifest"]
    shards = [model_json.parent / path for group in manifest for path in group["paths"]]
    return model_json.stat().st_size + sum(shard.stat().st_size for shard in shards)


def find_tfjs() -> Path:
    """The @tensorflow/tfjs package folder: $HORSES_HUMANS_TFJS, else web/node_modules of this checkout; node must be
    on PATH. Either missing is one error saying what to install."""
    if shutil.which("node") is None:
        raise HorsesHumansError(
            "--format tfjs checks the model in Node with @tensorflow/tfjs, and node is not on PATH: "
            "install Node.js (apt-get install nodejs)"
        )
    checkout = Path(__file__).resolve().parents[3] / "web" / "node_modules" / "@tensorflow" / "tfjs"
    package = Path(os.environ[ENV_TFJS]).expanduser() if os.environ.get(ENV_TFJS) else checkout
    if not (package / "package.json").is_file():
        raise HorsesHumansError(
            f"--format tfjs checks the model in Node with @tensorflow/tfjs {TFJS_VERSION}, not found at {package}: "
            f"run `npm ci --prefix web` in a checkout (scripts/setup-web.sh), or set {ENV_TFJS} to "
            "node_modules/@tensorflow/tfjs"
        )
    return package


class TfjsRuntime(Runtime):
    """A TF.js graph model run by @tensorflow/tfjs in Node (one process per call; the CPU backend)."""

    name = "TF.js (Node, CPU)"

    def __init__(self, model_json: Path):
        self.folder = Path(model_json).parent
        self.package = find_tfjs()

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """The model's answers (N, C) for (N, S, S, 3) pixels (0-255; fed as uint8, the model's input)."""
        return self.run(pixels, timed_runs=0)[0]

    def p50_latency_ms(self, image: np.ndarray, runs: int = 50) -> float:
        """Median milliseconds of one-image predictions timed inside Node (so its start-up is not counted)."""
        return self.run(np.asarray(image)[None], timed_runs=runs)[1]

    def run(self, pixels: np.ndarray, timed_runs: int) -> tuple[np.ndarray, float | None]:
        """One Node process: the answers for pixels and, when timed_runs > 0, the median ms of one image."""
        pixels = np.clip(np.rint(np.asarray(pixels, np.float32)), 0, 255).astype(np.uint8)
        with tempfile.TemporaryDirectory(prefix="horses-humans-tfjs-") as scratch:
            images, out = Path(scratch) / "images.u8", Path(scratch) / "answers.f32"
            pixels.tofile(images)
            count, size = str(len(pixels)), str(pixels.shape[1])
            command = ["node", str(RUNNER), str(self.package), str(self.folder), str(images), count, size, str(out)]
            done = subprocess.run([*command, str(timed_runs)], capture_output=True, text=True)
            if done.returncode != 0:
                said = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
                raise RuntimeError(f"TF.js in Node failed on {self.folder}: {said[-1]}")
            answers = np.fromfile(out, np.float32).reshape(len(pixels), -1)
            ms = float(Path(f"{out}.ms").read_text()) if timed_runs else None
        return answers, ms
