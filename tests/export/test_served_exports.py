"""The served exports (`onnx`, `tflite_labels`): files any program runs alone, answering as `predict` does.

Each is run here by its plain runtime (onnxruntime, ai-edge-litert's Interpreter) reading nothing but the export,
and must give predict's labels (the unsure rule included) and probabilities within 1e-4: a two-class sigmoid run
with a temperature plus a bias and an unsure rule, and a three-class softmax run with vector scaling and test-time
flips on a model that answers a mirrored image otherwise."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from horses_humans.cli.main import main
from horses_humans.data.images import load_pixels
from horses_humans.data.layouts import VALIDATION
from horses_humans.export import clients, formats, served
from horses_humans.export import pipeline as ex
from horses_humans.export.onnx_file import metadata, read_metadata
from horses_humans.export.tflite_labels import LABELS_TXT, labels_text, write_labels_txt
from horses_humans.inference.predictor import Predictor
from horses_humans.inference.unsure import UNSURE, UnsureRule, save_rule
from horses_humans.models.outputs import ClassOutput, calibrated
from horses_humans.runs.layout import EXPORT_DIR
from horses_humans.runs.store import MODEL_CARD_FILE, load_run, update_calibration

from ..centroid_runs import centroid_setup, write_centroid_run
from ..data.test_resize import edged, save_png
from ..tiers import slow_fixture

SERVED = [("onnx", "none"), ("tflite_labels", "none")]
VECTOR_SCALE, VECTOR_BIAS = [1.4, 0.8, 1.1], [0.3, -0.2, 0.0]  # large enough to move probabilities well past 1e-4
SRC = Path(__file__).resolve().parents[2] / "src"


def export_served(run: Path, data: Path) -> None:
    """Publish the run's onnx and tflite_labels exports (each must pass its parity check)."""
    source = ex.open_source(run, data, log=lambda line: None)
    for result in ex.export_all(source, SERVED, latency_runs=3):
        assert result.shipped, result.error


@pytest.fixture(scope="module")
@slow_fixture
def sigmoid_run(tmp_path_factory):
    """(run, validation images): two classes, temperature 2.0 plus a bias, an unsure rule answering about half
    unsure."""
    run, data = centroid_setup(tmp_path_factory.mktemp("sigmoid"), 2)
    update_calibration(run, method="temperature+bias", temperature=2.0, class_bias=[0.0, 0.4])
    images = sorted((data / VALIDATION).rglob("*.png"))
    confidence = [r.probability for r in Predictor.from_run(run, runtime="keras").predict_files(images)]
    save_rule(run, UnsureRule(min_confidence=float(np.median(confidence))))
    export_served(run, data)
    return run, images


@pytest.fixture(scope="module")
@slow_fixture
def softmax_tta_run(tmp_path_factory):
    """(run, validation images): three classes, a model that tells left from right, --tta, vector scaling (with a
    temperature 0.7 on top: the map's general form)."""
    run, data = centroid_setup(tmp_path_factory.mktemp("softmax"), 3, lopsided=True, tta=True)
    update_calibration(run, method="vector", temperature=0.7, class_scale=VECTOR_SCALE, class_bias=VECTOR_BIAS)
    export_served(run, data)
    return run, sorted((data / VALIDATION).rglob("*.png"))


@pytest.fixture(params=["sigmoid_run", "softmax_tta_run"])
def served_run(request):
    return request.getfixturevalue(request.param)


def load_image(path: Path, size: int) -> np.ndarray:
    """An image as a client would read it: EXIF orientation, RGB, squashed bilinear (uint8)."""
    image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), np.uint8)


def label_of(row: np.ndarray, meta: dict, names: list[str]) -> str:
    """A label from the file's metadata alone: threshold or argmax, then the reject class and unsure threshold."""
    reject = meta.get("reject_class")
    if reject is not None and row[names.index(reject)] >= row.max():
        return UNSURE
    real = [i for i, name in enumerate(names) if name != reject]
    k = int(row[1] >= float(meta["threshold"])) if meta["output_kind"] == "sigmoid" else max(real, key=row.__getitem__)
    return UNSURE if row[k] < float(meta.get("unsure_threshold", 0)) else names[k]


