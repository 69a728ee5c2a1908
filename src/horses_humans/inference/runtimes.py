"""Exported models run by the runtime each format is meant for, behind one call: predict(pixels) -> raw outputs.

Every runtime takes raw 0-255 RGB pixels (N, S, S, 3), as the Keras model does, and returns the model's raw output
layer (N, K): one sigmoid unit (K = 1) for two classes, one softmax unit per class otherwise. Consumers turn it into
class probabilities (N, C) with the run's outputs.ClassOutput. The parity check and the latency measurement of
`export` go through these.

`predict` (and the server, through predictor.Predictor.from_run) can run a run's published exports instead of Keras:
choose_export picks one that passed its parity check for the checkpoint asked for, without importing TensorFlow, after
checking its export.json and labels.json against their schemas and its model file and labels.json against the sizes
and sha256 export.json recorded. A damaged export never answers: under an explicit --runtime it is one error naming
the file and the `export` command that rebuilds it; under auto, a warning, and the Keras model answers. Exports made
before checksums were recorded still answer, with a one-line note that they are unverified.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import HorsesHumansError, describe_error
from ..core.backend import quiet_native_stderr
from ..core.batching import batched
from ..runs import schema as runschema
from ..runs.layout import EXPORT_DIR, EXPORT_LABELS_FILE, EXPORT_RECORD_FILE

BATCH = 32
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

    def __init__(self, path: Path, spinning: bool = True, threads: int = 0):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if not spinning:  # idle threads sleep instead of spinning: they share the CPUs with predict's decoding threads
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.intra_op_num_threads = threads  # 0: one per core
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        # the served `onnx` export takes uint8 pixels, the `web` one float32: feed each what it declares
        self.input_dtype = np.uint8 if self.session.get_inputs()[0].type == "tensor(uint8)" else np.float32

    def predict_batch(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: pixels.astype(self.input_dtype)})[0])


def shared_model_threads() -> int:
    """Compute threads for a model that shares the CPUs with decoding (predict, serve): half the cores, at least one.
    On 2 cores one thread costs 1.55 ms of CPU per image in batches of 8-32 against 1.7-1.8 ms for two (less
    hand-over between threads), and leaves the other core to the decoder (bench/profile_serve.py)."""
    return max(1, (os.cpu_count() or 2) // 2)


class ExportDamaged(HorsesHumansError):
    """An export whose files differ from what export.json recorded, or that cannot be read or loaded."""


@dataclass(frozen=True)
class Export:
    """One published export of a run, as its export.json and labels.json describe it."""

    name: str  # web, tflite, tflite-int8, ...
    format: str  # web | tflite
    runtime: str  # onnx | tflite
    folder: Path  # RUN/export/NAME/
    model_file: Path
    quantize: str
    checkpoint_file: str  # the run's checkpoint it was made from (model-best.keras, model.keras)
    latency_ms: float  # p50 of one image, measured when it was exported
    files: dict | None = None  # {name: {bytes, sha256}} as published; None for exports made before checksums

    @property
    def rebuild(self) -> str:
        """The command that makes this export again."""
        return rebuild_command(self.folder)

    def verify(self) -> str | None:
        """Check the model file and labels.json against the sizes and sha256 export.json recorded (each file hashed
        once per process, again only when its size or mtime changes); a one-line note for an export made before
        checksums, else None; ExportDamaged when a file differs."""
        if self.files is None:
            return (
                f"note: {self.folder} was made before exports recorded checksums, so its files are unverified; "
                f"{self.rebuild} to verify them"
            )
        for path in (self.model_file, self.folder / EXPORT_LABELS_FILE):
            check_file(path, self.files.get(path.name), self.rebuild)
        return None

    def load(self) -> Runtime:
        """The export in its runtime (ONNX Runtime or LiteRT: no TensorFlow); ExportDamaged if it does not load."""
        try:
            if self.runtime == "onnx":
                return OnnxRuntime(self.model_file, spinning=False, threads=shared_model_threads())
            return LiteRTRuntime(self.model_file)
        except Exception as exc:  # each runtime fails in its own way (protobuf, flatbuffer, ValueError, RuntimeError)
            raise ExportDamaged(
                f"{self.model_file}: {self.runtime} cannot load it ({describe_error(exc)}); {self.rebuild}."
            ) from None

    def describe(self) -> str:
        """What answers, in words: `ONNX Runtime (export web, 1.23 ms per image)`."""
        engine = {"onnx": OnnxRuntime, "tflite": LiteRTRuntime}[self.runtime].name
        return f"{engine} (export {self.name} of {self.checkpoint_file}, p50 {self.latency_ms:.2f} ms per image)"


def rebuild_command(folder: Path) -> str:
    """`rebuild it with `horses-humans export RUN --format F [--quantize Q]``, from the export folder's name."""
    fmt, _, quantize = Path(folder).name.partition("-")
    option = f" --quantize {quantize}" if quantize else ""
    return f"rebuild it with `horses-humans export {Path(folder).parent.parent} --format {fmt}{option}`"


