"""The unsure trade-off: the curve agrees with the rule at every tau, per-class answer counts, its plot, and the
report's view on the folder a run was evaluated on."""

import json

import numpy as np
import pytest

from horses_humans.inference.unsure import UNSURE, UnsureRule, answer_counts, tradeoff_curve
from horses_humans.models.outputs import ClassOutput

TWO = ClassOutput.for_classes(["horses", "humans"])
THREE = ClassOutput.for_classes(["horses", "humans", "neither"])


def random_rows(n: int, classes: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, classes))
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


@pytest.mark.parametrize("output", [TWO, THREE], ids=["two", "three"])
def test_every_point_of_the_curve_is_what_the_rule_answers(output):
    p = random_rows(60, len(output.class_names))
    labels = np.random.default_rng(1).integers(0, 3, 60)  # 2 = neither (a class of THREE, beyond TWO's)
    curve = tradeoff_curve(p, labels, output, neither_label=2, chosen=0.61)
    assert curve["unsure_of"] == "neither" and 0.61 in curve["tau"] and curve["tau"][0] == 0.0
    assert (
        np.all(np.diff(curve["tau"]) > 0)
        and np.all(np.diff(curve["right"]) <= 0)
        and np.all(np.diff(curve["unsure"]) >= 0)
    )
    for tau, right, unsure in zip(curve["tau"], curve["right"], curve["unsure"]):
        verdicts = UnsureRule(tau, "neither" if output is THREE else None).apply(p, output)
        names = [v.label for v in verdicts]
        real = labels != 2
        assert right == pytest.approx(
            np.mean([n == output.class_names[y] for n, y in zip(np.array(names)[real], labels[real])])
        )
        assert unsure == pytest.approx(np.mean([n == UNSURE for n in np.array(names)[~real]]))


def test_without_neither_images_the_curve_counts_real_ones_unsure():
    p = np.array([[0.9, 0.1], [0.3, 0.7], [0.45, 0.55]])
    curve = tradeoff_curve(p, np.array([0, 1, 0]), TWO)
    assert curve["unsure_of"] == "real classes" and curve["chosen"] is None
    assert list(curve["tau"]) == pytest.approx([0.0, 0.55, 0.7, 0.9])
    assert list(curve["right"]) == pytest.approx([2 / 3, 2 / 3, 2 / 3, 1 / 3])  # the 0.55 human is wrong anyway
    assert list(curve["unsure"]) == pytest.approx([0, 0, 1 / 3, 2 / 3])


def test_a_folder_of_neither_images_alone_has_no_right_curve_and_no_warning():
    import warnings

    p = random_rows(5, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Mean of empty slice" would be an error here
        curve = tradeoff_curve(p, np.full(5, 2), THREE, neither_label=2)
    assert np.isnan(curve["right"]).all() and curve["unsure_of"] == "neither"
    assert curve["unsure"][0] == pytest.approx(np.mean(p.argmax(axis=1) == 2))  # tau 0: only neither wins


def test_answer_counts_by_hand():
    p = np.array([[0.9999, 0.0001], [0.2, 0.8], [0.6, 0.4], [0.99995, 0.00005], [0.1, 0.9]])
    counts = answer_counts(UnsureRule(0.7), p, [0, 1, 0, 2, 0], TWO, ["horses", "humans", "neither"])
    assert counts["horses"] == {"images": 3, "right": 1, "unsure": 1, "wrong": 1, "sure_wrong": 0}
    assert counts["humans"] == {"images": 1, "right": 1, "unsure": 0, "wrong": 0, "sure_wrong": 0}
    assert counts["neither"] == {"images": 1, "right": 0, "unsure": 0, "wrong": 1, "sure_wrong": 1}


def test_the_plot_marks_the_calibrated_tau():
    from horses_humans.analysis.plots import plot_tradeoff

    p, labels = random_rows(40, 2), np.random.default_rng(2).integers(0, 3, 40)
    curve = tradeoff_curve(p, labels, TWO, 2, chosen=0.7)
    ax = plot_tradeoff({"run": curve}, "t").axes[0]
    dot = [line for line in ax.get_lines() if line.get_marker() == "o"][0]
    at = list(curve["tau"]).index(0.7)
    assert dot.get_xdata()[0] == pytest.approx(100 * curve["unsure"][at])
    assert dot.get_ydata()[0] == pytest.approx(100 * curve["right"][at])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["run (dot: calibrated tau 0.700)"]
    assert ax.get_xlabel().startswith("neither images answered unsure")


@pytest.mark.slow
def test_report_draws_the_curve_on_the_folder_the_run_was_evaluated_on(tmp_path):
    from horses_humans.analysis import report
    from horses_humans.analysis.evaluation import EvalSplit, evaluate_run

    from ..centroid_runs import centroid_setup
    from ..synthetic import make_classes

    run, data = centroid_setup(tmp_path, 2)
    html = report.write_report(run, data, log=lambda s: None).read_text()
    assert '<section id="tradeoff">' in html and "On the validation split" in html
    folder = make_classes(tmp_path / "photos", ["horses", "humans"], 3, np.random.default_rng(0))
    evaluate_run(run, EvalSplit(data_dir=data, folder=folder), log=lambda s: None)
    html = report.write_report(run, data, log=lambda s: None).read_text()
    assert f"On the labelled folder {folder}: as the minimum confidence" in html and "real classes images" in html
    assert (run / "report" / "tradeoff.png").stat().st_size > 0
    assert json.loads(next((run / "evaluations").glob("data-*.json")).read_text())["folder"] == str(folder)
