"""`horses-humans export`: a run's model for phones, servers and web pages, each export checked before it ships.

Formats: the Keras file; a TensorFlow SavedModel (keras.export.ExportArchive, a `serve` endpoint taking raw pixels);
TFLite
converted from that SavedModel (float, float16, dynamic-range or int8, run with LiteRT); and `web`, an ONNX model
(`model.export(format="onnx")`, i.e. tf2onnx) with a static page that runs it in ONNX Runtime Web. Two `served`
formats answer as `predict` does, for programs that know nothing of this package (served.py): `onnx`, one
self-describing file (onnx_file.py), and `tflite_labels`, model.tflite + labels.txt (tflite_labels.py). Every export is
written into a staging folder, run by its own runtime on the validation images and compared with the Keras model
(parity.RULES, on the class probabilities (N, C) read through the run's ClassOutput: one sigmoid unit for two classes,
a softmax for more; a served format against the Predictor's calibrated, flip-averaged ones); only one that passes is
moved to RUN/export/NAME/, with a labels.json, an export.json, the MODEL_CARD.md and a README.md (clients.py).
The web page around the ONNX model is webbuild.py's; the trade-off table of all exports is tables.exports_markdown.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from ..config import HorsesHumansError, describe_error
from ..core.atomic import current_umask, write_json_atomic, write_text_atomic
from ..core.backend import quiet_native_stderr
from ..core.tables import megabytes
from ..data.pixels import Split
from ..inference.runtimes import LiteRTRuntime, OnnxRuntime, Runtime, SavedModelRuntime, file_sha256, load_keras
from ..inference.unsure import load_rule
from ..models.outputs import ClassOutput
from ..runs.layout import EXPORT_DIR, EXPORT_LABELS_FILE, EXPORT_RECORD_FILE, EXPORTS_FILE
from ..runs.modelcard import model_card
from ..runs.record import load_run_split
from ..runs.store import MODEL_CARD_FILE, Run, load_run
from .clients import write_readme
from .onnx_file import write_onnx_file
from .parity import Parity, check_parity, p50_latency_ms
from .served import save_served_model, served_model
from .tflite_labels import write_labels_txt
from .webbuild import write_site

logger = logging.getLogger(__name__)  # progress lines; the CLI sends them to stderr

QUANTIZE = ("none", "float16", "dynamic", "int8")
REPRESENTATIVE_IMAGES = 128  # training images that calibrate int8 activation ranges


@dataclass(frozen=True)
class Format:
    """One export format: the file it makes, how it is written, and the runtime that checks it."""

    name: str
    file: str  # the model file (or folder) inside RUN/export/NAME/
    write: Callable  # (source, target path, quantize) -> None
    runtime: Callable[[Path], Runtime]
    quantize: tuple[str, ...] = ("none",)
    needs: tuple[str, ...] = ()  # Python modules (from the `export` extra) that write or run it
    served: bool = False  # uint8 in, the served probabilities (N, C) out (served.py): checked against predict's


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
        parity compares the model's own probabilities: the temperature is applied after any model, the same on all."""
        return self.run.raw_output

    @property
    def export_root(self) -> Path:
        """RUN/export/: every published export, and exports.md."""
        return self.run.path / EXPORT_DIR

    @property
    def exports_table_path(self) -> Path:
        """RUN/export/exports.md: the trade-off table of every export."""
        return self.export_root / EXPORTS_FILE

    def accuracy(self, probabilities: np.ndarray) -> float:
        """Fraction of validation images whose label (from probabilities (N, C), as the model is read) is right."""
        return float(np.mean(self.output.predicted(probabilities) == np.asarray(self.validation.y)))

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
        return served_model(self.inference_model, run.output, run.image_size, run.config.tta)

    @cached_property
    def served_saved_model(self) -> Path:
        """The served model as a SavedModel (uint8 input), written once: the tflite_labels conversions start from it."""
        path = self.scratch("served_saved_model")
        save_served_model(self.served_model, self.run.image_size, path)
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


