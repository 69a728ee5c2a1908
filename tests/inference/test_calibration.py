"""Calibration (temperature, temperature + bias, vector scaling, chosen by cross-validation), ECE and reliability
bins; calibration.json written, merged and served through Run.output."""

import json

import numpy as np
import pytest

from horses_humans.analysis.evaluation import classification_metrics, sure_mistakes
from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.inference.calibration import (
    calibrate_run,
    calibration_record,
    describe_map,
    expected_calibration_error,
    fit_method,
    fit_temperature,
    format_calibration,
    negative_log_likelihood,
    reliability_bins,
    served,
)
from horses_humans.models.outputs import ClassOutput, tempered
from horses_humans.runs.store import CALIBRATION_FILE, load_run, update_calibration

from ..centroid_runs import centroid_setup, write_centroid_run
from ..fake_runs import write_run


def overconfident(
    n: int = 4000, sharpen: float = 3.0, seed: int = 0, lean: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(y (N,), probabilities (N, 2)): labels drawn from sigmoid(z), the model answering sigmoid(sharpen * z + lean)
    (sharpen < 1: underconfident; lean: it favours class 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    p1 = 1 / (1 + np.exp(-(sharpen * z + lean)))
    return y, np.stack([1 - p1, p1], axis=1).astype(np.float32)


def class_biased(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(y (N,), probabilities (N, 3)): labels drawn from softmax(z), the model answering softmax(z * scale + bias)
    with its own scale and bias per class (over- and underconfident on different classes, leaning to class 1)."""
    from scipy.special import softmax

    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, (n, 3))
    y = np.array([rng.choice(3, p=row) for row in softmax(z, axis=1)])
    return y, softmax(z * np.array([1.0, 2.0, 0.5]) + np.array([0.0, 1.0, -1.0]), axis=1).astype(np.float32)


def test_temperature_one_is_the_model_itself():
    p = np.array([[0.2, 0.8], [1.0, 0.0]], np.float32)
    assert np.array_equal(tempered(p, 1.0), p)
    raw = np.array([[0.8], [0.0]], np.float32)
    assert np.array_equal(
        ClassOutput.for_classes(["a", "b"]).probabilities(raw), np.stack([1 - raw[:, 0], raw[:, 0]], 1)
    )


def test_sigmoid_temperature_is_logit_over_t_and_keeps_labels():
    output = ClassOutput(("a", "b"), "sigmoid", temperature=2.0)
    p = np.array([0.9, 0.1, 0.5, 0.999], np.float32)
    expected = 1 / (1 + np.exp(-np.log(p / (1 - p)) / 2.0))
    probabilities = output.probabilities(p)
    assert np.allclose(probabilities[:, 1], expected, atol=1e-6) and np.allclose(probabilities.sum(axis=1), 1)
    assert np.array_equal(
        output.predicted(probabilities), ClassOutput(("a", "b"), "sigmoid").predicted(np.stack([1 - p, p], 1))
    )


def test_softmax_temperature_keeps_argmax_and_softens():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4) * 0.3, size=200).astype(np.float32)
    out = ClassOutput.for_classes(list("abcd"))
    for t in (0.3, 2.0, 10.0):
        soft = tempered(p, t)
        assert np.allclose(soft.sum(axis=1), 1, atol=1e-5)
        assert np.array_equal(out.predicted(soft), out.predicted(p))
    assert tempered(p, 10.0).max(axis=1).mean() < p.max(axis=1).mean()


def test_temperature_travels_in_labels_and_must_be_positive():
    output = ClassOutput(("a", "b"), "sigmoid", temperature=2.5)
    assert output.record()["temperature"] == 2.5 and ClassOutput.from_labels(output.record()) == output
    assert "temperature" not in ClassOutput.for_classes(["a", "b"]).record()  # uncalibrated labels are unchanged
    with pytest.raises(HorsesHumansError, match="temperature"):
        ClassOutput(("a", "b"), "sigmoid", temperature=0.0)


def test_fit_recovers_the_overconfidence_and_lowers_nll_and_ece():
    y, p = overconfident(sharpen=3.0)
    t = fit_temperature(y, p)
    assert 2.6 < t < 3.4
    after = tempered(p, t)
    assert negative_log_likelihood(y, after) < negative_log_likelihood(y, p)
    assert expected_calibration_error(y, after) < 0.03 < expected_calibration_error(y, p)


def test_an_underconfident_model_is_sharpened_and_its_ece_falls():
    y, p = overconfident(sharpen=0.5)  # too soft: the true T is 0.5
    record = calibration_record(y, p)
    assert record["method"] == "temperature" and 0.45 < record["temperature"] < 0.55
    assert record["ece_after"] < 0.03 < record["ece_before"] and record["nll_after"] < record["nll_before"]
    assert set(record["heldout_nll"]) == {"none", "temperature"} and record["folds"] == 5  # auto keeps labels
    assert record["chosen_by"].startswith("held-out NLL, among the methods that keep every label")


def test_an_overconfident_model_is_softened():
    y, p = overconfident(sharpen=3.0)
    record = calibration_record(y, p)
    assert record["method"] == "temperature" and 2.6 < record["temperature"] < 3.4
    assert record["class_scale"] is None and record["class_bias"] is None  # written out: a stale one is cleared
    assert record["ece_after"] < 0.03 < record["ece_before"]


def test_a_tiny_split_with_one_mistake_gets_no_extreme_temperature():
    # 9 of 10 right at p 0.6, one wrong by a hair: the likelihood alone sharpens to the bound (every right answer at
    # p 0.9997 from ten images); the guard (prior, cross-validated choice) keeps the promise near the 90% it saw
    p = np.array([[0.4, 0.6]] * 5 + [[0.6, 0.4]] * 4 + [[0.501, 0.499]], np.float32)
    y = np.array([1] * 5 + [0] * 4 + [1])
    assert fit_method(y, p, "temperature", prior_sd=None).temperature < 0.06
    record = calibration_record(y, p)
    after = served(p, record["temperature"], record["class_scale"], record["class_bias"])
    assert record["temperature"] > 0.1 and after.max() < 0.95
    assert record["ece_after"] < record["ece_before"]


def test_temperature_plus_bias_wins_on_a_model_that_leans_to_one_class():
    y, p = overconfident(sharpen=1.0, lean=2.0)
    kept = calibration_record(y, p)  # auto: the bias would move labels, so it is not among the candidates
    assert kept["method"] == "temperature" and kept["class_bias"] is None
    assert (served(p, kept["temperature"]).argmax(1) == p.argmax(1)).all()
    record = calibration_record(y, p, method="best")
    assert record["method"] == "temperature+bias" and record["class_bias"][1] == pytest.approx(-2.0, abs=0.2)
    scores = record["heldout_nll"]
    assert scores["temperature+bias"] < scores["temperature"] < scores["none"]
    assert record["ece_after"] < 0.03 < record["ece_before"]


def test_vector_scaling_wins_on_a_per_class_biased_model_and_is_recorded(tmp_path):
    y, p = class_biased()
    assert calibration_record(y, p)["method"] == "temperature"  # auto keeps labels
    record = calibration_record(y, p, method="best")
    assert record["method"] == "vector" and set(record["heldout_nll"]) == {"none", "temperature", "vector"}
    assert record["heldout_nll"]["vector"] < record["heldout_nll"]["temperature"] - 0.05
    assert len(record["class_scale"]) == len(record["class_bias"]) == 3 and record["temperature"] == 1.0
    assert record["ece_after"] < 0.03 < record["ece_before"]
    run_dir = write_centroid_run(tmp_path, 3)
    update_calibration(run_dir, **{k: v for k, v in record.items() if not k.startswith("reliability")})
    output = load_run(run_dir).output
    assert output.calibration_method == "vector" and list(output.scale) == record["class_scale"]
    after = served(p, 1.0, record["class_scale"], record["class_bias"])
    np.testing.assert_allclose(output.probabilities(p), after, atol=1e-6)  # what the run serves is what was scored
    assert expected_calibration_error(y, output.probabilities(p)) == pytest.approx(record["ece_after"], abs=1e-6)
    assert format_calibration(record).startswith("vector scaling (class scales ")


def test_an_old_temperature_only_record_still_loads(tmp_path):
    run_dir = write_run(tmp_path, TrainConfig(recipe="baseline"))
    old = {"temperature": 1.5, "method": "temperature scaling", "ece_before": 0.1, "ece_after": 0.05, "mistakes": 3}
    (run_dir / CALIBRATION_FILE).write_text(json.dumps(old))
    output = load_run(run_dir).output
    assert output.temperature == 1.5 and output.scale is None and output.bias is None
    assert output.calibration_method == "temperature" and describe_map(old) == "temperature 1.500"


def test_a_calibration_json_whose_scale_does_not_fit_the_run_is_refused_when_loaded(tmp_path):
    run_dir = write_run(tmp_path, TrainConfig(recipe="baseline"))  # two classes
    (run_dir / CALIBRATION_FILE).write_text(json.dumps({"method": "vector", "class_scale": [1.0, 2.0, 0.5]}))
    with pytest.raises(
        HorsesHumansError, match=r"calibration\.json: calibration class_scale .*horses-humans calibrate"
    ):
        load_run(run_dir)


def test_a_scale_or_bias_that_does_not_fit_the_classes_is_a_clear_error(tmp_path):
    with pytest.raises(HorsesHumansError, match="class_scale .* one finite number per class"):
        ClassOutput(("a", "b", "c"), "softmax", scale=(1.0, 2.0))
    with pytest.raises(HorsesHumansError, match="class_bias"):
        ClassOutput(("a", "b"), "sigmoid", bias=(0.0, float("nan")))
    with pytest.raises(HorsesHumansError, match="each above 0"):
        ClassOutput(("a", "b", "c"), "softmax", scale=(1.0, 0.0, 1.0))
    output = ClassOutput(("a", "b", "c"), "softmax", 0.5, 0.8, (1.0, 2.0, 0.5), (0.1, 0.0, -0.1))
    assert ClassOutput.from_labels(output.record()) == output  # labels.json carries all of it


def all_right(n: int = 24, classes: int = 2, sure: tuple[float, float] = (0.55, 0.75), seed: int = 0):
    """(y (N,), probabilities (N, C)): every row's top class is the true one, at a confidence drawn from `sure`
    (below about 0.96: an underconfident model right on all of them), the rest spread over the other classes."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    top = rng.uniform(*sure, n)
    rest = rng.dirichlet(np.ones(classes - 1), n) * (1 - top)[:, None]  # each below top (> 0.5): every row right
    p = np.insert(rest, 0, top, axis=1)  # the top in column 0, then rolled to the true class
    return y, np.stack([np.roll(row, label) for row, label in zip(p, y)]).astype(np.float32)


@pytest.mark.parametrize("classes", [2, 3])
def test_an_underconfident_split_without_mistakes_is_sharpened_to_the_rule_of_succession(classes):
    # every answer right: the NLL falls as T -> 0 and would make every answer certain; 24 right answers support a
    # confidence of 25/26 (Laplace), so T is set to serve that on average, and no label moves
    y, p = all_right(24, classes)
    record = calibration_record(y, p)
    after = served(p, record["temperature"])
    assert record["mistakes"] == 0 and record["method"] == "temperature" and record["temperature"] < 1
    assert after.max(axis=1).mean() == pytest.approx(25 / 26, abs=1e-3) and (after.argmax(1) == y).all()
    ece_after = expected_calibration_error(y, after)
    assert ece_after == pytest.approx(record["ece_after"]) and ece_after < expected_calibration_error(y, p) - 0.2
    assert record["folds"] == 0 and record["heldout_nll"] == {}  # no mistake to score a held-out fold by
    assert record["fit"] == f"no mistakes: mean confidence {p.max(1).mean():.3f} -> 0.962 = (N+1)/(N+2), N = 24"
    assert fit_temperature(y, p) == record["temperature"]
    line = format_calibration(record)
    assert line.startswith(f"temperature {record['temperature']:.3f} (no mistakes: mean confidence ") and "ECE" in line
    assert "no mistakes to fit on" not in describe_map(record)


@pytest.mark.parametrize("method", ["best", "temperature", "vector", "temperature+bias"])
def test_every_method_on_a_split_without_mistakes_is_the_rule_of_succession_temperature(method):
    classes = 2 if method == "temperature+bias" else 3  # nothing to fit a bias or a per-class scale on
    y, p = all_right(24, classes)
    record = calibration_record(y, p, method=method)
    assert record["method"] == "temperature" and record["class_scale"] is None and record["class_bias"] is None
    assert record["temperature"] == calibration_record(y, p)["temperature"] < 1 and record["fit"].endswith("N = 24")
    assert calibration_record(y, p, method="none")["method"] == "none"  # asked for none: none


def test_a_split_without_mistakes_already_surer_than_the_bound_is_kept():
    # 24 right at 0.99 > 25/26: no mistake says the model is overconfident, so it is not softened toward the bound
    y, p = all_right(24, 3, sure=(0.985, 0.995))
    record = calibration_record(y, p)
    assert record["method"] == "none" and record["temperature"] == 1.0 and record["mistakes"] == 0
    assert record["ece_after"] == record["ece_before"] == pytest.approx(expected_calibration_error(y, p))
    assert record["fit"].endswith("already at or above (N+1)/(N+2) = 0.962, N = 24: kept")
    assert format_calibration(record).startswith("no calibration (no mistakes: mean confidence 0.99")
    assert fit_temperature(y, p) == 1.0 and fit_temperature([], np.zeros((0, 3), np.float32)) == 1.0


def test_a_split_with_mistakes_is_fitted_by_likelihood_as_before():
    y, p = overconfident(n=300, sharpen=0.5)  # underconfident, with mistakes
    record = calibration_record(y, p)
    assert record["mistakes"] > 0 and record["fit"] is None and record["folds"] == 5
    assert record["chosen_by"] == "held-out NLL, among the methods that keep every label"
    assert record["temperature"] == fit_method(y, p, "temperature").temperature  # the likelihood fit with its prior
    for method in ("temperature", "temperature+bias"):  # the rule of succession never enters a split with mistakes
        assert fit_method(y, p, method) == fit_method(y, p, method, perfect_by_succession=False)
    assert format_calibration(record).startswith(f"temperature {record['temperature']:.3f} (chosen by held-out NLL")


def test_a_mirror_that_disagrees_is_sharpened_no_further_than_every_label_keeps():
    # three classes, an image and its mirror: the last image is right on their mean, but sharpened the mirror's
    # class 1 wins; T stops where every label is still right, short of the bound
    easy = np.array([[0.5, 0.3, 0.2], [0.3, 0.5, 0.2], [0.2, 0.3, 0.5]] * 2, np.float32)
    views = np.stack([np.vstack([easy, [[0.40, 0.21, 0.39]]]), np.vstack([easy, [[0.30, 0.45, 0.25]]])])
    y = np.array([0, 1, 2] * 2 + [0])
    record = calibration_record(y, views)
    after = served(views, record["temperature"])
    assert record["method"] == "temperature" and record["temperature"] < 0.9 and (after.argmax(1) == y).all()
    assert not (served(views, 0.1).argmax(1) == y).all()  # sharper, a label moves
    assert after.max(1).mean() < 8 / 9 and "short of (N+1)/(N+2) = 0.889, N = 7" in record["fit"]


def test_an_old_record_without_mistakes_still_reads(tmp_path):
    run_dir = write_run(tmp_path, TrainConfig(recipe="baseline"))
    old = {"method": "none", "temperature": 1.0, "mistakes": 0, "chosen_by": "held-out NLL, among the methods that "}
    (run_dir / CALIBRATION_FILE).write_text(json.dumps({**old, "ece_before": 0.3, "ece_after": 0.3}))
    assert not load_run(run_dir).output.is_calibrated
    assert describe_map(old) == "no calibration (no mistakes to fit on: the model's own probabilities)"


def test_ece_and_reliability_bins_by_hand():
    p = np.array([[0.1, 0.9]] * 10 + [[0.65, 0.35]] * 4, np.float32)
    y = np.array([1] * 9 + [0] + [0, 0, 1, 1])
    table = reliability_bins(y, p, bins=10)
    assert (
        table["edges"].shape == (11,)
        and table["count"].sum() == 14
        and table["count"][8] == 10
        and table["count"][6] == 4
    )
    assert table["accuracy"][8] == pytest.approx(0.9) and table["confidence"][6] == pytest.approx(0.65)
    assert np.isnan(table["accuracy"][0])
    assert expected_calibration_error(y, p, bins=10) == pytest.approx(4 * 0.15 / 14, abs=1e-6)


def test_metrics_carry_ece_and_count_sure_mistakes():
    output = ClassOutput.for_classes(["a", "b"])
    p = np.array([[0.0001, 0.9999], [0.9995, 0.0005], [0.4, 0.6]], np.float32)
    y = np.array([0, 1, 0])
    assert sure_mistakes(y, p, output) == 2
    metrics = classification_metrics(y, p, output)
    assert metrics["sure_mistakes"] == 2 and metrics["ece"] > 0.5 and metrics["temperature"] == 1.0


def test_update_keeps_other_keys(tmp_path):
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"unsure": {"threshold": 0.4}, "temperature": 9.0}))
    update_calibration(tmp_path, temperature=2.0, images=5)
    assert json.loads((tmp_path / CALIBRATION_FILE).read_text()) == {
        "unsure": {"threshold": 0.4},
        "temperature": 2.0,
        "images": 5,
    }


