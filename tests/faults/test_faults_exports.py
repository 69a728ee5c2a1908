"""Damaged exports, done for real: bits flipped, files cut short or zeroed, export.json and labels.json garbled or
wrong-typed, a weight overwritten with NaN. An export never answers silently wrong: `--runtime onnx|tflite` is one
`error:` line naming the file and the `export` command that rebuilds it (exit 2, in predict and serve alike), `auto`
warns and answers with the Keras model, and a model that answers NaN gives each image an error, never a label."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from horses_humans.cli.main import main
from horses_humans.data.layouts import VALIDATION
from horses_humans.runs.layout import EXPORT_DIR, EXPORT_LABELS_FILE, EXPORT_RECORD_FILE

from ..centroid_runs import centroid_weights
from ..exported_runs import exported_centroid_run

MODEL_FILES = {"tflite": "model.tflite", "web": "model.onnx"}  # export folder -> its model file
RUNTIME_OF = {"tflite": "tflite", "web": "onnx"}
NAN = np.float32(np.nan).tobytes()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(run, data): a two-class centroid run with float web (ONNX) and TFLite exports."""
    return exported_centroid_run(tmp_path_factory.mktemp("exported"), 2, [("web", "none"), ("tflite", "none")])


@pytest.fixture
def run_copy(exported, tmp_path):
    """A fresh copy of the exported run to damage, and its validation images."""
    run, data = exported
    return shutil.copytree(run, tmp_path / "runs" / run.name), sorted((data / VALIDATION).rglob("*.png"))


@pytest.fixture
def no_server(monkeypatch):
    """`serve` must fail before it listens: reaching serve.server.serve is a failure here, not a hang."""
    from horses_humans.serve import server

    def refuse(*args, **kwargs):
        raise AssertionError("the server started on a damaged export")

    monkeypatch.setattr(server, "serve", refuse)


def model_file(run, export: str):
    return run / EXPORT_DIR / export / MODEL_FILES[export]


