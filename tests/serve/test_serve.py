"""The prediction service through its HTTP API (FastAPI's TestClient runs the lifespan: model loaded once)."""

import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from horses_humans.cli.main import main
from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.data.samples import awkward_files, encode, hostile_files, photo
from horses_humans.inference.unsure import UnsureRule, save_rule
from horses_humans.runs.store import best_run, update_calibration
from horses_humans.serve.app import create_app
from horses_humans.serve.settings import ServeSettings

from ..centroid_runs import write_centroid_run
from ..fake_runs import write_run


@pytest.fixture(scope="module")
def client(baseline_run):
    with TestClient(create_app(ServeSettings(run=baseline_run, max_files=4))) as client:
        yield client


def upload(*files: tuple[str, bytes]) -> list:
    return [("files", (name, data, "application/octet-stream")) for name, data in files]


def png(seed: int = 0) -> bytes:
    return encode(photo(seed=seed), "PNG")


def test_health_model_page_and_docs(client, baseline_run):
    assert client.get("/healthz").json() == {"status": "ok", "model": baseline_run.name}
    info = client.get("/v1/model").json()
    assert info["class_names"] == ["horses", "humans"] and info["input_size"] == 32 and info["recipe"] == "baseline"
    assert info["output_kind"] == "sigmoid" and info["threshold"] == 0.5 and "probability of 'humans'" in info["output"]
    assert "val_accuracy" in info["metrics"]
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"] and "/v1/predict" in page.text
    assert "function startUploads" in client.get("/static/cards.js").text  # the upload UI shared with the browser build
    assert client.get("/static/page.css").headers["content-type"].startswith("text/css")
    assert client.get("/docs").status_code == 200
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]


def test_model_info_says_the_calibration_and_the_unsure_rule(tmp_path):
    """/v1/model names the calibration method with its terms (temperature, per-class bias) and the unsure rule's tau
    and reject class, each as a documented schema of its own."""
    run = write_centroid_run(tmp_path, 3, names=["horses", "humans", "neither"])
    update_calibration(run, method="temperature+bias", temperature=2.0, class_bias=[0.0, 0.4, -0.1])
    save_rule(run, UnsureRule(min_confidence=0.55, neither_class="neither"))
    with TestClient(create_app(ServeSettings(run=run))) as client:
        info = client.get("/v1/model").json()
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert info["calibration"] == {
        "method": "temperature+bias",
        "temperature": 2.0,
        "class_scale": None,
        "class_bias": [0.0, 0.4, -0.1],
    }
    assert info["unsure"]["min_confidence"] == 0.55 and info["unsure"]["neither_class"] == "neither"
    fields = schemas["ModelInfo"]["properties"]
    assert fields["calibration"]["$ref"].endswith("/Calibration") and fields["unsure"]["$ref"].endswith("/UnsureInfo")
    methods = schemas["Calibration"]["properties"]["method"]["enum"]
    assert methods == ["none", "temperature", "temperature+bias", "vector"]
    assert {"min_confidence", "neither_class"} <= set(schemas["UnsureInfo"]["required"])


def test_predict_several_images_in_order(client, baseline_run):
    response = client.post("/v1/predict", files=upload(("a.png", png(0)), ("b.png", png(1))))
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == baseline_run.name and [r["file"] for r in body["results"]] == ["a.png", "b.png"]
    for r in body["results"]:
        assert r["error"] is None and (
            r["label"] in r["probabilities"] or r["unsure_reason"]
        )  # the 1-epoch model may be unsure
        assert sum(r["probabilities"].values()) == pytest.approx(1.0)
        assert r["probability"] == r["probabilities"].get(r["label"], max(r["probabilities"].values())) >= 0.5


@pytest.mark.parametrize("name", sorted(hostile_files()))
def test_hostile_file_is_a_4xx_naming_it(client, name):
    data, status = hostile_files()[name]
    response = client.post("/v1/predict", files=upload((name, data)))
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"].startswith(name) and body["results"][0]["status"] == status


@pytest.mark.parametrize("name", sorted(awkward_files()))
def test_awkward_but_valid_file_is_predicted(client, name):
    response = client.post("/v1/predict", files=upload((name, awkward_files()[name])))
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["label"] in ("horses", "humans", "unsure")


def test_bad_file_among_good_ones_is_reported_per_file(client):
    response = client.post("/v1/predict", files=upload(("good.png", png()), ("notes.txt", b"text")))
    assert response.status_code == 200
    good, bad = response.json()["results"]
    assert good["label"] and bad["status"] == 415 and "notes.txt" in bad["error"] and bad["label"] is None