HASHED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256: each file hashed once per process


def file_sha256(path: Path) -> str:
    """The file's sha256 (hex), read again only when its size or modification time changed."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in HASHED:
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        HASHED[key] = digest.hexdigest()
    return HASHED[key]


def check_file(path: Path, recorded: dict | None, rebuild: str) -> None:
    """ExportDamaged naming the file unless it has the bytes and sha256 export.json recorded for it."""
    if recorded is None:
        raise ExportDamaged(f"{path}: {EXPORT_RECORD_FILE} records no checksum for it; {rebuild}.")
    if not path.is_file():
        raise ExportDamaged(f"{path}: missing or not a regular file; {rebuild}.")
    try:
        size, sha = path.stat().st_size, file_sha256(path)
    except OSError as exc:
        raise ExportDamaged(f"{path}: cannot read it ({exc.strerror}); {rebuild}.") from None
    if size != recorded["bytes"]:
        raise ExportDamaged(
            f"{path}: {size:,} bytes, but {EXPORT_RECORD_FILE} recorded {recorded['bytes']:,}: cut short or "
            f"overwritten; {rebuild}."
        )
    if sha != recorded["sha256"]:
        raise ExportDamaged(
            f"{path}: its sha256 differs from the one {EXPORT_RECORD_FILE} recorded: the file is damaged; {rebuild}."
        )


def read_export(folder: Path) -> Export | None:
    """The export in folder as its export.json and labels.json say (both checked against their schemas), or None
    when no TensorFlow-free runtime runs its format or it failed its parity check; ExportDamaged for a bad file."""
    fix = rebuild_command(folder)
    try:
        record = runschema.check_json(folder / EXPORT_RECORD_FILE, runschema.ExportRecord, fix)
        labels = runschema.check_json(folder / EXPORT_LABELS_FILE, runschema.ExportLabels, fix)
    except HorsesHumansError as exc:
        raise ExportDamaged(str(exc)) from None
    if record["format"] not in FORMAT_RUNTIMES or not record["parity"]["passed"]:
        return None
    return Export(
        record["name"],
        record["format"],
        FORMAT_RUNTIMES[record["format"]],
        folder,
        folder / labels["model_file"],
        record["quantize"],
        record["checkpoint_file"],
        float(record["latency_ms_p50"]),
        record.get("files"),
    )


def scan_exports(run_dir: Path) -> tuple[list[Export], list[ExportDamaged]]:
    """(the run's published exports that passed parity and run without TensorFlow, one error per damaged one); a
    folder without export.json (another tool's, or one being deleted) and export's own hidden staging folders are
    not exports."""
    found, damaged = [], []
    root = Path(run_dir) / EXPORT_DIR
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for folder in folders:
        if folder.name.startswith(".") or not (folder / EXPORT_RECORD_FILE).exists():
            continue
        try:
            export = read_export(folder)
        except ExportDamaged as exc:
            damaged.append(exc)
            continue
        if export is not None:
            found.append(export)
    return found, damaged


def stderr(line: str) -> None:
    """A warning or note on stderr (stdout holds only answers)."""
    print(line, file=sys.stderr)


def choose_export(run_dir: Path, checkpoint_file: str, runtime: str = "auto", warn=stderr) -> Export | None:
    """The export `predict --runtime` runs, None for Keras, its files verified (verify). auto: the fastest
    full-precision export of the checkpoint whose runtime is installed (its answers match Keras' to 1e-4), else None,
    and a damaged export is a warning through `warn` and Keras answers; onnx / tflite: that runtime's export (full
    precision first, then the fastest), a damaged one or none an error."""
    if runtime not in RUNTIMES:
        raise HorsesHumansError(f"--runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}.")
    if runtime == "keras":
        return None
    exports, damaged = scan_exports(run_dir)
    exports = [e for e in exports if e.checkpoint_file == checkpoint_file]
    try:
        if runtime == "auto":
            return choose_auto(exports, damaged, warn)
        return choose_runtime(run_dir, checkpoint_file, runtime, exports, damaged, warn)
    except ExportDamaged as exc:
        if runtime != "auto":
            raise
        warn(f"warning: {exc} Answering with the Keras model instead.")
        return None


def choose_auto(exports: list[Export], damaged: list[ExportDamaged], warn) -> Export | None:
    """auto's pick, verified; any damaged export of the run raises (choose_export turns it into a warning)."""
    if damaged:
        raise damaged[0]
    usable = [e for e in exports if e.quantize == "none" and importlib.util.find_spec(NEEDS[e.runtime])]
    chosen = min(usable, key=lambda e: e.latency_ms, default=None)
    note = chosen.verify() if chosen else None
    if note:
        warn(note)
    return chosen


def choose_runtime(
    run_dir: Path, checkpoint_file: str, runtime: str, exports: list[Export], damaged: list[ExportDamaged], warn
) -> Export:
    """The best export for an explicit --runtime, verified; a damaged export of its format, or none, is an error."""
    fmt = next(f for f, r in FORMAT_RUNTIMES.items() if r == runtime)
    mine = sorted((e for e in exports if e.runtime == runtime), key=lambda e: (e.quantize != "none", e.latency_ms))
    bad = [exc for exc in damaged if f"--format {fmt}" in str(exc)]  # its export.json unreadable: it may be the one
    if bad:
        raise bad[0]
    if not mine:
        raise HorsesHumansError(
            f"{run_dir}: no parity-checked {runtime} export of {checkpoint_file}; make one with "
            f"`horses-humans export {run_dir} --format {fmt}`, or use --runtime keras."
        )
    if importlib.util.find_spec(NEEDS[runtime]) is None:
        raise HorsesHumansError(f"--runtime {runtime} needs {NEEDS[runtime]}: pip install 'horses-humans[export]'.")
    note = mine[0].verify()
    if note:
        warn(note)
    return mine[0]


def open_export(
    run_dir: Path, checkpoint_file: str, runtime: str = "auto", warn=stderr
) -> tuple[Export, Runtime] | None:
    """The export that answers for `runtime` and its loaded Runtime, or None when Keras answers (runtime keras, no
    export, or under auto a damaged one: warned about through `warn`)."""
    export = choose_export(run_dir, checkpoint_file, runtime, warn)
    if export is None:
        return None
    try:
        with quiet_native_stderr():  # LiteRT announces its XNNPACK delegate on file descriptor 2
            return export, export.load()
    except ExportDamaged as exc:
        if runtime != "auto":
            raise
        warn(f"warning: {exc} Answering with the Keras model instead.")
        return None
