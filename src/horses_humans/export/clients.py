"""README.md of an export folder: what the files are, and a short client in Python and in JavaScript.

The Python clients are runnable as they stand (`python client.py photo.jpg` in the export folder) and print one JSON
line, {"label", "probabilities"}; tests run the served formats' ones against the exported file. Every client loads an
image as load_pixels does (EXIF orientation, RGB, squashed to S x S with bilinear resampling).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core.atomic import write_text_atomic
from ..runs.store import Run

README_FILE = "README.md"

LOAD_IMAGE = (
    'pixels = np.asarray(ImageOps.exif_transpose(Image.open(sys.argv[1])).convert("RGB")'
    ".resize((size, size), Image.BILINEAR), np.uint8)  # squash"
)

ONNX_PYTHON = f"""import json, sys
import numpy as np, onnxruntime as ort
from PIL import Image, ImageOps

session = ort.InferenceSession("model.onnx")
meta = session.get_modelmeta().custom_metadata_map  # everything a client needs travels in the file
names, size = json.loads(meta["class_names"]), int(meta["image_size"])
{LOAD_IMAGE}
p = session.run(["probabilities"], {{"image": pixels[None]}})[0][0]  # calibrated, flips averaged inside
real = [i for i, name in enumerate(names) if name != meta.get("reject_class")]
k = int(p[1] >= float(meta["threshold"])) if meta["output_kind"] == "sigmoid" else max(real, key=lambda i: p[i])
rejected = "reject_class" in meta and p[names.index(meta["reject_class"])] >= p.max()
unsure = rejected or p[k] < float(meta.get("unsure_threshold", 0))
print(json.dumps({{"label": "unsure" if unsure else names[k], "probabilities": dict(zip(names, p.tolist()))}}))
"""

ONNX_JS = """import * as ort from "https://cdn.jsdelivr.net/npm/onnxruntime-web@1.30.0/dist/ort.min.mjs";
const labels = await (await fetch("labels.json")).json();  // the class names and size (also in the file's metadata)
const session = await ort.InferenceSession.create("model.onnx");
const size = labels.input_size, ctx = new OffscreenCanvas(size, size).getContext("2d");
const photo = await createImageBitmap(await (await fetch("photo.jpg")).blob());
ctx.drawImage(photo, 0, 0, size, size);  // squash, with the browser's resampling (close to, not exactly, Pillow's)
const rgba = ctx.getImageData(0, 0, size, size).data, rgb = new Uint8Array(size * size * 3);
for (let i = 0; i < size * size; i++) rgb.set(rgba.subarray(4 * i, 4 * i + 3), 3 * i);
const { probabilities } = await session.run({ image: new ort.Tensor("uint8", rgb, [1, size, size, 3]) });
console.log(Object.fromEntries(labels.class_names.map((name, i) => [name, probabilities.data[i]])));
"""

TFLITE_LABELS_PYTHON = f"""import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image, ImageOps

names = open("labels.txt", encoding="utf-8").read().splitlines()
interpreter = Interpreter(model_path="model.tflite")
interpreter.allocate_tensors()
image, output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
size = int(image["shape"][1])
{LOAD_IMAGE}
interpreter.set_tensor(image["index"], pixels[None])
interpreter.invoke()
p = interpreter.get_tensor(output["index"])[0]  # calibrated, flips averaged inside
print(json.dumps({{"label": names[int(p.argmax())], "probabilities": dict(zip(names, p.tolist()))}}))
"""

RAW_NOTE = (
    "It answers the model's raw output layer for float32 pixels: turn it into class probabilities as labels.json "
    "says (`output`; `temperature`, `class_scale` and `class_bias`: softmax(log p * class_scale / temperature + "
    "class_bias), absent ones 1 and 0; and mirror the image and average when the run has test-time flips). The `onnx` "
    "and `tflite_labels` exports do all of that inside the model."
)

RAW_PYTHON = {
    "web": """import json, sys
import numpy as np, onnxruntime as ort
from PIL import Image, ImageOps

labels = json.load(open("labels.json"))
size, names = labels["input_size"], labels["class_names"]
session = ort.InferenceSession("model.onnx")
{load}
raw = session.run(None, {{session.get_inputs()[0].name: pixels[None].astype(np.float32)}})[0][0]
p = np.array([1 - raw[0], raw[0]]) if labels["output_kind"] == "sigmoid" else raw  # uncalibrated
print(json.dumps({{"label": names[int(p.argmax())], "probabilities": dict(zip(names, p.tolist()))}}))
""",
    "tflite": """import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image, ImageOps

