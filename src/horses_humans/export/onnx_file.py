"""`export --format onnx`: one self-describing .onnx file that any program can run alone.

The graph is served.py's wrapper converted by Keras' exporter (tf2onnx): input `image` uint8 (N, S, S, 3), output
`probabilities` float32 (N, C), calibrated, flips averaged inside. Then its input and output get those names and
metadata_props say everything else a client needs (metadata), and onnx.checker checks the file before it is staged.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..inference.unsure import UnsureRule
from ..models.outputs import SIGMOID, ClassOutput
from ..runs.store import Run
from .served import INPUT_NAME, OUTPUT_NAME

PACKAGE = "horses-humans"


def write_onnx_file(served_model, run: Run, rule: UnsureRule, target: Path, scratch: Path) -> None:
    """Convert the served model to ONNX at scratch, name its input and output, add the metadata, check it, save it."""
    import onnx
    import tensorflow as tf

    size = run.image_size
    spec = tf.TensorSpec((None, size, size, 3), tf.uint8, name=INPUT_NAME)
    served_model.export(str(scratch), format="onnx", verbose=False, input_signature=[spec])
    model = onnx.load(str(scratch))
    rename_value(model.graph, model.graph.input[0].name, INPUT_NAME)
    rename_value(model.graph, model.graph.output[0].name, OUTPUT_NAME)
    model.doc_string = f"{run.path.name}: uint8 RGB `image` (N, S, S, 3) -> `probabilities` (N, C); see metadata_props"
    set_metadata(model, metadata(run, run.output, rule, run.config.tta))
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(target))


def rename_value(graph, old: str, new: str) -> None:
    """Rename a value everywhere the graph names it: graph inputs and outputs, and every node's inputs and outputs."""
    if old == new:
        return
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.name == old:
            value.name = new
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]


def metadata(run: Run, output: ClassOutput, rule: UnsureRule, tta: bool) -> dict[str, str]:
    """metadata_props as strings; a key without a value (no unsure rule, no reject class, uncalibrated) is left out,
    never written as null."""
    entries = {
        "class_names": json.dumps(list(output.class_names)),
        "image_size": str(run.image_size),
        "resize": run.resize,  # squash, crop or pad: how a client brings an image to image_size (images.fit_square)
        "output_kind": output.kind,  # sigmoid: the label is class_names[1] when its probability >= threshold
        "threshold": str(output.threshold) if output.kind == SIGMOID else None,
        "unsure_threshold": str(rule.min_confidence) if rule.min_confidence > 0 else None,
        "reject_class": rule.neither_class if rule.neither_index(output) is not None else None,
        "temperature_applied": str(output.temperature) if output.temperature != 1.0 else None,
        "calibration_applied": calibration_applied(output),
        "flip_average_applied": "true" if tta else None,
        # train --distance-unsure: the graph answers uniform probabilities (then below unsure_threshold) on images
        # unlike every training image
        "distance_check_applied": "true" if rule.distance else None,
        "recipe": run.config.recipe,
        "run": run.path.name,
        "created_by": f"{PACKAGE} {package_version()}",
    }
    return {key: value for key, value in entries.items() if value is not None}


def calibration_applied(output: ClassOutput) -> str | None:
    """The calibration inside the graph beyond a temperature (method, class_scale, class_bias) as JSON, else None."""
    if output.scale is None and output.bias is None:
        return None
    return json.dumps({"method": output.calibration_method, **output.calibration_record()})


def set_metadata(model, entries: dict[str, str]) -> None:
    """Replace the model's metadata_props with entries."""
    import onnx

    del model.metadata_props[:]
    onnx.helper.set_model_props(model, entries)


def package_version() -> str:
    """This package's installed version ("unknown" when it runs from a source tree that was never installed)."""
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown"


def read_metadata(path: Path) -> dict[str, str]:
    """A .onnx file's metadata_props as a dict (what a client reads to know the classes and the input size)."""
    import onnx

    return {entry.key: entry.value for entry in onnx.load(str(path), load_external_data=False).metadata_props}