def test_run_output_reads_the_temperature(tmp_path):
    run_dir = write_run(tmp_path, TrainConfig(recipe="baseline"))
    assert load_run(run_dir).output.temperature == 1.0
    update_calibration(run_dir, temperature=3.0)
    assert load_run(run_dir).output.temperature == 3.0


def test_calibrate_run_writes_the_record_and_keeps_other_keys(tmp_path):
    run_dir, data = centroid_setup(tmp_path, 3)
    update_calibration(run_dir, unsure={"rule": "kept"}, temperature=5.0)  # a stale T must not feed the fit
    record = calibrate_run(run_dir, data, log=lambda line: None)
    saved = json.loads((run_dir / CALIBRATION_FILE).read_text())
    assert saved == record and saved["unsure"] == {"rule": "kept"}
    assert saved["fitted_on"] == "validation" and saved["bins"] == 15
    assert saved["method"] in ("none", "temperature", "vector") and saved["prior_sd"] == 1.0
    assert saved["images"] == 6 and len(saved["reliability_after"]["count"]) == 15
    assert saved["nll_after"] <= saved["nll_before"] + 1e-9
    assert saved["temperature"] == calibrate_run(run_dir, data, log=lambda line: None)["temperature"]
    assert load_run(run_dir).output.temperature == saved["temperature"]


