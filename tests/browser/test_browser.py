"""The upload page as a user sees it: headless Debian Chromium (Playwright) uploads photos and reads the labels."""

import os
import shutil
import threading
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from horses_humans.serve.settings import ServeSettings

from ..centroid_runs import centroid_setup
from ..live_server import serving as live_serving
from ..synthetic import class_names

CHROMIUM = "/usr/bin/chromium"  # scripts/setup-test.sh installs it; Playwright downloads no browser
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


@contextmanager
def serving(run):
    """The real server (uvicorn with serve's limits, lifespan and all) of a run on a free local port -> its URL."""
    with live_serving(ServeSettings(run=run)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server_url(baseline_run):
    with serving(baseline_run) as url:
        yield url


def test_upload_page_shows_labels_errors_and_gradcam(server_url, views_data, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} is missing: run scripts/setup-test.sh (apt-get install -y chromium)"
    )
    validation = views_data[0] / "validation-horse-or-human"
    photos = [next((validation / "horses").iterdir()), next((validation / "humans").iterdir())]
    bad = tmp_path / "notes.txt"
    bad.write_text("not a photo")
    expected = [
        httpx.post(f"{server_url}/v1/predict", files={"files": p.open("rb")}).json()["results"][0]["label"]
        for p in photos
    ]

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 620})
        page.goto(server_url + "/")
        expect(page.locator("#model")).to_contain_text("baseline")
        page.check("#gradcam")
        page.set_input_files("#files", [str(p) for p in photos] + [str(bad)])
        cards = page.locator(".card")
        expect(cards).to_have_count(3)
        for i, label in enumerate(expected):
            expect(cards.nth(i).locator(".label")).to_have_text(label)
            expect(cards.nth(i).locator("img")).to_have_count(2)  # the photo and its Grad-CAM overlay
        expect(cards.nth(2).locator(".error")).to_contain_text("notes.txt: not an image")
        page.screenshot(path=str(tmp_path / "upload-page.png"), full_page=True)
        browser.close()
    keep_screenshot(tmp_path / "upload-page.png")


# ---------------------------------------------------------------- the browser build (`export --format web`)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def web_site(baseline_run, views_data, tmp_path_factory):
    """Both browser builds of the 32 px baseline and a folder of test images, behind a plain static file server
    (what `python -m http.server` does: no inference server)."""
    from horses_humans.export.pipeline import export, open_source

    source = open_source(baseline_run, views_data[0], views_data[1], log=lambda s: None)
    site = tmp_path_factory.mktemp("site")
    for quantize in ("none", "dynamic"):
        result = export(source, "web", quantize, latency_runs=1)
        assert result.shipped, result.error
        shutil.copytree(result.path, site / result.name)
    rng = np.random.default_rng(7)
    for name, (width, height) in {
        "exact.png": (32, 32),
        "bigger.png": (40, 40),
        "odd.png": (97, 61),
        "large.png": (300, 300),
    }.items():
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert("RGBA").save(site / name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", site
    server.shutdown()


def open_page(pw, url):
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1000, "height": 620})
    page.goto(url)
    page.wait_for_selector("#model[data-ready]", timeout=60_000)
    return browser, page


PAGE_PREDICT = """async (names) => {
  const model = await ready, out = [];
  for (const name of names) {
    const blob = await (await fetch("../" + name)).blob();
    const file = new File([blob], name);
    const pixels = await imagePixels(file, model.labels.input_size);
    const result = await predictWith(model, file);
    out.push({ pixels: Array.from(pixels), p: result.probabilities[model.labels.class_names[1]], label: result.label });
  }
  return out;
}"""


@pytest.mark.parametrize("build", ["web", "web-dynamic"])
def test_browser_build_decodes_like_pillow_and_answers_like_python(web_site, baseline_run, build):
    import onnxruntime
    from playwright.sync_api import sync_playwright

    from horses_humans.data.images import load_pixels
    from horses_humans.inference.predictor import Predictor

    url, site = web_site
    names = ["exact.png", "bigger.png", "odd.png", "large.png"]
    with sync_playwright() as pw:
        browser, page = open_page(pw, f"{url}/{build}/")
        answers = page.evaluate(PAGE_PREDICT, names)
        browser.close()
    expected_pixels = np.stack([load_pixels(site / name, 32) for name in names])
    got_pixels = np.array([a["pixels"] for a in answers]).reshape(expected_pixels.shape)
    assert np.array_equal(got_pixels, expected_pixels)  # the page's resize is Pillow's bilinear, exactly
    session = onnxruntime.InferenceSession(str(site / build / "model.onnx"), providers=["CPUExecutionProvider"])
    native = session.run(None, {session.get_inputs()[0].name: expected_pixels.astype(np.float32)})[0]
    # the page serves calibrated probabilities, as Python does
    output = Predictor.from_run(baseline_run, runtime="keras").output
    native = output.probabilities(native)[:, 1]
    in_browser = np.array([a["p"] for a in answers])
    # ONNX Runtime Web (wasm) against native ONNX Runtime: float kernels agree to rounding; with int8 dense weights
    # the activations are quantized on the fly and the two builds round a few of them differently (3e-4 seen)
    assert np.abs(in_browser - native).max() <= (1e-4 if build == "web" else 1e-2)
    predictor = Predictor.from_run(baseline_run, runtime="keras")
    probabilities = predictor.predict_proba(expected_pixels)
    keras = probabilities[:, 1]
    # the page answers as Python does, "unsure" included (labels.json carries the run's unsure rule)
    assert [a["label"] for a in answers] == [v.label for v in predictor.unsure.apply(probabilities, predictor.output)]
    if build == "web":
        assert np.abs(in_browser - keras).max() <= 1e-4


