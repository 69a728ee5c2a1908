"""One non-square image, each --resize mode, one set of pixels: a run decodes an image the same way wherever it does
(the pixel cache that train and evaluate read, predict's decode_file, the Ray engine's decode, the Python API's array
path, the server, Grad-CAM, and the export READMEs' clients), and a crop run's pixels are not a squash run's."""

import subprocess
import sys
import types

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

import horses_humans as hh
from horses_humans.analysis.explain import write_explanation
from horses_humans.config import RESIZE_MODES
from horses_humans.data.images import load_pixels
from horses_humans.export import clients
from horses_humans.inference.predictor import Predictor, decode_file
from horses_humans.inference.rayengine import decode_batch
from horses_humans.runs.record import load_labelled
from horses_humans.runs.store import load_run
from horses_humans.serve.app import create_app
from horses_humans.serve.settings import ServeSettings

from ..centroid_runs import write_centroid_run
from ..data.test_resize import edged, save_png

SIZE = 32  # the centroid runs' input size


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 301 x 180 PNG with a coloured band on each edge, in a `horses` class folder."""
    return save_png(edged(), tmp_path_factory.mktemp("photos") / "horses" / "wide.png")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{mode: run dir}: the two-class centroid run, lopsided (its answer depends on where colours are), per mode."""
    root = tmp_path_factory.mktemp("runs")
    return {mode: write_centroid_run(root / mode, 2, lopsided=True, resize=mode) for mode in RESIZE_MODES}


def client_pixels(photo, mode: str) -> np.ndarray:
    """The pixels the export READMEs' Python clients compute, running their image lines as written."""
    scope = {"sys": types.SimpleNamespace(argv=["client.py", str(photo)]), "np": np, "Image": Image, "size": SIZE}
    scope["ImageOps"] = ImageOps
    exec(clients.OPEN_IMAGE + clients.LOAD_IMAGE[mode], scope)
    return scope["pixels"]


def test_a_crop_run_a_pad_run_and_a_squash_run_see_different_pixels_and_answer_differently(photo, runs):
    pixels = {mode: Predictor.from_run(runs[mode], runtime="keras").decode(photo) for mode in RESIZE_MODES}
    assert not np.array_equal(pixels["crop"], pixels["squash"]) and not np.array_equal(pixels["pad"], pixels["squash"])
    predictor = Predictor.from_run(runs["squash"], runtime="keras")
    answers = {mode: predictor.predict_proba(pixels[mode][None])[0, 1] for mode in RESIZE_MODES}
    assert abs(answers["crop"] - answers["squash"]) > 1e-3 and abs(answers["pad"] - answers["squash"]) > 1e-3


@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_every_decode_path_of_a_run_gives_its_modes_pixels(photo, runs, mode, tmp_path):
    run = load_run(runs[mode])
    assert run.resize == mode
    expected = load_pixels(photo, SIZE, resize=mode)
    cached = load_labelled(run, photo.parent.parent, tmp_path / "cache", log=lambda line: None)  # train, evaluate
    np.testing.assert_array_equal(cached.x[0], expected)
    np.testing.assert_array_equal(Predictor.from_run(run, runtime="keras").decode(photo), expected)  # predict
    np.testing.assert_array_equal(decode_file(photo, SIZE, resize=mode), expected)
    ray = decode_batch({"file": [str(photo)], "path": [str(photo)]}, SIZE, resize=run.resize)  # a Ray decode task
    np.testing.assert_array_equal(ray["pixels"][0], expected)
    np.testing.assert_array_equal(client_pixels(photo, mode), expected)  # the export READMEs' Python clients


@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_the_server_grad_cam_and_the_api_answer_on_the_runs_pixels(photo, runs, mode, tmp_path):
    """Their pixels are not returned, so their answers are compared with the model's on the expected pixels (the
    lopsided model answers otherwise for every mode's pixels: the test above)."""
    predictor = Predictor.from_run(runs[mode], runtime="keras")
    expected = predictor.predict_proba(load_pixels(photo, SIZE, resize=mode)[None])[0]
    with TestClient(create_app(ServeSettings(run=runs[mode]))) as client:
        (result,) = client.post("/v1/predict", files={"files": photo.open("rb")}).json()["results"]
        assert client.get("/v1/model").json()["resize"] == mode
    np.testing.assert_allclose(list(result["probabilities"].values()), expected, atol=1e-6)
    explained = write_explanation(runs[mode], photo, out_dir=tmp_path)
    np.testing.assert_allclose(list(explained["probabilities"].values()), expected, atol=1e-6)
    (from_array,) = hh.load_run(runs[mode]).predict(np.asarray(Image.open(photo).convert("RGB")), runtime="keras")
    np.testing.assert_allclose(list(from_array.probabilities.values()), expected, atol=1e-6)


def test_the_clients_run_as_a_script_with_only_pil_and_numpy(photo):
    """The image lines need nothing but the names every client imports (the test above runs them in a scope)."""
    code = "import sys\nimport numpy as np\nfrom PIL import Image, ImageOps\nsize = 32\n"
    code += clients.OPEN_IMAGE + clients.LOAD_IMAGE["pad"] + "np.save(sys.argv[2], pixels)\n"
    out = photo.parent.parent / "pad.npy"
    subprocess.run([sys.executable, "-c", code, str(photo), str(out)], check=True, timeout=60)
    np.testing.assert_array_equal(np.load(out), load_pixels(photo, SIZE, resize="pad"))
