"""An ONNX client that knows nothing of horses-humans: onnxruntime, numpy and Pillow, and the .onnx file alone.

Everything it needs comes from the file's metadata_props, read as docs/export.md's contract says: `class_names` (a
JSON list, output order), `image_size` (S), `resize` (squash: the whole image to S x S; crop: the centred square,
the odd pixel right and down, to S x S; pad: the long side to S, centred on black; all bilinear), `output_kind`
with `threshold` for sigmoid runs (label class 1 when its probability >= threshold, else argmax), and when present
`unsure_threshold` (answer "unsure" below that confidence) and `reject_class` (answer "unsure" when that class wins).
The graph takes uint8 RGB `image` (N, S, S, 3) and answers calibrated `probabilities` (N, C), flips averaged inside.
It deliberately imports nothing from horses_humans (tests/scripts/test_onnx_client_check.py checks its imports).

    python scripts/onnx_client.py model.onnx photo.jpg ...   # one JSON line per photo
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image, ImageOps

UNSURE = "unsure"


class OnnxClient:
    """A .onnx export, its classes and input size read from its own metadata."""

    def __init__(self, model_path: str | Path):
        self.session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        self.meta = self.session.get_modelmeta().custom_metadata_map
        self.class_names = json.loads(self.meta["class_names"])
        self.size = int(self.meta["image_size"])
        self.resize = self.meta.get("resize", "squash")
        if self.resize not in ("squash", "crop", "pad"):
            raise ValueError(f"{model_path}: resize {self.resize!r}; this client knows squash, crop and pad")

    def load(self, path: str | Path) -> np.ndarray:
        """A photo as the contract says: EXIF orientation applied, RGB, brought to S x S by `resize`, uint8."""
        with Image.open(path) as image:
            rgb = ImageOps.exif_transpose(image).convert("RGB")
        size, (width, height) = self.size, rgb.size
        if self.resize == "crop":
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            rgb = rgb.crop((left, top, left + side, top + side))
        elif self.resize == "pad":
            longest = max(width, height)
            fitted = tuple(max(1, (side * size + longest // 2) // longest) for side in (width, height))
            canvas = Image.new("RGB", (size, size))  # black
            corner = ((size - fitted[0]) // 2, (size - fitted[1]) // 2)
            canvas.paste(rgb.resize(fitted, Image.Resampling.BILINEAR), corner)
            return np.asarray(canvas, np.uint8)
        return np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR), np.uint8)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 -> (N, C) calibrated probabilities, flips averaged in the graph."""
        return self.session.run(["probabilities"], {"image": pixels})[0]

    def label(self, row: np.ndarray) -> str:
        """One row's answer: the reject class winning or too little confidence is "unsure", else the class."""
        names, meta = self.class_names, self.meta
        reject = meta.get("reject_class")
        if reject is not None and row[names.index(reject)] >= row.max():
            return UNSURE
        if meta["output_kind"] == "sigmoid":
            k = int(row[1] >= float(meta["threshold"]))
        else:
            k = max((i for i, name in enumerate(names) if name != reject), key=lambda i: row[i])
        return UNSURE if row[k] < float(meta.get("unsure_threshold", 0.0)) else names[k]

    def classify(self, paths: list[Path], batch: int = 16) -> list[tuple[str, np.ndarray]]:
        """(label, probabilities) for each photo, in order."""
        answers = []
        for start in range(0, len(paths), batch):
            pixels = np.stack([self.load(path) for path in paths[start : start + batch]])
            answers += [(self.label(row), row) for row in self.probabilities(pixels)]
        return answers


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python onnx_client.py MODEL.onnx PHOTO [PHOTO ...]", file=sys.stderr)
        return 2
    client = OnnxClient(argv[0])
    for path, (label, row) in zip(argv[1:], client.classify([Path(p) for p in argv[1:]])):
        print(json.dumps({"file": path, "label": label, "probabilities": dict(zip(client.class_names, row.tolist()))}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
