"""Three and five classes end to end on learnable synthetic sets (official layout, 32 px): every recipe trains with a
softmax and sparse categorical cross-entropy, and evaluate, predict and explain answer for every class."""

import csv
import io
import json

import numpy as np
import pytest

from horses_humans.analysis.evaluation import EvalSplit, evaluate_run, format_metrics
from horses_humans.analysis.explain import write_explanation
from horses_humans.cli.main import main
from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.core.workspace import Workspace, quiet
from horses_humans.data.files import visible_files
from horses_humans.data.layouts import VALIDATION
from horses_humans.inference.predictor import Predictor
from horses_humans.models.recipes import RECIPES
from horses_humans.runs.store import load_run
from horses_humans.training.loop import train

from ..synthetic import class_names, make_own_dataset
from ..tiers import slow_fixture

QUIET = dict(log=lambda s: None)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[int, object]:
    """{classes: data dir} for 3 and 5 classes."""
    return {n: make_own_dataset(tmp_path_factory.mktemp(f"data{n}"), n, "official") for n in (3, 5)}


@pytest.fixture(scope="module")
@slow_fixture
def runs(datasets, tmp_path_factory) -> dict[int, object]:
    """{classes: run dir} of a baseline trained a few epochs on each set."""
    config = TrainConfig(recipe="baseline", epochs=4, image_size=32, batch_size=8, seed=1, precision="float32")
    return {
        n: train(config, Workspace(data, tmp_path_factory.mktemp(f"runs{n}"), tmp_path_factory.mktemp("cache"), quiet))
        for n, data in datasets.items()
    }


@pytest.mark.parametrize("n", [3, 5])
def test_a_softmax_run_learns_and_says_how_to_read_it(runs, n):
    run = load_run(runs[n])
    assert run.labels["class_names"] == class_names(n) and run.labels["output_kind"] == "softmax"
    assert "softmax" in run.labels["output"] and "threshold" not in run.labels
    assert run.load_model().outputs[0].shape[-1] == n
    assert all(h["loss"] > 0 for h in run.history)  # a cross-entropy, not a sigmoid fed labels 0..n-1 (-0.99)
    assert run.metrics["best_val_accuracy"] >= 0.8  # chance is 1/n


@pytest.mark.parametrize("n", [3, 5])
def test_evaluate_gives_every_class_and_agrees_with_kerass_accuracy(runs, datasets, n):
    metrics = evaluate_run(runs[n], EvalSplit(data_dir=datasets[n]), **QUIET)
    # Keras' "accuracy" resolved to sparse categorical accuracy (argmax), the label evaluate gives
    assert metrics["accuracy"] == pytest.approx(load_run(runs[n]).metrics["val_accuracy"])
    assert np.array(metrics["confusion_matrix"]).shape == (n, n) and metrics["images"] == 4 * n
    assert list(metrics["per_class"]) == class_names(n) and all(
        s["support"] == 4 for s in metrics["per_class"].values()
    )
    assert 0 <= metrics["roc_auc"] <= 1 and set(metrics["macro"]) == {"precision", "recall", "f1"}
    rows = list(csv.DictReader(io.StringIO((runs[n] / "predictions.csv").read_text())))
    assert len(rows) == 4 * n and [k for k in rows[0] if k.startswith("p_")] == [f"p_{c}" for c in class_names(n)]
    text = format_metrics(metrics)
    assert all(name in text for name in class_names(n))


