"""`export --format tflite_labels`: a Teachable-Machine-style folder, model.tflite + labels.txt.

The model is served.py's wrapper (uint8 `image` in, calibrated, flip-averaged class probabilities out), so an app
needs nothing but the two files. The labels travel in labels.txt rather than inside the .tflite as TFLite metadata
(an associated labels file): the one tool that writes that metadata, tflite-support (0.4.4, its last release),
requires protobuf < 4, and TensorFlow 2.21 here needs protobuf >= 6.31.1 (constraints.txt pins 7.36.2), so pip
cannot install it beside the project's pins (`pip install --dry-run tflite-support -c constraints.txt`:
ResolutionImpossible).
"""

from __future__ import annotations

from pathlib import Path

LABELS_TXT = "labels.txt"


def labels_text(class_names) -> str:
    """labels.txt: one class name a line, in output order (Teachable Machine's and Android's label file form)."""
    return "".join(f"{name}\n" for name in class_names)


def write_labels_txt(folder: Path, class_names) -> None:
    """labels.txt beside the model (a class name with a line break in it would break the one-a-line form)."""
    bad = [name for name in class_names if "\n" in name or "\r" in name]
    if bad:
        raise ValueError(f"class names {bad!r} hold line breaks; labels.txt takes one name a line: rename the folders")
    (folder / LABELS_TXT).write_text(labels_text(class_names), encoding="utf-8")