def test_training_calibrates_the_saved_model(baseline_run):
    record = json.loads((baseline_run / CALIBRATION_FILE).read_text())
    assert record["temperature"] > 0 and record["images"] == len(
        load_run(baseline_run).data["sides"]["validation"]["files"]
    )


def test_reliability_plot_has_a_panel_each_with_its_ece():
    from horses_humans.analysis.plots import plot_reliability
    from horses_humans.inference.calibration import bins_record

    y, p = overconfident(n=500)
    before, after = reliability_bins(y, p), bins_record(reliability_bins(y, tempered(p, 3.0)))  # arrays or JSON lists
    titles = [ax.get_title() for ax in plot_reliability(before, after).axes]
    assert titles[0].startswith("before calibration: ECE") and titles[1].startswith("after calibration: ECE")
    assert f"{expected_calibration_error(y, p):.4f}" in titles[0] and "500 images" in titles[1]
    assert len(plot_reliability(before).axes) == 1


def test_export_checks_the_model_own_outputs_and_ships_the_temperature(tmp_path):
    from horses_humans.export import pipeline as ex

    run_dir, data = centroid_setup(tmp_path, 2)
    raw = ex.open_source(run_dir, data, log=lambda line: None).reference
    update_calibration(run_dir, temperature=4.0)
    source = ex.open_source(run_dir, data, log=lambda line: None)
    assert np.array_equal(source.reference, raw)  # parity is on the model's outputs; T is applied after any model
    result = ex.export(source, "keras", latency_runs=1)
    assert result.shipped, result.error
    labels = json.loads((result.path / "labels.json").read_text())
    assert labels["temperature"] == 4.0 and ClassOutput.from_labels(labels).temperature == 4.0


