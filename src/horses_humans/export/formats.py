"""The export formats: one registry entry per format (the file it makes, the writer that makes it, the runtime that
checks it, the quantizations it offers, the modules it needs) and the writers themselves.

keras: the run's checkpoint file as it is; savedmodel: keras.export.ExportArchive, a `serve` endpoint taking raw
pixels; tflite: converted from that SavedModel (float, float16, dynamic-range or int8, run with LiteRT); web: an ONNX
model (`model.export(format="onnx")`, i.e. tf2onnx) with a static page that runs it in ONNX Runtime Web (webbuild.py).
Two `served` formats answer as `predict` does, for programs that know nothing of this package (served.py): onnx, one
self-describing file (onnx_file.py), tflite_labels, model.tflite + labels.txt (tflite_labels.py), and tfjs, a TF.js
graph model by the official converter in its own venv (tfjs.py, tfjs_env.py), which `export --all` leaves out.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import HorsesHumansError
from ..inference.runtimes import LiteRTRuntime, OnnxRuntime, Runtime, SavedModelRuntime, load_keras
from ..inference.unsure import load_rule
from . import served, tfjs
from .onnx_file import write_onnx_file
from .source import ExportSource
from .tfjs_env import converter_python
from .tflite_labels import write_labels_txt
from .webbuild import write_site

QUANTIZE = ("none", "float16", "dynamic", "int8")
# TF.js's parity check runs in Node on the CPU backend (plain JavaScript, no native kernels): a few images, not all
TFJS_CHECK_IMAGES = 32


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
    check: Callable[[], object] | None = None  # a one-line HorsesHumansError when a tool outside Python is missing
    measure: Callable[[Path], int] | None = None  # the model's bytes, when more than the one file (default: its size)
    in_all: bool = True  # made by `export --all`
    check_images: int | None = None  # validation images the parity check runs, spread evenly (None: every one)


# ---------------------------------------------------------------- writers


def write_keras(source: ExportSource, target: Path, quantize: str) -> None:
    """The run's served checkpoint file as it is (float32; opens with keras.saving.load_model)."""
    shutil.copyfile(source.run.checkpoint_path(), target)


def write_savedmodel(source: ExportSource, target: Path, quantize: str) -> None:
    """A SavedModel whose `serve` endpoint (also `serving_default`) takes raw 0-255 pixels (N, S, S, 3) float32."""
    shutil.copytree(source.saved_model, target)


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
    rule = load_rule(source.run.path, source.run.output, source.run.config.reject_class)
    write_onnx_file(source.served_model, source.run, rule, target, source.scratch("served.onnx"))


def write_tflite_labels(source: ExportSource, target: Path, quantize: str) -> None:
    """model.tflite of the served model (uint8 in, calibrated probabilities out), quantized as asked, and
    labels.txt beside it (tflite_labels.py says why not TFLite metadata)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(source.served_saved_model))
    configure_quantization(converter, quantize, source)
    target.write_bytes(converter.convert())
    write_labels_txt(target.parent, source.run.class_names)


def write_tfjs(source: ExportSource, target: Path, quantize: str) -> None:
    """model.json and its weight shards (beside it) of the served model, by the official converter in its own venv
    (tfjs.py, tfjs_env.py); float16 stores the weights in half precision."""
    python = converter_python(source.log)
    saved = source.scratch(f"tfjs_saved_model_{quantize}")
    served.save_served_model(source.served_model, source.run.image_size, saved, named=True)
    rule = load_rule(source.run.path, source.run.output, source.run.config.reject_class)
    tfjs.convert(python, saved, target.parent, tfjs.tfjs_metadata(source.run, rule), quantize)


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
        Format(
            "tfjs",
            tfjs.MODEL_JSON,
            write_tfjs,
            tfjs.TfjsRuntime,
            tuple(tfjs.QUANTIZATION),
            served=True,
            check=tfjs.find_tfjs,
            measure=tfjs.graph_model_bytes,
            in_all=False,  # its first use builds a 3 GB venv, each use a second TensorFlow: asked for by name only
            check_images=TFJS_CHECK_IMAGES,
        ),
    )
}


ALL = [(f.name, q) for f in FORMATS.values() if f.in_all for q in f.quantize]  # what `export --all` makes, in order


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
    if FORMATS[fmt].check is not None:
        FORMATS[fmt].check()
    return FORMATS[fmt]