def test_browser_calibration_matches_python(web_site):
    """The page's calibrated() is outputs.calibrated for every method: temperature, temperature + bias, vector."""
    from playwright.sync_api import sync_playwright

    from horses_humans.models.outputs import calibrated

    cases = [
        ([0.2, 0.8], {"temperature": 2.5}),
        ([1.0, 0.0], {"temperature": 0.4, "class_bias": [0.0, 1.5]}),
        ([0.1, 0.3, 0.6], {"class_scale": [1.4, 0.6, 0.9], "class_bias": [0.3, -0.2, 0.0]}),
        ([0.1, 0.3, 0.6], {"temperature": 0.7, "class_scale": [1.4, 0.6, 0.9]}),
    ]
    url, _ = web_site
    with sync_playwright() as pw:
        browser, page = open_page(pw, f"{url}/web/")
        got = page.evaluate(
            "(cases) => cases.map(([row, labels]) => [calibrated(row, labels), calibrated(row, {})])", cases
        )
        browser.close()
    for (row, labels), (mapped, same) in zip(cases, got):
        terms = (labels.get("temperature", 1.0), labels.get("class_scale"), labels.get("class_bias"))
        assert np.allclose(mapped, calibrated(np.array([row]), *terms)[0], atol=1e-6) and same == row


def test_browser_answers_unsure_by_the_runs_reject_class(web_site):
    """The page's answer() takes the reject class's name from labels.json's rule, as unsure.UnsureRule does."""
    from horses_humans.inference.unsure import UnsureRule

    rows = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.36, 0.34]]
    got = page_answers_as_the_rule(web_site, ["background", "horses", "humans"], UnsureRule(0.6, "background"), rows)
    assert got == ["like the 'background' examples", None, "no class confident enough"]


def page_answers_as_the_rule(web_site, names: list[str], rule, rows: list) -> list:
    """The page's answer() of each softmax row under `rule` (as labels.json carries it), checked to match
    UnsureRule.apply's label and reason; returns the page's reasons."""
    from playwright.sync_api import sync_playwright

    from horses_humans.models.outputs import ClassOutput

    labels = {"class_names": names, "output_kind": "softmax", "input_size": 32, "unsure": rule.record()}
    url, _ = web_site
    with sync_playwright() as pw:
        browser, page = open_page(pw, f"{url}/web/")
        got = page.evaluate("([labels, rows]) => rows.map((row) => answer(labels, row))", [labels, rows])
        browser.close()
    expected = rule.apply(np.array(rows), ClassOutput.for_classes(names))
    assert [(a["label"], a["unsure_reason"]) for a in got] == [(v.label, v.reason) for v in expected]
    return [a["unsure_reason"] for a in got]


