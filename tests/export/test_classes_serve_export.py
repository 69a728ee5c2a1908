"""The server, the runtimes and every export with its parity check on 2, 3 and 5 classes (a tiny hand-set model per
class count, tests/centroid_runs.py: no training, so these do not depend on the recipes)."""

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from horses_humans.data.images import load_pixels
from horses_humans.data.layouts import VALIDATION
from horses_humans.export import formats
from horses_humans.export import pipeline as ex
from horses_humans.inference.predictor import Predictor
from horses_humans.inference.runtimes import Runtime
from horses_humans.runs.store import load_run
from horses_humans.serve.app import create_app
from horses_humans.serve.settings import ServeSettings

from ..centroid_runs import centroid_setup
from ..synthetic import class_names
from ..tiers import slow_fixture
from .test_export import RAW, SERVED, standard_predictions
from .test_served_exports import plain_litert, plain_onnx

COUNTS = (2, 3, 5)


@pytest.fixture(scope="module", params=COUNTS, ids=lambda n: f"{n}-classes")
def setup(request, tmp_path_factory):
    """(n, run dir, data dir) for each class count."""
    n = request.param
    return (n, *centroid_setup(tmp_path_factory.mktemp(f"classes{n}"), n))


def validation_files(data, n) -> list:
    """(class index, path) of one validation image of each class."""
    return [(i, sorted((data / VALIDATION / name).iterdir())[0]) for i, name in enumerate(class_names(n))]


# ---------------------------------------------------------------- the server


@pytest.fixture(scope="module")
def served(setup):
    n, run, data = setup
    with TestClient(create_app(ServeSettings(run=run))) as client:
        yield n, run, data, client


def test_model_card_states_the_classes_and_how_to_read_the_output(served):
    n, run, _, client = served
    info = client.get("/v1/model").json()
    assert info["class_names"] == class_names(n) and info["input_size"] == 32
    if n == 2:
        assert info["output_kind"] == "sigmoid" and info["threshold"] == 0.5 and "'humans'" in info["output"]
    else:
        assert (
            info["output_kind"] == "softmax"
            and info["threshold"] is None
            and f"softmax over {n} units" in info["output"]
        )


def test_every_class_is_answered_with_its_probability_and_all_others(served):
    n, _, data, client = served
    files = validation_files(data, n)
    uploads = [("files", (path.name, path.read_bytes(), "image/png")) for _, path in files]
    results = client.post("/v1/predict", files=uploads).json()["results"]
    names = class_names(n)
    assert [r["label"] for r in results] == names  # one image of each class, each labelled right
    for r in results:
        assert list(r["probabilities"]) == names and sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert r["probability"] == r["probabilities"][r["label"]] == max(r["probabilities"].values())
    assert results[0]["probability"] > 0.5  # class 0's probability on a class-0 image, not P(class 1)


def test_server_answers_match_the_predictor(served):
    n, run, data, client = served
    path = validation_files(data, n)[-1][1]
    expected = Predictor.from_run(run, runtime="keras").predict_proba(load_pixels(path, 32)[None])[0]
    result = client.post("/v1/predict", files=[("files", (path.name, path.read_bytes(), "image/png"))]).json()[
        "results"
    ][0]
    np.testing.assert_allclose(list(result["probabilities"].values()), expected, atol=1e-6)


def test_gradcam_explains_the_label_given(served, monkeypatch):
    from horses_humans.analysis import explain

    n, _, data, client = served
    explained, real = [], explain.gradcam
    monkeypatch.setattr(
        explain,
        "gradcam",
        lambda model, pixels, layer, class_index=None: (
            explained.append(class_index) or real(model, pixels, layer, class_index)
        ),
    )
    uploads = [("files", (path.name, path.read_bytes(), "image/png")) for _, path in validation_files(data, n)]
    results = client.post("/v1/predict?gradcam=true", files=uploads).json()["results"]
    assert all(r["gradcam"].startswith("data:image/png;base64,") for r in results)
    assert sorted(explained) == list(range(n))  # each image's own label, one per class


def test_sigmoid_labels_follow_the_runs_threshold(tmp_path):
    run, data = centroid_setup(tmp_path, 2)
    labels = json.loads((run / "labels.json").read_text())
    (run / "labels.json").write_text(json.dumps({**labels, "threshold": 0.999}))  # almost nothing is `humans` now
    human = validation_files(data, 2)[1][1]
    with TestClient(create_app(ServeSettings(run=run))) as client:
        assert client.get("/v1/model").json()["threshold"] == 0.999
        result = client.post("/v1/predict", files=[("files", ("h.png", human.read_bytes(), "image/png"))]).json()[
            "results"
        ][0]
    assert 0.5 < result["probabilities"]["humans"] < 0.999
    assert result["label"] == "horses" and result["probability"] == result["probabilities"]["horses"]


def test_an_unreadable_upload_still_fails_alone(served):
    n, _, data, client = served
    good = validation_files(data, n)[0][1]
    response = client.post(
        "/v1/predict",
        files=[
            ("files", ("good.png", good.read_bytes(), "image/png")),
            ("files", ("notes.txt", b"text", "text/plain")),
        ],
    )
    good_result, bad = response.json()["results"]
    assert good_result["label"] == class_names(n)[0] and bad["status"] == 415
    assert bad["probability"] is None and bad["probabilities"] is None


