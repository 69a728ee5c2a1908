"""report.py and the `report` / `explain` commands: every section, embedded images, exit codes."""

import base64
import re
from html import escape as html_escape

import numpy as np
import pytest
from PIL import Image

from horses_humans.analysis import report
from horses_humans.analysis.evaluation import classification_metrics
from horses_humans.cli.main import main
from horses_humans.inference.calibration import describe_map
from horses_humans.runs.store import load_run, read_calibration

from ..tiers import slow_fixture

SECTIONS = [
    "samples",
    "augmentation",
    "curves",
    "activations",
    "gradcam",
    "confusion",
    "roc",
    "reliability",
    "tradeoff",
    "misclassified",
]


def embedded_images(html: str) -> list[bytes]:
    """The decoded bytes of every <img> in the page; fails if any image is not a data URI."""
    sources = re.findall(r'<img [^>]*src="([^"]*)"', html)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    return [base64.b64decode(s.split(",", 1)[1]) for s in sources]


@pytest.fixture(scope="module")
def baseline_report(baseline_run, views_data, mobilenet_run):
    data, cache = views_data
    assert (
        main(
            [
                "report",
                str(baseline_run),
                "--data-dir",
                str(data),
                "--cache-dir",
                str(cache),
                "--compare",
                str(mobilenet_run),
            ]
        )
        == 0
    )
    return baseline_run / "report"


def test_report_has_every_section_with_its_images_embedded(baseline_report):
    html = (baseline_report / "report.html").read_text()
    for key in SECTIONS:
        if key != "augmentation":  # the baseline trains without augmentation: its report shows none
            assert f'<section id="{key}">' in html and f'href="#{key}"' in html
    assert '<section id="augmentation">' not in html and not (baseline_report / "augmentation.png").exists()
    pngs = sorted(baseline_report.glob("*.png"))
    assert {p.stem for p in pngs} >= set(SECTIONS) - {"misclassified", "augmentation"}
    images = embedded_images(html)
    assert sorted(images) == sorted(p.read_bytes() for p in pngs)  # each PNG embedded once, byte for byte
    assert "http://" not in html and "https://" not in html  # opens offline
    assert not [p for p in baseline_report.iterdir() if p.name.startswith(".")]  # no temporary files left
    for key in ("accuracy", "roc_auc", "baseline"):
        assert key in html


def test_report_captions_say_what_they_show(baseline_report, baseline_run):
    html = (baseline_report / "report.html").read_text()
    assert "augmentation layers" not in html  # the baseline has none, and borrows no other recipe's
    assert "2 runs overlaid" in html  # --compare
    assert "Grad-CAM of the predicted class at layer conv3" in html
    fitted = html_escape(describe_map(read_calibration(baseline_run)))  # the method and its terms, in words
    assert f"ECE (15 bins), before -&gt; after {fitted}" in html and f"validation images; {fitted}" in html


def test_report_of_a_transfer_model_reaches_into_its_backbone(mobilenet_run, views_data):
    path = report.write_report(mobilenet_run, *views_data, log=lambda s: None)
    html = path.read_text()
    assert all(f'<section id="{key}">' in html for key in SECTIONS if key != "augmentation")  # trained without
    assert "backbone/out_relu" in html
    assert len(embedded_images(html)) == len(list(path.parent.glob("*.png")))


def test_misclassified_gallery_sorted_by_loss(baseline_run, views_data, tmp_path):
    ev = report.evaluate(load_run(baseline_run), *views_data, log=lambda s: None)
    p_humans = np.where(ev.split.y == 1, 0.4, 0.6) + np.linspace(0, 0.3, len(ev.split)) * np.where(
        ev.split.y == 1, -1, 1
    )
    ev.probabilities = ev.output.probabilities(p_humans)
    view = report.misclassified_view(ev, tmp_path)
    assert view.png == tmp_path / "misclassified.png" and Image.open(view.png).format == "PNG"
    assert view.caption.startswith(f"{len(ev.split)} of {len(ev.split)} validation images are misclassified; the 12 ")
    ev.probabilities = ev.output.probabilities(ev.split.y.astype(float))
    view = report.misclassified_view(ev, tmp_path)
    assert view.png is None and not (tmp_path / "misclassified.png").exists() and "No validation image" in view.caption


def test_render_html_escapes_text_and_skips_missing_images(baseline_run):
    run = load_run(baseline_run)
    metrics = classification_metrics([0, 0, 1, 1], np.eye(2)[[0, 0, 1, 1]], run.output)
    html = report.render_html(run, metrics, [report.View("x", "A <b> title", "1 < 2 & more")])
    assert "A &lt;b&gt; title" in html and "1 &lt; 2 &amp; more" in html and "<img" not in html


