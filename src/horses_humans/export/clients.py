"""README.md of an export folder: what the files are, and a short client in Python and in JavaScript.

The Python clients are runnable as they stand (`python client.py photo.jpg` in the export folder) and print one JSON
line, {"label", "probabilities"}; tests run the served formats' ones against the exported file. Every client loads an
image as load_pixels does (EXIF orientation, RGB, then squashed, cropped or padded to S x S as the run's `resize` says,
with bilinear resampling: images.fit_square's steps, written out).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core.atomic import write_text_atomic
from ..data.images import describe_resize
from ..runs.store import Run

README_FILE = "README.md"

OPEN_IMAGE = 'im = ImageOps.exif_transpose(Image.open(sys.argv[1])).convert("RGB")\n'
LOAD_IMAGE = {  # the run's resize (images.fit_square), written out: each README's client carries its run's
    "squash": "pixels = np.asarray(im.resize((size, size), Image.BILINEAR), np.uint8)  # squash: the whole image\n",
    "crop": (
        "s = min(im.size)  # crop: the centred square (the odd pixel right and down), then resized\n"
        "x, y = (im.width - s) // 2, (im.height - s) // 2\n"
        "im = im.crop((x, y, x + s, y + s))\n"
        "pixels = np.asarray(im.resize((size, size), Image.BILINEAR), np.uint8)\n"
    ),
    "pad": (
        'm, pixels = max(im.size), Image.new("RGB", (size, size))  # pad: the long side to size, centred on black\n'
        "im = im.resize(tuple(max(1, (side * size + m // 2) // m) for side in im.size), Image.BILINEAR)\n"
        "pixels.paste(im, ((size - im.width) // 2, (size - im.height) // 2))\n"
        "pixels = np.asarray(pixels, np.uint8)\n"
    ),
}

ONNX_PYTHON = """import json, sys
import numpy as np, onnxruntime as ort
from PIL import Image, ImageOps

session = ort.InferenceSession("model.onnx")
meta = session.get_modelmeta().custom_metadata_map  # everything a client needs travels in the file
names, size = json.loads(meta["class_names"]), int(meta["image_size"])
{load}p = session.run(["probabilities"], {{"image": pixels[None]}})[0][0]  # calibrated, flips averaged inside
real = [i for i, name in enumerate(names) if name != meta.get("reject_class")]
k = int(p[1] >= float(meta["threshold"])) if meta["output_kind"] == "sigmoid" else max(real, key=lambda i: p[i])
rejected = "reject_class" in meta and p[names.index(meta["reject_class"])] >= p.max()
unsure = rejected or p[k] < float(meta.get("unsure_threshold", 0))
print(json.dumps({{"label": "unsure" if unsure else names[k], "probabilities": dict(zip(names, p.tolist()))}}))
"""

# the run's resize in the browser: the canvas resamples close to, not exactly as, Pillow (web.html's pixels.js does it
# exactly)
JS_RESIZE = {
    "squash": "ctx.drawImage(photo, 0, 0, size, size);  // squash: the whole image\n",
    "crop": (
        "const s = Math.min(w, h);  // crop: the centred square, then resized\n"
        "ctx.drawImage(photo, (w - s) >> 1, (h - s) >> 1, s, s, 0, 0, size, size);\n"
    ),
    "pad": (
        "const m = Math.max(w, h), fit = (side) => Math.max(1, Math.floor((side * size + Math.floor(m / 2)) / m));\n"
        'ctx.fillStyle = "#000"; ctx.fillRect(0, 0, size, size);  // pad: the long side to size, centred on black\n'
        "ctx.drawImage(photo, (size - fit(w)) >> 1, (size - fit(h)) >> 1, fit(w), fit(h));\n"
    ),
}

ONNX_JS = """import * as ort from "https://cdn.jsdelivr.net/npm/onnxruntime-web@1.30.0/dist/ort.min.mjs";
const labels = await (await fetch("labels.json")).json();  // the class names and size (also in the file's metadata)
const session = await ort.InferenceSession.create("model.onnx");
const size = labels.input_size, ctx = new OffscreenCanvas(size, size).getContext("2d");
const photo = await createImageBitmap(await (await fetch("photo.jpg")).blob()), w = photo.width, h = photo.height;
RESIZE_STEPconst rgba = ctx.getImageData(0, 0, size, size).data, rgb = new Uint8Array(size * size * 3);
for (let i = 0; i < size * size; i++) rgb.set(rgba.subarray(4 * i, 4 * i + 3), 3 * i);
const { probabilities } = await session.run({ image: new ort.Tensor("uint8", rgb, [1, size, size, 3]) });
console.log(Object.fromEntries(labels.class_names.map((name, i) => [name, probabilities.data[i]])));
"""

TFJS_JS = """import * as tf from "https://cdn.jsdelivr.net/npm/@tensorflow/tfjs@4.22.0/dist/tf.fesm.min.js";
const model = await tf.loadGraphModel("./model.json");  // "./": TF.js fetches the shards beside what it names
const meta = model.metadata.horses_humans, names = meta.class_names, size = meta.image_size;
const ctx = new OffscreenCanvas(size, size).getContext("2d");
const photo = await createImageBitmap(await (await fetch("photo.jpg")).blob()), w = photo.width, h = photo.height;
RESIZE_STEPconst rgb = tf.tidy(() => tf.browser.fromPixels(ctx.getImageData(0, 0, size, size)).expandDims(0));
const p = await model.predict(rgb).data();  // calibrated, flips averaged in the model
const real = names.map((_, i) => i).filter((i) => names[i] !== meta.reject_class);
const best = real.reduce((a, i) => (p[i] > p[a] ? i : a));
const k = meta.output_kind === "sigmoid" ? Number(p[1] >= meta.threshold) : best;
const rejected = meta.reject_class !== undefined && p[names.indexOf(meta.reject_class)] >= Math.max(...p);
const unsure = rejected || p[k] < (meta.unsure_threshold ?? 0);
console.log(unsure ? "unsure" : names[k], Object.fromEntries(names.map((name, i) => [name, p[i]])));
"""

TFLITE_LABELS_PYTHON = """import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image, ImageOps