def plain_onnx(model_file: Path, images: list[Path]) -> tuple[list[str], np.ndarray, list[str]]:
    """(class names, probabilities (N, C), labels) from onnxruntime, knowing nothing but the .onnx file."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    names, size = json.loads(meta["class_names"]), int(meta["image_size"])
    assert meta["resize"] == "squash"
    pixels = np.stack([load_image(path, size) for path in images])
    probabilities = session.run(["probabilities"], {"image": pixels})[0]
    return names, probabilities, [label_of(row, meta, names) for row in probabilities]


def plain_litert(folder: Path, images: list[Path]) -> tuple[list[str], np.ndarray]:
    """(class names, probabilities (N, C)) from LiteRT's Interpreter and labels.txt, one image per invoke."""
    from ai_edge_litert.interpreter import Interpreter

    names = (folder / LABELS_TXT).read_text(encoding="utf-8").splitlines()
    interpreter = Interpreter(model_path=str(folder / "model.tflite"))
    interpreter.allocate_tensors()
    image, output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert image["dtype"] == np.uint8 and output["dtype"] == np.float32
    rows = []
    for path in images:
        interpreter.set_tensor(image["index"], load_image(path, int(image["shape"][1]))[None])
        interpreter.invoke()
        rows.append(np.array(interpreter.get_tensor(output["index"])[0]))
    return names, np.stack(rows)


def predicted(run: Path, images: list[Path]) -> tuple[list[str], np.ndarray]:
    """(labels, probabilities (N, C)) as `predict` answers with the Keras model."""
    rows = Predictor.from_run(run, runtime="keras").predict_files(images)
    return [r.label for r in rows], np.array([list(r.probabilities.values()) for r in rows])


# ---------------------------------------------------------------- the ONNX file


def test_plain_onnxruntime_reading_only_the_file_answers_like_predict(served_run):
    run, images = served_run
    labels, probabilities = predicted(run, images)
    names, got, got_labels = plain_onnx(run / EXPORT_DIR / "onnx" / "model.onnx", images)
    assert names == load_run(run).class_names
    assert got_labels == labels
    np.testing.assert_allclose(got, probabilities, atol=1e-4)


def test_the_sigmoid_runs_unsure_rule_is_in_the_metadata_and_answers_some_images_unsure(sigmoid_run):
    run, images = sigmoid_run
    meta = read_metadata(run / EXPORT_DIR / "onnx" / "model.onnx")
    assert float(meta["unsure_threshold"]) > 0.5 and meta["temperature_applied"] == "2.0"
    labels = plain_onnx(run / EXPORT_DIR / "onnx" / "model.onnx", images)[2]
    assert UNSURE in labels and set(labels) - {UNSURE}, "the rule must both hold back and let through some images"


def test_calibration_and_flips_are_inside_the_graph(softmax_tta_run):
    run, images = softmax_tta_run
    got = plain_onnx(run / EXPORT_DIR / "onnx" / "model.onnx", images)[1]
    plain = Predictor.uncalibrated(load_run(run))  # the model's own probabilities, no flips, no temperature
    pixels = np.stack([load_image(path, 32) for path in images])
    assert np.abs(got - plain.predict_proba(pixels)).max() > 1e-2  # so the match with predict above says something
    flips_only = Predictor.uncalibrated(load_run(run))
    flips_only.tta = True
    assert np.abs(got - flips_only.predict_proba(pixels)).max() > 1e-3
    # the whole map, per view then averaged: softmax(log p * scale / T + bias) of the image and of its mirror
    views = [plain.predict_proba(pixels), plain.predict_proba(pixels[:, :, ::-1])]
    expected = np.mean([calibrated(view, 0.7, VECTOR_SCALE, VECTOR_BIAS) for view in views], axis=0)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert np.abs(got - np.mean([calibrated(view, 0.7) for view in views], axis=0)).max() > 1e-3  # not T alone