def damage(path, how: str) -> None:
    """One fault, done to the file's bytes."""
    data = bytearray(path.read_bytes())
    if how == "bit flip":
        data[len(data) // 2] ^= 0x10  # one bit, in the middle
    elif how == "truncated":
        data = data[: len(data) // 2]
    elif how == "zeroed":
        data = bytearray(len(data))
    path.write_bytes(bytes(data))


def poison_weight(path) -> None:
    """Overwrite one output-layer weight (its float32 bytes, found once in the file) with NaN: as a flipped exponent
    bit does."""
    kernel, _ = centroid_weights(2)
    weight = kernel.max().tobytes()  # the bias (0) and the other weights' bytes are too common to find
    data = path.read_bytes()
    assert data.count(weight) == 1, "the weight is not stored once as plain float32 in this file"
    path.write_bytes(data.replace(weight, NAN))


def rerecord(run, export: str) -> None:
    """Record the export's current files in export.json, as if it had been made that way (a converter that wrote a
    bad model would be recorded so): only the answers can show the damage then."""
    record_path = run / EXPORT_DIR / export / EXPORT_RECORD_FILE
    record = json.loads(record_path.read_text())
    for name in record["files"]:
        data = (record_path.parent / name).read_bytes()
        record["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    record_path.write_text(json.dumps(record))


def edit_json(path, **changes) -> None:
    """Rewrite a JSON file with some keys changed (None drops the key)."""
    record = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps({k: v for k, v in record.items() if v is not None}))


def assert_one_error(rc: int, err: str, path, rebuild: str) -> None:
    """Exit 2, one `error:` line naming the file and the command that rebuilds it, no traceback."""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 2, err
    assert len(errors) == 1 and str(path) in errors[0] and rebuild in errors[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("export", ["tflite", "web"])
@pytest.mark.parametrize("how", ["bit flip", "truncated", "zeroed"])
def test_a_damaged_model_file_is_one_error_line_naming_it_and_the_rebuild(run_copy, export, how, capsys):
    run, images = run_copy
    damage(model_file(run, export), how)
    rc = main(["predict", str(run), str(images[0]), "--runtime", RUNTIME_OF[export]])
    out, err = capsys.readouterr()
    assert_one_error(rc, err, model_file(run, export), f"horses-humans export {run} --format {export}")
    assert out == ""  # no row: nothing answered


@pytest.mark.parametrize("how", ["bit flip", "truncated", "zeroed"])
def test_serve_with_a_damaged_export_exits_2_before_listening(run_copy, how, capsys, no_server):
    run, _ = run_copy
    damage(model_file(run, "tflite"), how)
    rc = main(["serve", str(run), "--runtime", "tflite", "--port", "8768"])
    assert_one_error(rc, capsys.readouterr().err, model_file(run, "tflite"), "--format tflite")


@pytest.mark.parametrize(
    "name, changes, problem",
    [
        (EXPORT_RECORD_FILE, {"parity": "yes"}, "parity: Input should be an object"),
        (EXPORT_RECORD_FILE, {"latency_ms_p50": "fast"}, "latency_ms_p50: Input should be a valid number"),
        (EXPORT_RECORD_FILE, {"checkpoint_file": "../../elsewhere.keras"}, "checkpoint_file: Input should be"),
        (EXPORT_LABELS_FILE, {"model_file": "../../../etc/passwd"}, "model_file: String should match"),
        (EXPORT_LABELS_FILE, {"class_names": "horses"}, "class_names: Input should be a valid array"),
    ],
)
def test_a_wrong_export_record_is_one_error_line_naming_it(run_copy, name, changes, problem, capsys):
    run, images = run_copy
    edit_json(run / EXPORT_DIR / "web" / name, **changes)
    rc = main(["predict", str(run), str(images[0]), "--runtime", "onnx"])
    err = capsys.readouterr().err
    assert_one_error(rc, err, run / EXPORT_DIR / "web" / name, "--format web")
    assert problem in err


def test_a_garbled_export_record_is_one_error_line_naming_it(run_copy, capsys):
    run, images = run_copy
    (run / EXPORT_DIR / "tflite" / EXPORT_RECORD_FILE).write_bytes(b"\xff{not json")
    rc = main(["predict", str(run), str(images[0]), "--runtime", "tflite"])
    err = capsys.readouterr().err
    assert_one_error(rc, err, run / EXPORT_DIR / "tflite" / EXPORT_RECORD_FILE, "--format tflite")
    assert "not valid JSON" in err


def keras_labels(run, images, capsys) -> list:
    """The Keras model's labels for the images (predict --runtime keras --json)."""
    assert main(["predict", str(run), *map(str, images), "--runtime", "keras", "--json"]) == 0
    return [row["label"] for row in json.loads(capsys.readouterr().out)]


@pytest.mark.parametrize("fault", ["bit flip", "zeroed", "parity yes"])
def test_auto_warns_of_a_damaged_export_and_answers_with_keras(run_copy, fault, capsys):
    run, images = run_copy
    expected = keras_labels(run, images, capsys)
    for export in ("tflite", "web"):  # whichever auto would pick
        if fault == "parity yes":
            edit_json(run / EXPORT_DIR / export / EXPORT_RECORD_FILE, parity="yes")
        else:
            damage(model_file(run, export), fault)
    assert main(["predict", str(run), *map(str, images), "--runtime", "auto", "--json"]) == 0
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "Answering with the Keras model" in warnings[0], err
    assert f"{run / EXPORT_DIR}/" in warnings[0] and "horses-humans export" in warnings[0]
    assert "answering with Keras (model.keras)" in err and "Traceback" not in err
    assert [row["label"] for row in json.loads(out)] == expected


def test_an_export_made_before_checksums_answers_under_auto_with_a_note(run_copy, capsys):
    run, images = run_copy
    for export in ("tflite", "web"):
        edit_json(run / EXPORT_DIR / export / EXPORT_RECORD_FILE, files=None)  # as exports were written before
    expected = keras_labels(run, images, capsys)
    assert main(["predict", str(run), *map(str, images), "--runtime", "auto", "--json"]) == 0
    out, err = capsys.readouterr()
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "unverified" in notes[0] and "horses-humans export" in notes[0], err
    assert "answering with Keras" not in err  # the export answers
    assert [row["label"] for row in json.loads(out)] == expected


@pytest.mark.parametrize("export", ["tflite", "web"])
def test_a_model_that_answers_nan_gives_each_image_an_error_never_a_label(run_copy, export, capsys):
    run, images = run_copy
    poison_weight(model_file(run, export))
    rerecord(run, export)  # the checksums match: only the answers can tell
    rc = main(["predict", str(run), *map(str, images), "--runtime", RUNTIME_OF[export], "--json"])
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert rc == 1 and len(rows) == len(images), err  # no file could be predicted
    assert all(row["label"] is None and row["probabilities"] is None for row in rows)
    assert all("NaN" in row["error"] for row in rows)


def test_the_server_answers_a_nan_model_with_an_error_never_a_label(run_copy):
    from fastapi.testclient import TestClient

    from horses_humans.serve.app import create_app
    from horses_humans.serve.settings import ServeSettings

    run, images = run_copy
    poison_weight(model_file(run, "tflite"))
    rerecord(run, "tflite")
    files = [("files", (path.name, path.read_bytes(), "image/png")) for path in images[:3]]
    with TestClient(create_app(ServeSettings(run=run, runtime="tflite"))) as client:
        response = client.post("/v1/predict", files=files)
    body = response.json()
    assert response.status_code == 500 and "NaN" in body["error"]
    assert [r.get("label") for r in body["results"]] == [None] * 3


def test_the_intact_exports_answer_like_keras(run_copy, capsys):
    run, images = run_copy
    expected = keras_labels(run, images, capsys)
    for runtime in ("onnx", "tflite", "auto"):
        assert main(["predict", str(run), *map(str, images), "--runtime", runtime, "--json"]) == 0
        out, err = capsys.readouterr()
        assert [row["label"] for row in json.loads(out)] == expected
        assert "warning:" not in err and "note:" not in err and "answering with Keras" not in err
