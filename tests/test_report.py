"""report.py and the `report` / `explain` commands: every section, embedded images, exit codes."""

import base64
import re

import numpy as np
import pytest
from PIL import Image

from horses_humans import report
from horses_humans.cli import main
from horses_humans.runs import load_run

SECTIONS = ["samples", "augmentation", "curves", "activations", "gradcam", "confusion", "roc", "misclassified"]


def embedded_images(html: str) -> list[bytes]:
    """The decoded bytes of every <img> in the page; fails if any image is not a data URI."""
    sources = re.findall(r'<img [^>]*src="([^"]*)"', html)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    return [base64.b64decode(s.split(",", 1)[1]) for s in sources]


@pytest.fixture(scope="module")
def baseline_report(baseline_run, views_data, mobilenet_run):
    data, cache = views_data
    assert main(["report", str(baseline_run), "--data-dir", str(data), "--cache-dir", str(cache), "--compare", str(mobilenet_run)]) == 0
    return baseline_run / "report"


def test_report_has_every_section_with_its_images_embedded(baseline_report):
    html = (baseline_report / "report.html").read_text()
    for key in SECTIONS:
        assert f'<section id="{key}">' in html and f'href="#{key}"' in html
    pngs = sorted(baseline_report.glob("*.png"))
    assert {p.stem for p in pngs} >= set(SECTIONS) - {"misclassified"}
    images = embedded_images(html)
    assert sorted(images) == sorted(p.read_bytes() for p in pngs)  # each PNG embedded once, byte for byte
    assert "http://" not in html and "https://" not in html  # opens offline
    assert not [p for p in baseline_report.iterdir() if p.name.startswith(".")]  # no temporary files left
    for key in ("accuracy", "roc_auc", "baseline"):
        assert key in html


def test_report_captions_say_what_they_show(baseline_report):
    html = (baseline_report / "report.html").read_text()
    assert "no augmentation layers of its own" in html  # the baseline borrows the augmented recipe's layers
    assert "2 runs overlaid" in html  # --compare
    assert "Grad-CAM of the predicted class at layer conv3" in html


def test_report_of_a_transfer_model_reaches_into_its_backbone(mobilenet_run, views_data):
    path = report.write_report(mobilenet_run, *views_data, log=lambda s: None)
    html = path.read_text()
    assert all(f'<section id="{key}">' in html for key in SECTIONS)
    assert "backbone/out_relu" in html
    assert len(embedded_images(html)) == len(list(path.parent.glob("*.png")))


def test_misclassified_gallery_sorted_by_loss(baseline_run, views_data, tmp_path):
    ev = report.evaluate(load_run(baseline_run), *views_data, log=lambda s: None)
    ev.probabilities = np.where(ev.split.y == 1, 0.4, 0.6) + np.linspace(0, 0.3, len(ev.split)) * np.where(ev.split.y == 1, -1, 1)
    view = report.misclassified_view(ev, tmp_path)
    assert view.png == tmp_path / "misclassified.png" and Image.open(view.png).format == "PNG"
    assert view.caption.startswith(f"{len(ev.split)} of {len(ev.split)} validation images are misclassified; the 12 ")
    ev.probabilities = ev.split.y.astype(float)
    view = report.misclassified_view(ev, tmp_path)
    assert view.png is None and not (tmp_path / "misclassified.png").exists() and "No validation image" in view.caption


def test_render_html_escapes_text_and_skips_missing_images(baseline_run):
    run = load_run(baseline_run)
    metrics = {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "roc_auc": 1.0, "images": 4}
    html = report.render_html(run, metrics, [report.View("x", "A <b> title", "1 < 2 & more")])
    assert "A &lt;b&gt; title" in html and "1 &lt; 2 &amp; more" in html and "<img" not in html


def test_explain_command_writes_two_pngs(baseline_run, tmp_path, capsys):
    image = tmp_path / "person.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 40, 3)).astype(np.uint8)).save(image)
    assert main(["explain", str(baseline_run), str(image)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(rf"{re.escape(str(image))}: (horses|humans) \(probability [01]\.\d{{4}}\)", out[0])
    written = [line.removeprefix("wrote ") for line in out[1:]]
    assert written == [str(baseline_run / "explain" / "person-activations.png"), str(baseline_run / "explain" / "person-gradcam.png")]
    assert all(Image.open(p).format == "PNG" for p in written)


def test_explain_a_nested_backbone_layer(mobilenet_run, views_data, tmp_path, capsys):
    image = next((views_data[0] / "validation-horse-or-human" / "humans").iterdir())
    assert main(["explain", str(mobilenet_run), str(image), "--layer", "backbone/block_6_expand_relu", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{image.stem}-activations.png", f"{image.stem}-gradcam.png"]


@pytest.mark.parametrize("case, message", [
    ("bad-image", "not an image Pillow can read"),
    ("missing-image", "no such file"),
    ("bad-layer", "no layer 'conv9'"),
    ("bad-run", "no such run directory"),
])
def test_explain_and_report_errors_are_one_line_exit_2(case, message, baseline_run, views_data, tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    good = next((views_data[0] / "validation-horse-or-human" / "horses").iterdir())
    argv = {
        "bad-image": ["explain", str(baseline_run), str(bad)],
        "missing-image": ["explain", str(baseline_run), str(tmp_path / "missing.png")],
        "bad-layer": ["explain", str(baseline_run), str(good), "--layer", "conv9"],
        "bad-run": ["report", str(tmp_path / "nope"), "--data-dir", str(views_data[0])],
    }[case]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