def test_the_onnx_file_describes_itself_and_passes_the_checker(softmax_tta_run):
    import onnx

    run, _ = softmax_tta_run
    model = onnx.load(str(run / EXPORT_DIR / "onnx" / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    (image,), (output,) = model.graph.input, model.graph.output
    assert (image.name, image.type.tensor_type.elem_type) == ("image", onnx.TensorProto.UINT8)
    assert [d.dim_value for d in image.type.tensor_type.shape.dim][1:] == [32, 32, 3]
    assert (output.name, output.type.tensor_type.elem_type) == ("probabilities", onnx.TensorProto.FLOAT)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta.pop("class_names")) == load_run(run).class_names
    assert meta.pop("created_by").startswith("horses-humans ")
    assert meta == {  # no unsure rule and no reject class: those keys are left out, not written empty
        "image_size": "32",
        "resize": "squash",
        "output_kind": "softmax",
        "temperature_applied": "0.7",
        "calibration_applied": json.dumps(
            {"method": "vector", "temperature": 0.7, "class_scale": VECTOR_SCALE, "class_bias": VECTOR_BIAS}
        ),
        "flip_average_applied": "true",
        "recipe": "baseline",
        "run": run.name,
    }


def test_metadata_leaves_out_what_the_run_does_not_have(tmp_path):
    run = load_run(write_centroid_run(tmp_path, 2))
    meta = metadata(run, run.output, UnsureRule(), tta=False)
    assert set(meta) == {
        "class_names",
        "image_size",
        "resize",
        "output_kind",
        "threshold",
        "recipe",
        "run",
        "created_by",
    }
    assert meta["threshold"] == "0.5" and json.loads(meta["class_names"]) == run.class_names


def test_metadata_names_the_reject_class_and_the_unsure_threshold(tmp_path):
    run = load_run(write_centroid_run(tmp_path, 3))
    output = ClassOutput.for_classes(["horses", "humans", "neither"])
    meta = metadata(run, output, UnsureRule(0.75, "neither"), tta=False)
    assert meta["reject_class"] == "neither" and meta["unsure_threshold"] == "0.75" and "threshold" not in meta
    assert "reject_class" not in metadata(run, output, UnsureRule(0.75, None), tta=False)


# ---------------------------------------------------------------- TFLite with its labels


def test_litert_alone_with_labels_txt_answers_like_predict(served_run):
    run, images = served_run
    _, probabilities = predicted(run, images)
    names, got = plain_litert(run / EXPORT_DIR / "tflite_labels", images)
    assert names == load_run(run).class_names
    np.testing.assert_allclose(got, probabilities, atol=1e-4)


def test_labels_txt_is_one_class_a_line_and_refuses_a_name_that_would_break_it(tmp_path):
    assert labels_text(["horses", "humans", "zebra crossing"]) == "horses\nhumans\nzebra crossing\n"
    with pytest.raises(ValueError, match="line breaks"):
        write_labels_txt(tmp_path, ["horses", "two\nlines"])
    assert not (tmp_path / LABELS_TXT).exists()


# ---------------------------------------------------------------- README, model card, table


@pytest.mark.parametrize("name", ["onnx", "tflite_labels"])
def test_the_readmes_python_client_answers_like_predict(sigmoid_run, name):
    run, images = sigmoid_run
    folder = run / EXPORT_DIR / name
    client = clients.python_client((folder / clients.README_FILE).read_text())
    labels, probabilities = predicted(run, images[:3])
    for image, label, row in zip(images[:3], labels, probabilities):
        done = subprocess.run(
            [sys.executable, "-c", client, str(image)], cwd=folder, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        np.testing.assert_allclose(list(answer["probabilities"].values()), row, atol=1e-4)
        if name == "onnx":  # the ONNX client applies the unsure rule from the metadata; labels.txt has no rule
            assert answer["label"] == label


def test_every_served_folder_carries_its_model_card_readme_and_checksums(sigmoid_run):
    run, _ = sigmoid_run
    for name, extra in (("onnx", []), ("tflite_labels", [LABELS_TXT])):
        folder = run / EXPORT_DIR / name
        record = json.loads((folder / "export.json").read_text())
        expected = {MODEL_CARD_FILE, clients.README_FILE, "labels.json", formats.FORMATS[name].file, *extra}
        assert set(record["files"]) == expected
        labels = json.loads((folder / "labels.json").read_text())
        assert labels["input"]["dtype"] == "uint8" and labels["temperature"] == 1.0  # nothing to apply after it
        assert labels["temperature_applied"] == 2.0 and "class_bias" not in labels
        assert labels["calibration_applied"] == {
            "method": "temperature+bias",
            "temperature": 2.0,
            "class_bias": [0, 0.4],
        }


# tfjs has no Python runtime: its README sends Python users to the onnx export (tests/export/test_tfjs.py)
@pytest.mark.parametrize("fmt", [name for name in formats.FORMATS if name != "tfjs"])
def test_every_formats_readme_has_a_python_client_and_a_javascript_section(tmp_path, fmt):
    run = load_run(write_centroid_run(tmp_path, 2))
    text = clients.readme(fmt, formats.FORMATS[fmt].file, run)
    compile(clients.python_client(text), f"{fmt}-client.py", "exec")  # it parses
    assert "## JavaScript" in text and formats.FORMATS[fmt].file in text
    assert len(clients.python_client(text).strip().splitlines()) <= 16


# ---------------------------------------------------------------- bad input


def test_an_unknown_format_is_one_error_line(tmp_path, capsys):
    run = write_centroid_run(tmp_path, 2)
    assert main(["export", str(run), "--format", "coreml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: unknown export format 'coreml': choose one of")
    assert "onnx" in err and "tflite_labels" in err


def test_a_served_model_that_forgot_its_flips_is_never_published(softmax_tta_run, monkeypatch):
    run, _ = softmax_tta_run
    data = run.parent.parent / "data"
    source = ex.open_source(run, data, log=lambda line: None)
    real = served.served_model
    monkeypatch.setattr(served, "served_model", lambda model, output, size, tta: real(model, output, size, False))
    before = (run / EXPORT_DIR / "onnx" / "model.onnx").read_bytes()
    result = ex.export(source, "onnx", latency_runs=1)
    assert not result.shipped and result.error.startswith("parity failed: max |dp| <= 0.0001")
    assert (run / EXPORT_DIR / "onnx" / "model.onnx").read_bytes() == before  # the earlier, right one stays
    assert not [p for p in (run / EXPORT_DIR).iterdir() if p.name.startswith(".")], "staging left behind"


# ---------------------------------------------------------------- a run that crops (--resize crop)


@pytest.fixture(scope="module")
@slow_fixture
def crop_run(tmp_path_factory):
    """(run, a 301 x 180 photo): the lopsided two-class run trained --resize crop, with its onnx export."""
    root = tmp_path_factory.mktemp("crop")
    run, data = centroid_setup(root, 2, lopsided=True, resize="crop")
    result = ex.export(ex.open_source(run, data, log=lambda line: None), "onnx", latency_runs=1)
    assert result.shipped, result.error
    return run, save_png(edged(), root / "wide.png")


def test_a_crop_runs_onnx_file_says_crop_and_its_readme_client_crops_as_predict(crop_run):
    run, photo = crop_run
    folder = run / EXPORT_DIR / "onnx"
    assert read_metadata(folder / "model.onnx")["resize"] == "crop"
    assert json.loads((folder / "labels.json").read_text())["resize"] == "crop"  # what web.html's pixels.js reads
    readme = (folder / clients.README_FILE).read_text()
    assert "center-cropped to the largest square, then resized to 32x32" in readme and "(w - s) >> 1" in readme
    done = subprocess.run(
        [sys.executable, "-c", clients.python_client(readme), str(photo)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer = list(json.loads(done.stdout)["probabilities"].values())
    predictor = Predictor.from_run(run, runtime="keras")
    (row,) = predictor.predict_files([photo])
    np.testing.assert_allclose(answer, list(row.probabilities.values()), atol=1e-4)
    squashed = predictor.predict_proba(load_pixels(photo, 32)[None])[0]  # what the old squashing client computed
    assert np.abs(np.array(answer) - squashed).max() > 1e-3


@pytest.mark.parametrize("mode", ["crop", "pad"])
def test_the_tflite_labels_readme_names_the_mode_and_its_client_applies_it(tmp_path, mode):
    run = load_run(write_centroid_run(tmp_path, 2, resize=mode))
    text = clients.readme("tflite_labels", "model.tflite", run)
    assert f"this run's resize: `{mode}`" in text
    assert ("im.crop(" if mode == "crop" else "pixels.paste(") in clients.python_client(text)
    compile(clients.python_client(text), "client.py", "exec")