@dataclass
class ExportResult:
    """What one export produced and how it compared with the Keras model."""

    name: str
    format: str
    quantize: str
    runtime: str = ""
    path: Path | None = None  # where it was published; None if it was not
    files: dict = field(default_factory=dict)  # file name -> bytes
    model_bytes: int = 0
    parity: Parity | None = None
    accuracy: float | None = None
    latency_ms: float | None = None
    seconds: float = 0.0  # conversion and checks
    error: str | None = None

    @property
    def shipped(self) -> bool:
        return self.path is not None

    def row(self, float_bytes: int | None) -> dict:
        """The table row: sizes, accuracy, differences, latency; dashes where the export failed."""
        p, dash = self.parity, "-"
        return {
            "export": self.name,
            "runtime": self.runtime or dash,
            "file": FORMATS[self.format].file,
            "mb": megabytes(self.model_bytes) if self.model_bytes else dash,
            "folder_mb": megabytes(sum(self.files.values())) if self.files else dash,
            "ratio": f"{self.model_bytes / float_bytes:.4f}" if self.model_bytes and float_bytes else dash,
            "accuracy": f"{100 * self.accuracy:.1f}" if self.accuracy is not None else dash,
            "mean_abs_diff": f"{p.mean_abs_diff:.2e}" if p else dash,
            "max_abs_diff": f"{p.max_abs_diff:.2e}" if p else dash,
            "agreement": f"{100 * p.label_agreement:.1f}" if p else dash,
            "latency": f"{self.latency_ms:.2f}" if self.latency_ms is not None else dash,
            "parity": "passed" if self.shipped else f"**not shipped**: {self.error}",
        }


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


# ---------------------------------------------------------------- writers


def write_keras(source: ExportSource, target: Path, quantize: str) -> None:
    """The run's served checkpoint file as it is (float32; opens with keras.saving.load_model)."""
    shutil.copyfile(source.run.checkpoint_path(), target)


def write_savedmodel(source: ExportSource, target: Path, quantize: str) -> None:
    """A SavedModel whose `serve` endpoint (also `serving_default`) takes raw 0-255 pixels (N, S, S, 3) float32."""
    shutil.copytree(source.saved_model, target)


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


def write_tflite(source: ExportSource, target: Path, quantize: str) -> None:
    """TFLite from the SavedModel (the documented Keras 3 route), quantized as asked."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(source.saved_model))
    configure_quantization(converter, quantize, source)
    target.write_bytes(converter.convert())


def configure_quantization(converter, quantize: str, source: ExportSource) -> None:
    """float16: weights in half precision; dynamic: int8 weights, float activations; int8: weights and
    activations in int8, ranges calibrated on training images, float32 input and output kept."""
    import tensorflow as tf

    if quantize == "none":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        images = source.representative
        converter.representative_dataset = lambda: ([image[None]] for image in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def write_onnx(source: ExportSource, target: Path, quantize: str) -> None:
    """ONNX via Keras' exporter (tf2onnx). `dynamic` stores the dense layers' weights as int8 (ONNX Runtime's tool);
    convolutions stay float: ONNX Runtime's ConvInteger kernels are many times slower than its float convolutions
    on CPU (its docs advise static quantization for CNNs), and the baseline's weights are 99.8% dense anyway."""
    if quantize == "none":
        shutil.copyfile(source.onnx, target)
        return
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source.onnx, target, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])


def write_onnx_served(source: ExportSource, target: Path, quantize: str) -> None:
    """The self-describing ONNX file (onnx_file.py): uint8 `image` in, calibrated `probabilities` out, metadata."""
    rule = load_rule(source.run.path, source.run.output)
    write_onnx_file(source.served_model, source.run, rule, target, source.scratch("served.onnx"))


def write_tflite_labels(source: ExportSource, target: Path, quantize: str) -> None:
    """model.tflite of the served model (uint8 in, calibrated probabilities out), quantized as asked, and
    labels.txt beside it (tflite_labels.py says why not TFLite metadata)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(source.served_saved_model))
    configure_quantization(converter, quantize, source)
    target.write_bytes(converter.convert())
    write_labels_txt(target.parent, source.run.class_names)


def write_web(source: ExportSource, target: Path, quantize: str) -> None:
    """model.onnx plus a static page that runs it in ONNX Runtime Web (no server needed beyond static files)."""
    write_onnx(source, target, quantize)
    write_site(target.parent, source.log)


FORMATS = {
    f.name: f
    for f in (
        Format("keras", "model.keras", write_keras, load_keras),
        Format("savedmodel", "saved_model", write_savedmodel, SavedModelRuntime),
        Format("tflite", "model.tflite", write_tflite, LiteRTRuntime, QUANTIZE, needs=("ai_edge_litert",)),
        Format("web", "model.onnx", write_web, OnnxRuntime, ("none", "dynamic"), needs=("tf2onnx", "onnxruntime")),
        Format(
            "onnx", "model.onnx", write_onnx_served, OnnxRuntime, needs=("tf2onnx", "onnx", "onnxruntime"), served=True
        ),
        Format(
            "tflite_labels",
            "model.tflite",
            write_tflite_labels,
            LiteRTRuntime,
            ("none", "float16", "dynamic"),  # int8 would calibrate on float images; this model takes uint8
            needs=("ai_edge_litert",),
            served=True,
        ),
    )
}


# ---------------------------------------------------------------- the export itself


def export_name(fmt: str, quantize: str) -> str:
    """The export's folder name: tflite, tflite-int8, web-dynamic, ..."""
    return fmt if quantize == "none" else f"{fmt}-{quantize}"