@pytest.mark.parametrize(
    "kwargs,status,words",
    [
        ({}, 422, "files"),  # no upload at all
        ({"json": {"files": "x"}}, 422, "multipart"),
        ({"files": upload(*[(f"{i}.png", b"x") for i in range(5)])}, 413, "limit is 4"),
        ({"data": {"files": "not a file"}}, 422, "files"),
        ({"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=x"}}, 422, "files"),
    ],
)
def test_malformed_requests_are_4xx_json(client, kwargs, status, words):
    response = client.post("/v1/predict", **kwargs)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_size_limits(baseline_run):
    settings = ServeSettings(run=baseline_run, max_file_bytes=1000, max_files=2)
    with TestClient(create_app(settings)) as client:
        big = client.post("/v1/predict", files=upload(("big.png", png() + b"\0" * 2000)))
        assert big.status_code == 413 and "1,000 bytes" in big.json()["error"]
        body = client.post(
            "/v1/predict", content=b"x" * 10**6, headers={"content-type": "multipart/form-data; boundary=x"}
        )
        assert body.status_code == 413 and "request body" in body.json()["error"]
        assert client.get("/healthz").status_code == 200  # the worker lives on


def test_gradcam_overlay_on_request(client):
    result = client.post("/v1/predict?gradcam=true", files=upload(("a.png", png()))).json()["results"][0]
    assert result["gradcam"].startswith("data:image/png;base64,")
    assert client.post("/v1/predict", files=upload(("a.png", png()))).json()["results"][0]["gradcam"] is None


def test_concurrent_requests_all_answered(client):
    files = [("ok.png", png(i)) for i in range(12)] + [("notes.txt", b"text")] * 4
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda f: client.post("/v1/predict", files=upload(f)).status_code, files))
    assert statuses == [200] * 12 + [415] * 4


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HORSES_HUMANS_SERVE_MAX_FILES", "3")
    monkeypatch.setenv("HORSES_HUMANS_SERVE_RUN", str(tmp_path))
    settings = ServeSettings()
    assert settings.max_files == 3 and settings.run == tmp_path and settings.host == "127.0.0.1"


def test_best_run_and_no_run_message(tmp_path, capsys):
    # runs made before checkpoints serve model.keras, their last epoch: its number (val_accuracy) picks, not the best
    # epoch's
    high = write_run(tmp_path, TrainConfig(recipe="baseline", seed=0), {"val_accuracy": 0.9, "best_val_accuracy": 0.9})
    low = write_run(tmp_path, TrainConfig(recipe="baseline", seed=1), {"val_accuracy": 0.7, "best_val_accuracy": 0.95})
    assert best_run(tmp_path).path == high != low
    with pytest.raises(HorsesHumansError, match="no finished runs"):
        best_run(tmp_path / "empty")
    assert main(["serve", "--runs-dir", str(tmp_path / "empty")]) == 2
    assert "horses-humans train" in capsys.readouterr().err
    assert main(["serve", str(high), "--port", "70000"]) == 2
    assert "port" in capsys.readouterr().err


def test_importing_the_server_loads_no_model_and_no_training():
    code = (
        "import sys, horses_humans.serve.app; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] "
        "in ('keras', 'tensorflow') or m.startswith('horses_humans.training'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def test_the_card_shows_no_absolute_path_of_the_server(baseline_run, views_data, tmp_path):
    """Anyone who may call the server may read the card: the run's folder appears as the run's id, the data folder
    and any other path on disk by its last name (quoted paths with spaces, and Windows paths, too); the server's own
    URLs stay."""
    run = tmp_path / "my runs" / baseline_run.name
    shutil.copytree(baseline_run, run)
    card = run / "MODEL_CARD.md"
    card.write_text(
        (card.read_text() if card.exists() else "")
        + f"\nFolder `{tmp_path}/real photos`, RUN={run} and C:\\Users\\me\\photos; see /v1/predict\n"
    )
    with TestClient(create_app(ServeSettings(run=run))) as client:
        text = client.get("/v1/model/card").text
        card.unlink()  # the card is then made from the run's files
        made = client.get("/v1/model/card").text
    for shown in (text, made):
        assert str(tmp_path) not in shown and str(views_data[0]) not in shown and tempfile.gettempdir() not in shown
        assert f"RUN={run.name}" in shown and views_data[0].name in shown
    assert "`real photos`" in text and "C:\\" not in text and "photos;" in text and "see /v1/predict" in text