def test_browser_build_page_labels_photos_and_reports_bad_files(web_site, views_data, baseline_run, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from horses_humans.inference.predictor import Predictor

    url, _ = web_site
    validation = views_data[0] / "validation-horse-or-human"
    photos = [sorted((validation / "horses").iterdir())[0], sorted((validation / "humans").iterdir())[0]]
    bad = tmp_path / "notes.txt"
    bad.write_text("not a photo")
    expected = [r.label for r in Predictor.from_run(baseline_run, runtime="keras").predict_files(photos)]
    with sync_playwright() as pw:
        browser, page = open_page(pw, f"{url}/web/")
        expect(page.locator("#model")).to_contain_text(f"model {baseline_run.name} (baseline, web, 32 px")
        page.set_input_files("#files", [str(p) for p in photos] + [str(bad)])
        cards = page.locator(".card")
        expect(cards).to_have_count(3)
        for i, label in enumerate(expected):
            expect(cards.nth(i).locator(".label")).to_have_text(label)
        expect(cards.nth(2).locator(".error")).to_contain_text("notes.txt: not an image the browser can decode")
        page.screenshot(path=str(tmp_path / "web-build.png"), full_page=True)
        page.goto(Path(web_site[1] / "web" / "index.html").as_uri())  # opened as a file, it says how to serve it
        expect(page.locator("#model")).to_contain_text("python -m http.server")
        browser.close()
    keep_screenshot(tmp_path / "web-build.png")


def keep_screenshot(path: Path) -> None:
    """Copy a screenshot where a person can look at it ($HORSES_HUMANS_SCREENSHOTS), if asked to."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("HORSES_HUMANS_SCREENSHOTS"):
        Path(os.environ["HORSES_HUMANS_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["HORSES_HUMANS_SCREENSHOTS"]) / path.name)


# ---------------------------------------------------------------- more than two classes: the top classes, with bars


def card_classes(card) -> list[tuple[str, float]]:
    """(class, percentage) of each bar row on a card, top to bottom."""
    rows = card.locator(".class")
    return [
        (rows.nth(i).locator(".class-name").inner_text(), float(rows.nth(i).locator(".prob").inner_text().rstrip("%")))
        for i in range(rows.count())
    ]


def photos_of_each_class(data: Path, n: int) -> list[Path]:
    return [sorted((data / "validation-horse-or-human" / name).iterdir())[0] for name in class_names(n)]


def test_upload_page_shows_the_top_classes_sorted_with_bars(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    run, data = centroid_setup(tmp_path, 5)
    photos = photos_of_each_class(data, 5)
    with serving(run) as url, sync_playwright() as pw:
        expected = [httpx.post(f"{url}/v1/predict", files={"files": p.open("rb")}).json()["results"][0] for p in photos]
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(url + "/")
        expect(page.locator("#model")).to_contain_text("5 classes: class0, class1, class2, class3, class4")
        expect(page.locator("h1")).to_have_text("Which of 5 classes?")
        page.set_input_files("#files", [str(p) for p in photos])
        cards = page.locator(".card")
        expect(cards).to_have_count(5)
        for i, result in enumerate(expected):
            expect(cards.nth(i).locator(".label")).to_have_text(class_names(5)[i])
            expect(cards.nth(i).locator(".class")).to_have_count(5)
            shown = card_classes(cards.nth(i))
            ranked = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])
            assert [name for name, _ in shown] == [name for name, _ in ranked]  # most probable first
            assert [pct for _, pct in shown] == [round(100 * p, 1) for _, p in ranked]
            expect(cards.nth(i).locator(".class.top .class-name")).to_have_text(result["label"])
        many = {f"c{i}": p for i, p in enumerate([0.05, 0.3, 0.01, 0.2, 0.1, 0.04, 0.3])}  # a tie: class order decides
        top = page.evaluate("p => topClasses(p).map(c => c.name)", many)
        assert top == ["c1", "c6", "c3", "c4", "c0"]
        assert page.evaluate("p => classBars(p, 'c1').querySelector('.more').textContent", many) == "top 5 of 7 classes"
        page.screenshot(path=str(tmp_path / "upload-page-5-classes.png"), full_page=True)
        browser.close()
    keep_screenshot(tmp_path / "upload-page-5-classes.png")


@pytest.mark.parametrize("n", [2, 3])
def test_browser_build_reads_its_labels_json_for_n_classes(n, tmp_path):
    """The page reads labels.json's output_kind: a sigmoid's unit as [1 - p, p], a softmax as it is; labels and
    probabilities as the Keras model's, bars sorted."""
    import json

    from playwright.sync_api import expect, sync_playwright

    from horses_humans.data.images import load_pixels
    from horses_humans.export.pipeline import export, open_source
    from horses_humans.inference.predictor import Predictor

    run, data = centroid_setup(tmp_path, n)
    result = export(open_source(run, data, log=lambda s: None), "web", latency_runs=1)
    assert result.shipped, result.error
    assert json.loads((result.path / "labels.json").read_text())["output_kind"] == ("sigmoid" if n == 2 else "softmax")
    photos = photos_of_each_class(data, n)
    keras = Predictor.from_run(run, runtime="keras").predict_proba(np.stack([load_pixels(p, 32) for p in photos]))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(result.path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            browser, page = open_page(pw, f"http://127.0.0.1:{server.server_address[1]}/")
            expect(page.locator("#model")).to_contain_text(f"{n} classes")
            expect(page.locator("h1")).to_have_text("Horse or human?" if n == 2 else "class0 or class1 or class2?")
            page.set_input_files("#files", [str(p) for p in photos])
            cards = page.locator(".card")
            expect(cards).to_have_count(n)
            for i in range(n):
                expect(cards.nth(i).locator(".label")).to_have_text(class_names(n)[i])
                expect(cards.nth(i).locator(".class")).to_have_count(n)
                shown = dict(card_classes(cards.nth(i)))
                assert shown == pytest.approx(
                    {c: round(100 * float(p), 1) for c, p in zip(class_names(n), keras[i])}, abs=0.11
                )
            browser.close()
    finally:
        server.shutdown()


PIXELS_JS = Path(__file__).resolve().parents[2] / "src" / "horses_humans" / "static" / "pixels.js"
DECODE_IN_PAGE = """async ({ images, size, modes }) => {
  const out = {};
  for (const [name, b64] of Object.entries(images)) {
    const blob = new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: "image/png" });
    for (const mode of modes) out[`${name} ${mode}`] = Array.from(await imagePixels(blob, size, mode));
  }
  return out;
}"""


def test_the_browser_builds_pixels_match_pillows_for_every_resize_mode(tmp_path):
    """pixels.js (what web.html feeds the model) against images.load_pixels: a wide, a tall and an odd-sized image,
    squashed, cropped and padded, to the same uint8 values."""
    import base64

    from playwright.sync_api import sync_playwright

    from horses_humans.config import RESIZE_MODES
    from horses_humans.data.images import load_pixels

    from ..data.test_resize import edged, save_png

    photos = {
        "wide": save_png(edged(301, 180), tmp_path / "wide.png"),
        "tall": save_png(np.ascontiguousarray(edged(300, 181).transpose(1, 0, 2)), tmp_path / "tall.png"),
        "odd": save_png(edged(97, 61, band=5), tmp_path / "odd.png"),
    }
    images = {name: base64.b64encode(path.read_bytes()).decode() for name, path in photos.items()}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_content(f"<script>{PIXELS_JS.read_text()}</script>")
        got = page.evaluate(DECODE_IN_PAGE, {"images": images, "size": 32, "modes": list(RESIZE_MODES)})
        browser.close()
    for name, path in photos.items():
        for mode in RESIZE_MODES:
            expected = load_pixels(path, 32, resize=mode)
            np.testing.assert_array_equal(np.array(got[f"{name} {mode}"]).reshape(expected.shape), expected)
    assert got["wide crop"] != got["wide squash"] and got["wide pad"] != got["wide squash"]


def test_a_crop_runs_browser_build_crops_as_predict_does(tmp_path):
    """web.html reads labels.json's resize: the page's answer for a wide photo is predict's for the cropped image,
    not the squashed one's (the lopsided model tells them apart)."""
    from playwright.sync_api import sync_playwright

    from horses_humans.data.images import load_pixels
    from horses_humans.export.pipeline import export, open_source
    from horses_humans.inference.predictor import Predictor

    from ..data.test_resize import edged, save_png

    run, data = centroid_setup(tmp_path, 2, lopsided=True, resize="crop")
    result = export(open_source(run, data, log=lambda s: None), "web", latency_runs=1)
    assert result.shipped, result.error
    site = tmp_path / "site"
    shutil.copytree(result.path, site / "web")
    photo = save_png(edged(), site / "wide.png")
    predictor = Predictor.from_run(run, runtime="keras")
    (expected,) = predictor.predict_files([photo])
    squashed = predictor.predict_proba(load_pixels(photo, 32)[None])[0, 1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            browser, page = open_page(pw, f"http://127.0.0.1:{server.server_address[1]}/web/")
            (answer,) = page.evaluate(
                PAGE_PREDICT.replace("model.labels.input_size", "model.labels.input_size, model.labels.resize"),
                ["wide.png"],
            )
            browser.close()
    finally:
        server.shutdown()
    assert abs(answer["p"] - expected.probabilities["humans"]) <= 1e-4
    assert abs(answer["p"] - squashed) > 1e-3
    np.testing.assert_array_equal(np.array(answer["pixels"]).reshape(32, 32, 3), load_pixels(photo, 32, resize="crop"))


def test_browser_answers_the_distance_checks_uniform_rows_unsure_as_the_rule_does(web_site):
    """A --distance-unsure run's uniform rows are "unlike every image it was trained on" in the page too."""
    from horses_humans.inference.unsure import UNLIKE_TRAINING, UnsureRule

    third = float(np.float32(1 / 3))
    rows = [[third, third, third], [0.2, 0.7, 0.1], [0.33, 0.335, 0.335]]
    got = page_answers_as_the_rule(web_site, ["cats", "dogs", "rabbits"], UnsureRule(0.34, None, distance=True), rows)
    assert got == [UNLIKE_TRAINING, None, "no class confident enough"]