def check_request(fmt: str, quantize: str) -> Format:
    """The format, or a clear error for an unknown format or a quantization it does not offer."""
    if fmt not in FORMATS:
        raise HorsesHumansError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    if quantize not in FORMATS[fmt].quantize:
        offered = ", ".join(f"{f.name} ({'/'.join(f.quantize)})" for f in FORMATS.values() if len(f.quantize) > 1)
        raise HorsesHumansError(
            f"--format {fmt} does not take --quantize {quantize}: quantization is offered by {offered}."
        )
    missing = [module for module in FORMATS[fmt].needs if importlib.util.find_spec(module) is None]
    if missing:
        raise HorsesHumansError(f"--format {fmt} needs {', '.join(missing)}: pip install 'horses-humans[export]'.")
    return FORMATS[fmt]


def open_source(
    run_dir: str | Path,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    log=logger.info,
    checkpoint: str | None = None,
) -> ExportSource:
    """Load a run's model (`checkpoint`, default the run's) and its uncalibrated probabilities on the validation
    images (what every export is checked against: exports hold the model, calibration is applied after it)."""
    from ..inference.predictor import Predictor

    run = load_run(run_dir, checkpoint)
    split = load_run_split(run, "validation", data_dir, cache_dir, log)
    predictor = Predictor.uncalibrated(run)
    return ExportSource(
        run, predictor.model, split, predictor.predict_proba(np.asarray(split.x)), data_dir, cache_dir, log
    )


def export(source: ExportSource, fmt: str, quantize: str = "none", latency_runs: int = 50) -> ExportResult:
    """Write one export into a staging folder, check it, and publish it to RUN/export/NAME/ only if it passes."""
    spec = check_request(fmt, quantize)
    name = export_name(fmt, quantize)
    result = ExportResult(name, fmt, quantize)
    start = time.perf_counter()
    export_root = source.export_root
    export_root.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{name}-", dir=export_root))
    try:
        build_and_check(source, spec, staging, result, latency_runs)
        if result.parity.passed:
            result.path = publish(staging, export_root / name)
        else:
            result.error = f"parity failed: {parity_summary(result.parity)}"
    except HorsesHumansError:
        raise
    except Exception as exc:  # converters raise many types (ConverterError, ValueError, ...): report it, keep going
        result.error = describe_error(exc)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        result.seconds = time.perf_counter() - start
    return result


def build_and_check(source: ExportSource, spec: Format, staging: Path, result: ExportResult, latency_runs: int) -> None:
    """Write the artefact and labels.json into staging, run it on the validation images, fill in the result."""
    target = staging / spec.file
    with quiet_converters():
        spec.write(source, target, result.quantize)
        runtime = spec.runtime(target)
    raw = runtime.predict(source.validation.x)
    probabilities = source.served_probabilities(raw) if spec.served else source.probabilities(raw)
    reference = source.served_reference if spec.served else source.reference
    output = source.run.output if spec.served else source.output  # same classes and threshold; labels read alike
    result.runtime = runtime.name
    result.parity = check_parity(reference, probabilities, result.quantize, output)
    result.accuracy = source.accuracy(probabilities)
    result.latency_ms = p50_latency_ms(runtime.predict, source.validation.x[0], runs=latency_runs)
    result.model_bytes = size_of(target)
    write_json_atomic(staging / EXPORT_LABELS_FILE, export_labels(source, result))
    copy_model_card(source.run, staging)
    write_readme(staging, spec.name, spec.file, source.run)
    checksums = file_records(staging)  # every file but export.json, which holds them
    write_json_atomic(staging / EXPORT_RECORD_FILE, {**export_record(source, result), "files": checksums})
    result.files = {
        p.relative_to(staging).as_posix(): p.stat().st_size for p in sorted(staging.rglob("*")) if p.is_file()
    }