names = open("labels.txt", encoding="utf-8").read().splitlines()
interpreter = Interpreter(model_path="model.tflite")
interpreter.allocate_tensors()
image, output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
size = int(image["shape"][1])
{load}interpreter.set_tensor(image["index"], pixels[None])
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
{load}raw = session.run(None, {{session.get_inputs()[0].name: pixels[None].astype(np.float32)}})[0][0]
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
{load}interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels[None].astype(np.float32))
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
{load}raw = model.predict(pixels[None].astype(np.float32), verbose=0)[0]
p = np.array([1 - raw[0], raw[0]]) if labels["output_kind"] == "sigmoid" else raw  # uncalibrated
print(json.dumps({{"label": names[int(p.argmax())], "probabilities": dict(zip(names, p.tolist()))}}))
""",
    "savedmodel": """import json, sys
import numpy as np, tensorflow as tf
from PIL import Image, ImageOps

labels = json.load(open("labels.json"))
size, names = labels["input_size"], labels["class_names"]
model = tf.saved_model.load("saved_model")
{load}raw = model.serve(pixels[None].astype(np.float32)).numpy()[0]
p = np.array([1 - raw[0], raw[0]]) if labels["output_kind"] == "sigmoid" else raw  # uncalibrated
print(json.dumps({{"label": names[int(p.argmax())], "probabilities": dict(zip(names, p.tolist()))}}))
""",
}

NO_JS = (
    "No JavaScript runtime is checked for this format. For a web page or Node, export the run with "
    "`--format onnx` and use that folder's README client (ONNX Runtime Web)."
)

NO_PYTHON = (
    "No Python runtime reads TF.js graph models: in Python, use the onnx export of the same run (`horses-humans "
    "export RUN --format onnx`), the same model and metadata in one file."
)

JS_CLIENTS = {"onnx": ONNX_JS, "tfjs": TFJS_JS}

SERVED_NOTE = {
    "onnx": (
        "`model.onnx` describes itself: input `image`, uint8 RGB (N, S, S, 3); output `probabilities`, float32 (N, C), "
        "calibrated and (for runs with test-time flips) averaged with the mirrored image's inside the graph. Its "
        "metadata_props hold `class_names` (a JSON list), `image_size`, `resize`, `output_kind`, `threshold` (sigmoid "
        "runs), `unsure_threshold` and `reject_class` (when the run has them), `recipe`, `run` and `created_by`."
    ),
    "tfjs": (
        "`model.json` and its `group1-shard*.bin` weights are a TF.js graph model (the official converter, "
        "tensorflowjs): input `image`, RGB (N, S, S, 3) integers 0-255; output `probabilities` (N, C), calibrated and "
        "flip-averaged inside. model.json's `userDefinedMetadata.horses_humans` holds the same keys as the onnx "
        "export's metadata (`class_names`, `image_size`, `resize`, `output_kind`, `threshold`, `unsure_threshold`, "
        "`reject_class`, ...). Serve the folder over HTTP: a page opened as a file cannot fetch the shards."
    ),
    "tflite_labels": (
        "`model.tflite` takes uint8 RGB (1, S, S, 3) and answers class probabilities (1, C), calibrated and flip-"
        "averaged inside; `labels.txt` names the classes, one a line, in output order (Teachable Machine's form). "
        "labels.json adds the run's threshold and unsure rule."
    ),
}


def readme(fmt: str, model_file: str, run: Run) -> str:
    """The README.md text of an export of `fmt` (a pipeline.FORMATS name), its clients resizing as the run does."""
    python, js = client_python(fmt, run.resize), client_js(fmt, run.resize)
    about = SERVED_NOTE.get(fmt, f"`{model_file}`. {RAW_NOTE}")
    js_block = f"```js\n{js}```\n" if js else f"{NO_JS}\n"
    python_block = (
        f"Save as client.py in this folder and run `python client.py photo.jpg`:\n\n```python\n{python}```\n"
        if python
        else f"{NO_PYTHON}\n"
    )
    return (
        f"# {run.path.name}: the {fmt} export\n\n"
        f"{run.config.recipe}, {run.image_size} px, classes {', '.join(run.class_names)}. "
        "MODEL_CARD.md says what it was trained on and how well it does; export.json how closely this file follows "
        "the Keras model, and the sha256 of every file.\n\n"
        f"{about}\n\n"
        "Images are read as `horses-humans predict` reads them: EXIF orientation applied, RGB, "
        f"{describe_resize(run.resize, run.image_size)} with bilinear resampling (this run's resize: "
        f"`{run.resize}`, also in labels.json; the clients below do it).\n\n"
        f"## Python\n\n{python_block}\n"
        f"## JavaScript\n\n{js_block}"
    )


def client_python(fmt: str, resize: str = "squash") -> str:
    """The Python client of a format's README, bringing an image to the input size by `resize` as the run does ("" for
    tfjs: no Python runtime reads TF.js graph models)."""
    if fmt == "tfjs":
        return ""
    template = {"onnx": ONNX_PYTHON, "tflite_labels": TFLITE_LABELS_PYTHON}.get(fmt) or RAW_PYTHON[fmt]
    return template.format(load=OPEN_IMAGE + LOAD_IMAGE[resize])


def client_js(fmt: str, resize: str = "squash") -> str:
    """The JavaScript client of a format's README (ONNX Runtime Web or TF.js; "" for the others), resizing by `resize`
    on a canvas."""
    template = JS_CLIENTS.get(fmt)
    return template.replace("RESIZE_STEP", JS_RESIZE[resize]) if template else ""


def write_readme(folder: Path, fmt: str, model_file: str, run: Run) -> None:
    """README.md in an export folder."""
    write_text_atomic(folder / README_FILE, readme(fmt, model_file, run))


def python_client(text: str) -> str:
    """The Python client of a README's text (its first ```python block)."""
    found = re.search(r"```python\n(.*?)```", text, re.S)
    if found is None:
        raise ValueError("the README holds no ```python block")
    return found.group(1)
