"""`horses-humans export`: a run's model for phones, servers and web pages, each export checked before it ships.

Every export (formats.py: the registry and the writers) is made from an ExportSource (source.py) into a staging
folder, run by its own runtime on the validation images and compared with the Keras model (parity.RULES, on the class
probabilities (N, C) read through the run's ClassOutput: one sigmoid unit for two classes, a softmax for more); only
one that passes is moved to RUN/export/NAME/, with a labels.json, an export.json, the MODEL_CARD.md and a README.md
with clients (clients.py). A served format (formats.py) is compared with the Predictor's calibrated, flip-averaged
probabilities instead. The trade-off table of all exports is tables.exports_markdown.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import HorsesHumansError, describe_error
from ..core.atomic import current_umask, write_json_atomic, write_text_atomic
from ..core.backend import quiet_native_stderr
from ..core.tables import megabytes
from ..inference.runtimes import file_sha256
from ..inference.unsure import load_rule
from ..runs.layout import EXPORT_LABELS_FILE, EXPORT_RECORD_FILE
from ..runs.modelcard import model_card
from ..runs.record import load_run_split
from ..runs.store import MODEL_CARD_FILE, Run, load_run
from .clients import write_readme
from .formats import ALL, FORMATS, Format, check_request, export_name
from .parity import Parity, check_parity, p50_latency_ms
from .served import served_labels
from .source import ExportSource

logger = logging.getLogger(__name__)  # progress lines; the CLI sends them to stderr


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
    pick = checked_images(len(source.validation.x), spec.check_images)
    raw = runtime.predict(source.validation.x[pick])
    probabilities = source.served_probabilities(raw) if spec.served else source.probabilities(raw)
    reference = (source.served_reference if spec.served else source.reference)[pick]
    output = source.run.output if spec.served else source.output  # same classes and threshold; labels read alike
    result.runtime = runtime.name
    distance = source.run.has_distance_check  # its uniform rows are an answer (unsure), compared as one
    result.parity = check_parity(reference, probabilities, result.quantize, output, distance)
    result.accuracy = source.accuracy(probabilities, pick)
    result.latency_ms = measure_latency(runtime, source.validation.x[0], latency_runs)
    result.model_bytes = spec.measure(target) if spec.measure else size_of(target)
    write_json_atomic(staging / EXPORT_LABELS_FILE, export_labels(source, result))
    copy_model_card(source.run, staging)
    write_readme(staging, spec.name, spec.file, source.run)
    checksums = file_records(staging)  # every file but export.json, which holds them
    write_json_atomic(staging / EXPORT_RECORD_FILE, {**export_record(source, result), "files": checksums})
    result.files = {
        p.relative_to(staging).as_posix(): p.stat().st_size for p in sorted(staging.rglob("*")) if p.is_file()
    }


def checked_images(count: int, limit: int | None):
    """Which validation images the parity check runs: all (a slice, no copy), or `limit` spread evenly over them
    (the split lists classes in turn, so every class is in)."""
    if limit is None or count <= limit:
        return slice(None)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(np.int64))


def measure_latency(runtime, image: np.ndarray, runs: int) -> float:
    """p50 ms of one image; a runtime in another process (TF.js in Node) times itself, start-up not counted."""
    timed = getattr(runtime, "p50_latency_ms", None)
    return timed(image, runs) if timed else p50_latency_ms(runtime.predict, image, runs=runs)


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
        "resize": source.run.resize,  # a run from before --resize gets it too: squash
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
        "validation_accuracy": result.accuracy,
        # answer "unsure" as unsure.py's rule does
        "unsure": load_rule(source.run.path, output, source.run.config.reject_class).record(),
        **(served_labels(source.run) if FORMATS[result.format].served else calibration_labels(source.run)),
    }


def calibration_labels(run: Run) -> dict:
    """How to calibrate a raw export's outputs: softmax(log p * class_scale / temperature + class_bias), the
    temperature always (1.0 uncalibrated), class_scale and class_bias only where the run's calibration has them."""
    return {"temperature": run.output.temperature, **run.output.calibration_record()}


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