def file_records(folder: Path) -> dict:
    """{relative name: {bytes, sha256}} of every file under folder but export.json: what is checked before use."""
    return {
        p.relative_to(folder).as_posix(): {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() != EXPORT_RECORD_FILE
    }


@contextmanager
def quiet_converters():
    """Converters chatter: C++ notices on stderr, tf2onnx's FutureWarning, ONNX Runtime's advice via the root logger."""
    with quiet_native_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def export_labels(source: ExportSource, result: ExportResult) -> dict:
    """labels.json: the run's labels (class list, output kind and how to read it, threshold for a sigmoid, input size,
    pixel range) plus how to feed this file and what comes out of it."""
    size, output = source.run.image_size, source.output
    return {
        **source.run.labels,
        **output.record(),  # record(): a run from before output_kind gets it too
        "model": source.run.path.name,
        "recipe": source.run.config.recipe,
        "format": result.format,
        "quantize": result.quantize,
        "model_file": FORMATS[result.format].file,
        "input": {
            "dtype": "float32",
            "shape": [None, size, size, 3],
            "layout": "NHWC",
            "note": "raw 0-255 RGB pixels; rescaling is inside the model",
        },
        "output_shape": [None, output.units],
        # calibration: probabilities are softmax(log p / T) of the outputs
        "temperature": source.run.output.temperature,
        "validation_accuracy": result.accuracy,
        "unsure": load_rule(source.run.path, output).record(),  # answer "unsure" as unsure.py's rule does
        **(served_labels(source) if FORMATS[result.format].served else {}),
    }


def served_labels(source: ExportSource) -> dict:
    """labels.json entries of a served export: uint8 in, and probabilities that need no temperature or flips after."""
    size, output = source.run.image_size, source.run.output
    return {
        "input": {
            "name": "image",
            "dtype": "uint8",
            "shape": [None, size, size, 3],
            "layout": "NHWC",
            "note": "raw 0-255 RGB pixels, resized (squashed, bilinear) to the size; scaling is inside the model",
        },
        "output": (
            f"probabilities (N, {len(output.class_names)}), one per class in class_names order, calibrated"
            + (" and averaged with the mirrored image's" if source.run.config.tta else "")
            + " inside the model: read them as they are"
        ),
        "output_shape": [None, len(output.class_names)],
        "temperature": 1.0,  # applied inside: a reader must not apply it again
        "temperature_applied": output.temperature,
        "flip_average_applied": source.run.config.tta,
    }


def copy_model_card(run: Run, staging: Path) -> None:
    """Every export carries the run's MODEL_CARD.md (written now for runs made before model cards)."""
    card = run.path / MODEL_CARD_FILE
    if card.exists():
        shutil.copyfile(card, staging / MODEL_CARD_FILE)
    else:
        write_text_atomic(staging / MODEL_CARD_FILE, model_card(run))


def export_record(source: ExportSource, result: ExportResult) -> dict:
    """export.json: where it came from, how it compared, what it measured, with which versions."""
    return {
        "run": str(source.run.path),
        "checkpoint": source.run.checkpoint,
        "checkpoint_file": source.run.checkpoint_path().name,
        "name": result.name,
        "format": result.format,
        "quantize": result.quantize,
        "runtime": result.runtime,
        "model_bytes": result.model_bytes,
        "validation_accuracy": result.accuracy,
        "keras_validation_accuracy": source.accuracy(source.reference),
        "parity": result.parity.to_dict(),
        "latency_ms_p50": result.latency_ms,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": versions(),
    }


def versions() -> dict:
    """Versions of the converters and runtimes that made and checked the export."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("keras", "tensorflow-cpu", "tensorflow", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def publish(staging: Path, dest: Path) -> Path:
    """Move a checked export into place; an earlier export of the same name is replaced only once the new one is
    there."""
    old = dest.with_name(f".old-{dest.name}-{uuid.uuid4().hex[:8]}")
    os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes 0700; an export is an ordinary folder
    if dest.exists():
        os.replace(dest, old)
    os.replace(staging, dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def size_of(path: Path) -> int:
    """Bytes of a file, or of everything under a folder."""
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def parity_summary(parity: Parity) -> str:
    """One line: the rule and the numbers it was judged on."""
    return (
        f"{parity.rule}; max |dp| {parity.max_abs_diff:.2e}, mean |dp| {parity.mean_abs_diff:.2e}, "
        f"same label on {100 * parity.label_agreement:.1f}% of {parity.images} images"
    )


ALL = [(f.name, q) for f in FORMATS.values() for q in f.quantize]


def export_all(
    source: ExportSource, requests: list[tuple[str, str]] | None = None, latency_runs: int = 50
) -> list[ExportResult]:
    """Every format (and quantization) in turn, each reported as it finishes; one failing does not stop the rest."""
    results = []
    for fmt, quantize in requests or ALL:
        result = export(source, fmt, quantize, latency_runs)
        source.log(describe(result))
        results.append(result)
    return results


def describe(result: ExportResult) -> str:
    """One progress line for an export."""
    if not result.shipped:
        return f"{result.name}: NOT shipped ({result.error}) [{result.seconds:.1f} s]"
    return (
        f"{result.name}: {megabytes(result.model_bytes)} MB, {parity_summary(result.parity)}, "
        f"p50 {result.latency_ms:.2f} ms -> {result.path} [{result.seconds:.1f} s]"
    )
