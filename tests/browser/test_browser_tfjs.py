"""The TF.js export in the browser: headless Chromium loads model.json with @tensorflow/tfjs (web/package-lock.json's
pin, served from web/node_modules like everything else here: no CDN), and answers as `predict` does.

Two runs: two classes with a temperature and an unsure rule, and three classes with test-time flips on a model that
answers a mirrored image otherwise. The page reads the classes, threshold and unsure rule from model.json's metadata
with the README's own JavaScript client, so a README that decodes wrongly fails here too.
"""

import os
import shutil
import threading
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from horses_humans.data.layouts import VALIDATION
from horses_humans.export import clients, tfjs, tfjs_env
from horses_humans.export import pipeline as ex
from horses_humans.inference.predictor import Predictor
from horses_humans.inference.unsure import UnsureRule, save_rule
from horses_humans.runs.store import update_calibration

from ..centroid_runs import centroid_setup
from ..export.test_served_exports import load_image
from .test_browser import CHROMIUM, CHROMIUM_ARGS, QuietHandler

pytestmark = pytest.mark.browser

CONVERTER_ENV = tfjs_env.env_dir()  # the user's cache, read before the tests' own cache folders are set
TFJS_DIST = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "@tensorflow" / "tfjs" / "dist"
CDN = f"https://cdn.jsdelivr.net/npm/@tensorflow/tfjs@{tfjs.TFJS_VERSION}/dist/tf.fesm.min.js"

# the page: the pixels Python read (N, S, S, 3) through the model, in whatever backend TF.js picks (WebGL or CPU)
PAGE_PREDICT = """async ([pixels, n, size]) => {
  const tf = await import("./tf.fesm.min.js");
  const model = await tf.loadGraphModel("./model.json");
  const input = tf.tensor4d(Int32Array.from(pixels), [n, size, size, 3], "int32");
  const p = await model.predict(input).array();
  return { p, backend: tf.getBackend() };
}"""


def exported(tmp_path_factory, name: str, n_classes: int, **options) -> tuple[Path, Path, list[Path]]:
    """(run, its tfjs export, validation images) of a centroid run, exported by the real converter."""
    run, data = centroid_setup(tmp_path_factory.mktemp(name), n_classes, **options)
    update_calibration(run, temperature=2.0 if n_classes == 2 else 0.7)
    images = sorted((data / VALIDATION).rglob("*.png"))
    if n_classes == 2:
        confidence = [r.probability for r in Predictor.from_run(run, runtime="keras").predict_files(images)]
        save_rule(run, UnsureRule(min_confidence=float(np.median(confidence))))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(tfjs_env.ENV_TFJS_ENV, str(CONVERTER_ENV))
        result = ex.export(ex.open_source(run, data, log=lambda line: None), "tfjs", latency_runs=1)
    assert result.shipped, result.error
    return run, result.path, images


@pytest.fixture(scope="module", params=["sigmoid", "softmax_tta"])
def site(request, tmp_path_factory):
    """(URL, run, images): the export folder, TF.js's browser build and the images behind a static file server."""
    if request.param == "sigmoid":
        run, folder, images = exported(tmp_path_factory, "sigmoid", 2)
    else:
        run, folder, images = exported(tmp_path_factory, "softmax", 3, lopsided=True, tta=True)
    root = tmp_path_factory.mktemp("tfjs-site")
    shutil.copytree(folder, root / "tfjs")
    assert (TFJS_DIST / "tf.fesm.min.js").is_file(), f"{TFJS_DIST} is missing: run scripts/setup-web.sh"
    shutil.copyfile(TFJS_DIST / "tf.fesm.min.js", root / "tfjs" / "tf.fesm.min.js")
    for i, image in enumerate(images):  # for the README client, which fetches one photo by name
        shutil.copyfile(image, root / "tfjs" / f"photo-{i}.png")
    (root / "tfjs" / "index.html").write_text("<!doctype html><title>tfjs</title>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tfjs/", run, images
    server.shutdown()


def open_page(pw, url):
    assert os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} is missing: run scripts/setup-test.sh (apt-get install -y chromium)"
    )
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page()
    page.goto(url)
    return browser, page


def test_tfjs_in_chromium_answers_like_predict_within_1e_3(site):
    from playwright.sync_api import sync_playwright

    url, run, images = site
    predictor = Predictor.from_run(run, runtime="keras")
    pixels = np.stack([load_image(path, predictor.image_size) for path in images])
    with sync_playwright() as pw:
        browser, page = open_page(pw, url)
        answer = page.evaluate(PAGE_PREDICT, [pixels.reshape(-1).tolist(), len(pixels), predictor.image_size])
        browser.close()
    expected = predictor.predict_proba(pixels)
    got = np.array(answer["p"])
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-3, answer["backend"]


def test_the_readme_javascript_client_labels_a_photo_from_model_json_alone(site):
    """The README's client as it stands (its CDN import pointed at the local copy, its photo the validation image
    predict is surest of), run as a module script: predict's label, probabilities close (the browser resamples the
    photo itself, not exactly as Pillow does)."""
    from playwright.sync_api import sync_playwright

    url, run, images = site
    predictor = Predictor.from_run(run, runtime="keras")
    rows = predictor.predict_files(images)
    surest = max(range(len(rows)), key=lambda i: max(rows[i].probabilities.values()))
    written = clients.client_js("tfjs", "squash")  # the README's client as written for a squash run
    script = written.replace(CDN, "./tf.fesm.min.js").replace("photo.jpg", f"photo-{surest}.png")
    assert script != written
    with sync_playwright() as pw:
        browser, page = open_page(pw, url)
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        def printed(message):  # the client's one line, not the browser's notes (a missing favicon)
            return message.type == "log" and len(message.args) == 2

        with page.expect_console_message(predicate=printed, timeout=60_000) as message:
            page.add_script_tag(content=script, type="module")
        assert not errors, errors
        label, probabilities = [arg.json_value() for arg in message.value.args]
        browser.close()
    assert label == rows[surest].label
    assert set(probabilities) == set(predictor.class_names)
    assert max(abs(probabilities[name] - rows[surest].probabilities[name]) for name in probabilities) < 0.05