def test_calibrate_command_prints_the_fit(tmp_path, capsys):
    from horses_humans.cli.main import main

    run_dir, data = centroid_setup(tmp_path, 3)
    assert main(["calibrate", str(run_dir), "--data-dir", str(data)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(("temperature ", "no calibration", "vector scaling")) and "validation images" in line
    assert "ECE" in line
    assert (run_dir / CALIBRATION_FILE).exists()
    assert main(["calibrate", str(tmp_path / "nowhere")]) == 2


def test_calibrate_fits_the_method_asked_for_and_refuses_one_that_does_not_fit(tmp_path, capsys):
    from horses_humans.cli.main import main

    run_dir, data = centroid_setup(tmp_path, 2)
    update_calibration(run_dir, method="temperature", temperature=3.0)
    assert main(["calibrate", str(run_dir), "--data-dir", str(data), "--method", "none"]) == 0
    saved = json.loads((run_dir / CALIBRATION_FILE).read_text())
    assert saved["method"] == "none" and saved["temperature"] == 1.0 and saved["chosen_by"].startswith("asked")
    assert not load_run(run_dir).output.is_calibrated
    assert main(["calibrate", str(run_dir), "--data-dir", str(data), "--method", "vector"]) == 2  # two classes
    assert "does not serve 2 classes: choose one of none, temperature, temperature+bias" in capsys.readouterr().err
    assert main(["calibrate", str(run_dir), "--data-dir", str(data), "--method", "best"]) == 0
    saved = json.loads((run_dir / CALIBRATION_FILE).read_text())
    assert saved["chosen_by"].startswith("held-out NLL, among every method")
    assert set(saved["heldout_nll"]) <= {"none", "temperature", "temperature+bias"}


def test_flipped_runs_fit_t_on_the_mean_they_serve():
    """With test-time flips the served probability is the mean of the tempered image and mirror: T is fitted on it."""
    from horses_humans.inference.calibration import calibration_record, served

    y, p = overconfident(n=2000)
    _, q = overconfident(n=2000, sharpen=6.0, seed=1)  # a mirror that disagrees with the image
    views = np.stack([p, q])
    t = fit_temperature(y, views)
    nll = lambda t: negative_log_likelihood(y, served(views, t))  # noqa: E731
    assert nll(t) <= min(nll(t * 0.9), nll(t * 1.1)) and nll(t) < nll(1.0)
    assert t != pytest.approx(fit_temperature(y, views.mean(axis=0)), rel=1e-3)  # not the fit on the averaged output
    record = calibration_record(y, views)
    assert record["views"].startswith("each image and its mirror") and record["ece_after"] < record["ece_before"]
    assert calibration_record(y, p)["views"] == "each image"


@pytest.mark.parametrize("tta", [False, True])
def test_calibrate_run_sharpens_an_underconfident_run_right_on_all_of_validation(tmp_path, tta):
    from horses_humans.inference.predictor import Predictor
    from horses_humans.runs.record import load_run_split

    run_dir, data = centroid_setup(tmp_path, 3, sharpness=0.5, tta=tta)  # right on every image, at about 0.4
    x = np.asarray(load_run_split(load_run(run_dir), "validation", data, None, lambda line: None).x)
    before = Predictor.from_run(run_dir, runtime="keras").predict_proba(x)
    record = calibrate_run(run_dir, data, log=lambda line: None)
    saved = json.loads((run_dir / CALIBRATION_FILE).read_text())
    assert saved == record and saved["mistakes"] == 0 and saved["method"] == "temperature"
    assert saved["temperature"] < 1 and saved["fit"].endswith("-> 0.875 = (N+1)/(N+2), N = 6")
    assert load_run(run_dir).output.temperature == saved["temperature"]
    after = Predictor.from_run(run_dir, runtime="keras").predict_proba(x)  # what predict, serve and evaluate answer
    assert before.max(1).mean() < 0.5 and after.max(1).mean() == pytest.approx(7 / 8, abs=1e-3)
    assert (after.argmax(1) == before.argmax(1)).all() and saved["ece_after"] < saved["ece_before"] - 0.3


def test_calibrate_run_fits_a_flipped_run_on_both_views(tmp_path):
    run_dir, data = centroid_setup(tmp_path, 3)
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "tta": True}))
    assert calibrate_run(run_dir, data, log=lambda line: None)["views"].startswith("each image and its mirror")