def test_explain_command_writes_two_pngs(baseline_run, tmp_path, capsys):
    image = tmp_path / "person.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 40, 3)).astype(np.uint8)).save(image)
    assert main(["explain", str(baseline_run), str(image)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(rf"{re.escape(str(image))}: (horses|humans) \(probability [01]\.\d{{4}}\)", out[0])
    written = [line.removeprefix("wrote ") for line in out[1:]]
    assert written == [
        str(baseline_run / "explain" / "person-activations.png"),
        str(baseline_run / "explain" / "person-gradcam.png"),
    ]
    assert all(Image.open(p).format == "PNG" for p in written)


def test_explain_a_nested_backbone_layer(mobilenet_run, views_data, tmp_path, capsys):
    image = next((views_data[0] / "validation-horse-or-human" / "humans").iterdir())
    assert (
        main(
            [
                "explain",
                str(mobilenet_run),
                str(image),
                "--layer",
                "backbone/block_6_expand_relu",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{image.stem}-activations.png", f"{image.stem}-gradcam.png"]


@pytest.mark.parametrize(
    "case, message",
    [
        ("bad-image", "not an image Pillow can read"),
        ("missing-image", "no such file"),
        ("bad-layer", "no layer 'conv9'"),
        ("bad-run", "no such run directory"),
    ],
)
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


# ---------------------------------------------------------------- more than two classes


@pytest.fixture(scope="module", params=[3, 5], ids=lambda n: f"{n}-classes")
@slow_fixture
def centroid_report(request, tmp_path_factory):
    """(n, run, data, report.html text) of the tiny hand-set model (tests/centroid_runs.py) for n classes."""
    from ..centroid_runs import centroid_setup

    n = request.param
    run, data = centroid_setup(tmp_path_factory.mktemp(f"report{n}"), n)
    return n, run, data, report.write_report(run, data, log=lambda s: None).read_text()


def test_report_of_n_classes_has_every_section(centroid_report):
    from ..synthetic import class_names

    n, run, _, html = centroid_report
    for key in SECTIONS:  # the centroid model has no augmentation layers: no augmentation section
        assert (f'<section id="{key}">' in html) == (key != "augmentation"), key
    assert len(embedded_images(html)) == len(list((run / "report").glob("*.png")))
    assert "<h2>Per class</h2>" in html and all(f"<td>{name}</td>" in html for name in class_names(n))
    assert "<th>macro f1</th>" in html and "roc_auc (one-vs-rest, macro)" in html and "positive class" not in html
    assert "columns: predicted as the most probable class" in html and "p = probability of the predicted label" in html
    assert "One curve per class" in html and "No curve for" not in html
    assert "No validation image is misclassified." in html  # the centroid model labels every synthetic image right


def test_roc_curves_one_per_class_average_to_the_macro_auc(centroid_report):
    from horses_humans.analysis.evaluation import classification_metrics

    n, run, data, _ = centroid_report
    ev = report.evaluate(load_run(run), data, None, log=lambda s: None)
    rng = np.random.default_rng(0)
    ev.probabilities = (
        ev.probabilities * 0.4 + rng.dirichlet(np.ones(n), len(ev.split)) * 0.6
    )  # imperfect, but rows sum to 1
    curves = report.roc_curves(ev.split.y, ev.probabilities, ev.output)
    assert list(curves) == list(ev.run.class_names)
    metrics = classification_metrics(ev.split.y, ev.probabilities, ev.output)
    assert np.mean([a for _, _, a in curves.values()]) == pytest.approx(metrics["roc_auc"])
    assert len(metrics["confusion_matrix"]) == n and all(len(row) == n for row in metrics["confusion_matrix"])


def test_roc_curves_skip_a_class_without_validation_images():
    from horses_humans.models.outputs import ClassOutput

    three = ClassOutput.for_classes(["a", "b", "c"])
    y = np.array([0, 0, 1, 1])
    curves = report.roc_curves(y, np.array([[0.8, 0.1, 0.1], [0.5, 0.3, 0.2], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1]]), three)
    assert list(curves) == ["a", "b"] and curves["a"][2] == 1.0


def test_misclassified_gallery_of_n_classes_ranks_by_the_true_class_probability(centroid_report, tmp_path):
    n, run, data, _ = centroid_report
    ev = report.evaluate(load_run(run), data, None, log=lambda s: None)
    y = np.asarray(ev.split.y)
    wrong = (y + 1) % n  # every image labelled as the next class, with less and less left for its true class
    p_true = np.linspace(0.3, 0.01, len(y))
    ev.probabilities = np.full((len(y), n), 0.0)
    ev.probabilities[np.arange(len(y)), wrong] = 1 - p_true
    ev.probabilities[np.arange(len(y)), y] = p_true
    order = report.explain.misclassified(y, ev.probabilities, ev.output)
    assert list(order) == list(range(len(y)))[::-1]  # the smallest p(true) is the worst
    assert ev.describe(order[0]).endswith(f"-> {ev.run.class_names[wrong[-1]]}  p={1 - p_true[-1]:.3f}")
    view = report.misclassified_view(ev, tmp_path)
    assert view.png.exists() and view.caption.startswith(f"{len(y)} of {len(y)} validation images are misclassified")


def test_the_augmentation_view_shows_the_runs_own_layers_and_only_those(tmp_path):
    from types import SimpleNamespace

    from horses_humans.config import TrainConfig
    from horses_humans.models.recipes import build_model

    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    split = SimpleNamespace(x=x, y=np.array([0, 1, 0, 1]))
    views = {}
    for recipe in ("augmented", "baseline"):
        model = build_model(TrainConfig(recipe=recipe, image_size=32), output=2)
        views[recipe] = report.augmentation_view(
            SimpleNamespace(predictor=SimpleNamespace(model=model), split=split), tmp_path
        )
    assert views["baseline"] is None  # no augmentation layers: no view, and no other recipe's layers borrowed
    assert "this model's own augmentation layers (" in views["augmented"].caption
    assert (tmp_path / "augmentation.png").is_file()