@pytest.mark.parametrize("n", [3, 5])
def test_predict_answers_every_class(runs, datasets, n, capsys):
    files = visible_files(datasets[n] / VALIDATION)
    results = Predictor.from_run(runs[n]).predict_files(files)
    truth = [f.parent.name for f in files]
    assert {r.label for r in results} <= set(class_names(n)) and len({r.label for r in results}) >= n - 1
    assert np.mean([r.label == t for r, t in zip(results, truth)]) >= 0.8
    for r in results:
        assert list(r.probabilities) == class_names(n) and sum(r.probabilities.values()) == pytest.approx(1, abs=1e-5)
        assert r.probability == max(r.probabilities.values()) == r.probabilities[r.label]
    assert main(["predict", str(runs[n]), str(files[0]), "--csv"]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert list(row) == [
        "file",
        "label",
        "probability",
        *[f"p_{c}" for c in class_names(n)],
        "unsure_reason",
        "unsure_score",
        "error",
    ]
    assert main(["predict", str(runs[n]), str(files[0]), "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)[0]["probabilities"]) == class_names(n)


def test_explain_the_predicted_or_a_chosen_class(runs, datasets, tmp_path, capsys):
    image = visible_files(datasets[3] / VALIDATION / "class2")[0]
    result = write_explanation(runs[3], image, out_dir=tmp_path)
    assert result["explained"] == result["label"] and list(result["probabilities"]) == class_names(3)
    assert main(["explain", str(runs[3]), str(image), "--class", "class0", "--out", str(tmp_path)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith("; Grad-CAM of class0") and f"{image}: {result['label']} (probability" in first
    assert (tmp_path / f"{image.stem}-gradcam-class0.png").is_file() and (
        tmp_path / f"{image.stem}-gradcam.png"
    ).is_file()
    with pytest.raises(
        HorsesHumansError, match=r"--class 'zebra': not one of the run's classes \(class0, class1, class2\)"
    ):
        write_explanation(runs[3], image, out_dir=tmp_path, class_name="zebra")
    assert main(["explain", str(runs[3]), str(image), "--class", "zebra"]) == 2
    assert capsys.readouterr().err.startswith("error: --class 'zebra'")


def recipe_config(name: str, **options) -> TrainConfig:
    """One epoch of a recipe at its smallest cheap size (InceptionV3 needs 75 px), random backbone weights."""
    return TrainConfig(
        recipe=name,
        epochs=1,
        image_size=75 if name == "inception_v3" else 32,
        batch_size=8,
        weights="none",
        precision="float32",
        **options,
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_trains_on_three_classes(name, datasets, tmp_path):
    run = load_run(train(recipe_config(name), Workspace(datasets[3], tmp_path / "runs", tmp_path / "cache", quiet)))
    assert run.labels["output_kind"] == "softmax" and run.load_model().outputs[0].shape[-1] == 3
    assert run.history[0]["loss"] > 0 and 0 <= run.metrics["val_accuracy"] <= 1
    probabilities = Predictor.from_run(run).predict_proba(np.zeros((2, run.image_size, run.image_size, 3), np.uint8))
    assert probabilities.shape == (2, 3)


@pytest.mark.slow
def test_fine_tuning_a_five_class_transfer_model(datasets, tmp_path):
    config = recipe_config("mobilenet_v2", fine_tune_from="10", fine_tune_epochs=1)
    run = load_run(train(config, Workspace(datasets[5], tmp_path / "runs", tmp_path / "cache", quiet)))
    assert [h["epoch"] for h in run.history] == [1, 2] and all(h["loss"] > 0 for h in run.history)
    assert run.load_model().outputs[0].shape[-1] == 5


@pytest.mark.slow
def test_the_sweeps_cnns_take_three_classes(datasets, tmp_path):
    args = [
        "experiment",
        "sweep",
        "--trials",
        "1",
        "--epochs",
        "1",
        "--image-size",
        "96",
        "--precision",
        "float32",
        "--data-dir",
        str(datasets[3]),
        "--runs-dir",
        str(tmp_path / "sweep"),
        "--out",
        str(tmp_path / "sweep.md"),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert main(args) == 0
    (run,) = [p for p in (tmp_path / "sweep").iterdir() if p.is_dir()]
    assert load_run(run).labels["output_kind"] == "softmax" and run.name in (tmp_path / "sweep.md").read_text()