def test_many_requests_at_once_get_their_own_rows(served):
    """The worker batches requests that arrive together: each must get its own image's row back."""
    from concurrent.futures import ThreadPoolExecutor

    n, _, data, client = served
    files = validation_files(data, n) * 3
    with ThreadPoolExecutor(6) as pool:
        labels = list(
            pool.map(
                lambda f: client.post(
                    "/v1/predict", files=[("files", (f[1].name, f[1].read_bytes(), "image/png"))]
                ).json()["results"][0]["label"],
                files,
            )
        )
    assert labels == [class_names(n)[i] for i, _ in files]


# ---------------------------------------------------------------- every export, parity checked


@pytest.fixture(scope="module")
@slow_fixture
def exported(setup):
    n, run, data = setup
    source = ex.open_source(run, data, log=lambda s: None)
    return n, run, data, source, {r.name: r for r in ex.export_all(source, latency_runs=1)}


def test_source_reference_is_the_class_probability_matrix(exported):
    n, run, _, source, _ = exported
    assert source.reference.shape == (len(source.validation), n)
    np.testing.assert_allclose(source.reference.sum(axis=1), 1.0, atol=1e-5)
    assert source.accuracy(source.reference) == 1.0  # the centroid model labels the synthetic images right


@pytest.mark.parametrize("name", [formats.export_name(f, q) for f, q in RAW])
def test_every_export_ships_with_labels_that_say_how_to_read_it(exported, name):
    n, run, _, source, results = exported
    result = results[name]
    assert result.shipped, result.error
    assert result.parity.images == len(source.validation) and result.parity.label_agreement == 1.0
    assert result.accuracy == 1.0
    labels = json.loads((result.path / "labels.json").read_text())
    assert labels["class_names"] == class_names(n) and labels["output_shape"] == [None, 1 if n == 2 else n]
    assert (
        labels["output_kind"] == ("sigmoid" if n == 2 else "softmax")
        and labels["output"] == load_run(run).output.reading()
    )
    assert ("threshold" in labels) == (n == 2)  # a softmax has no threshold to state


@pytest.mark.parametrize("name", [formats.export_name(f, q) for f, q in RAW])
def test_every_export_read_with_its_labels_answers_like_keras(exported, name):
    """What a user of the export does: run it with the format's own library, read it as labels.json says."""
    from horses_humans.models.outputs import ClassOutput

    n, run, data, _, results = exported
    result = results[name]
    output = ClassOutput.from_labels(json.loads((result.path / "labels.json").read_text()))
    pixels = np.stack([load_pixels(path, 32) for _, path in validation_files(data, n)])
    raw = standard_predictions(result.path, result.format, pixels)
    assert raw.shape == (n, output.units)
    got, expected = output.probabilities(raw), Predictor.from_run(run, runtime="keras").predict_proba(pixels)
    assert list(output.predicted(got)) == list(range(n))
    bound = {"none": 1e-4, "float16": 1e-2}.get(result.quantize, 0.05)
    assert np.abs(got - expected).max() <= bound


@pytest.mark.parametrize("name", [formats.export_name(f, q) for f, q in SERVED])
def test_every_served_export_run_alone_answers_like_predict(exported, name):
    """The onnx file by its metadata alone, the tflite_labels folder by labels.txt: predict's probabilities."""
    n, run, data, _, results = exported
    result = results[name]
    assert result.shipped, result.error
    images = [path for _, path in validation_files(data, n)]
    if result.format == "onnx":
        names, got, _ = plain_onnx(result.path / "model.onnx", images)
    else:
        names, got = plain_litert(result.path, images)
    expected = Predictor.from_run(run, runtime="keras").predict_proba(
        np.stack([load_pixels(path, 32) for path in images])
    )
    assert names == class_names(n) and got.shape == (n, n)
    assert np.abs(got - expected).max() <= {"none": 1e-4, "float16": 1e-2}.get(result.quantize, 0.05)
    assert list(np.argmax(got, axis=1)) == list(range(n))


def test_runtimes_return_the_raw_output_layer(exported):
    n, _, _, source, results = exported
    for name in ("keras", "savedmodel", "tflite", "web"):
        spec = formats.FORMATS[results[name].format]
        raw = spec.runtime(results[name].path / spec.file).predict(source.validation.x[:3])
        assert raw.shape == (3, 1 if n == 2 else n) and raw.dtype == np.float32


def test_an_export_with_the_wrong_output_width_is_not_shipped(exported, monkeypatch):
    n, run, _, source, _ = exported

    class Wider(Runtime):
        """A runtime whose model grew a unit in conversion."""

        def __init__(self, path):
            pass

        def predict_batch(self, pixels):
            return np.full((len(pixels), n + 1), 1 / (n + 1))

    monkeypatch.setitem(formats.FORMATS, "keras", formats.Format("keras", "model.keras", formats.write_keras, Wider))
    before = (run / "export" / "keras" / "export.json").read_text()
    result = ex.export(source, "keras", latency_runs=1)
    assert not result.shipped and "the conversion lost the output layer's shape" in result.error
    assert (run / "export" / "keras" / "export.json").read_text() == before


def test_exports_table_rows_read_the_labels_as_the_model_does(exported):
    from horses_humans.core.tables import exports_markdown

    n, run, _, source, results = exported
    table = exports_markdown(source, list(results.values()))
    assert f"Keras validation accuracy 100.0% on {len(source.validation)} images" in table
    assert table.count("| passed |") == len(formats.ALL)