labels = json.load(open("labels.json"))
size, names = labels["input_size"], labels["class_names"]
interpreter = Interpreter(model_path="model.tflite")
interpreter.allocate_tensors()
{load}
interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels[None].astype(np.float32))
interpreter.invoke()
raw = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
p = np.array([1 - raw[0], raw[0]]) if labels["output_kind"] == "sigmoid" else raw  # uncalibrated
print(json.dumps({{"label": names[int(p.argmax())], "probabilities": dict(zip(names, p.tolist()))}}))
""",
    "keras": """import json, sys
import keras, numpy as np
from PIL import Image, ImageOps

labels = json.load(open("labels.json"))
size, names = labels["input_size"], labels["class_names"]
model = keras.saving.load_model("model.keras", compile=False)
{load}
raw = model.predict(pixels[None].astype(np.float32), verbose=0)[0]
p = np.array([1 - raw[0], raw[0]]) if labels["output_kind"] == "sigmoid" else raw  # uncalibrated
print(json.dumps({{"label": names[int(p.argmax())], "probabilities": dict(zip(names, p.tolist()))}}))
""",
    "savedmodel": """import json, sys
import numpy as np, tensorflow as tf
from PIL import Image, ImageOps

labels = json.load(open("labels.json"))
size, names = labels["input_size"], labels["class_names"]
model = tf.saved_model.load("saved_model")
{load}
raw = model.serve(pixels[None].astype(np.float32)).numpy()[0]
p = np.array([1 - raw[0], raw[0]]) if labels["output_kind"] == "sigmoid" else raw  # uncalibrated
print(json.dumps({{"label": names[int(p.argmax())], "probabilities": dict(zip(names, p.tolist()))}}))
""",
}

NO_JS = (
    "No JavaScript runtime is checked for this format. For a web page or Node, export the run with "
    "`--format onnx` and use that folder's README client (ONNX Runtime Web)."
)

SERVED_NOTE = {
    "onnx": (
        "`model.onnx` describes itself: input `image`, uint8 RGB (N, S, S, 3); output `probabilities`, float32 (N, C), "
        "calibrated and (for runs with test-time flips) averaged with the mirrored image's inside the graph. Its "
        "metadata_props hold `class_names` (a JSON list), `image_size`, `resize`, `output_kind`, `threshold` (sigmoid "
        "runs), `unsure_threshold` and `reject_class` (when the run has them), `recipe`, `run` and `created_by`."
    ),
    "tflite_labels": (
        "`model.tflite` takes uint8 RGB (1, S, S, 3) and answers class probabilities (1, C), calibrated and flip-"
        "averaged inside; `labels.txt` names the classes, one a line, in output order (Teachable Machine's form). "
        "labels.json adds the run's threshold and unsure rule."
    ),
}


def readme(fmt: str, model_file: str, run: Run) -> str:
    """The README.md text of an export of `fmt` (a pipeline.FORMATS name)."""
    python, js = client_python(fmt), ONNX_JS if fmt == "onnx" else NO_JS
    about = SERVED_NOTE.get(fmt, f"`{model_file}`. {RAW_NOTE}")
    js_block = f"```js\n{js}```\n" if js is ONNX_JS else f"{js}\n"
    return (
        f"# {run.path.name}: the {fmt} export\n\n"
        f"{run.config.recipe}, {run.image_size} px, classes {', '.join(run.class_names)}. "
        "MODEL_CARD.md says what it was trained on and how well it does; export.json how closely this file follows "
        "the Keras model, and the sha256 of every file.\n\n"
        f"{about}\n\n"
        "Images are read as `horses-humans predict` reads them: EXIF orientation applied, RGB, squashed to S x S "
        "with bilinear resampling.\n\n"
        "## Python\n\nSave as client.py in this folder and run `python client.py photo.jpg`:\n\n"
        f"```python\n{python}```\n\n"
        f"## JavaScript\n\n{js_block}"
    )


def client_python(fmt: str) -> str:
    """The Python client of a format's README."""
    if fmt == "onnx":
        return ONNX_PYTHON
    if fmt == "tflite_labels":
        return TFLITE_LABELS_PYTHON
    return RAW_PYTHON[fmt].format(load=LOAD_IMAGE)


def write_readme(folder: Path, fmt: str, model_file: str, run: Run) -> None:
    """README.md in an export folder."""
    write_text_atomic(folder / README_FILE, readme(fmt, model_file, run))


def python_client(text: str) -> str:
    """The Python client of a README's text (its first ```python block)."""
    found = re.search(r"```python\n(.*?)```", text, re.S)
    if found is None:
        raise ValueError("the README holds no ```python block")
    return found.group(1)
