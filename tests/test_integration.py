"""Integration: a short training run on the real data set (../shared/data or $HORSES_HUMANS_DATA) learns."""

import os
from pathlib import Path

import pytest

from horses_humans.config import TrainConfig
from horses_humans.datacheck import check_dataset
from horses_humans.evaluation import evaluate_run
from horses_humans.training import train

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_dir():
    path = Path(os.environ.get("HORSES_HUMANS_DATA") or REPO.parent / "shared" / "data")
    assert (path / "horse-or-human").is_dir(), f"integration tests need the real data set at {path} (or HORSES_HUMANS_DATA)"
    return path


def test_official_data_set_checks_clean(data_dir):
    report = check_dataset(data_dir)
    assert report["problems"] == []
    train_split = report["splits"]["horse-or-human"]
    assert train_split["counts"] == {"horses": 500, "humans": 527}
    assert report["splits"]["validation-horse-or-human"]["counts"] == {"horses": 128, "humans": 128}
    assert train_split["modes"] == {"RGBA": 1027} and train_split["sizes"] == {"300x300": 1027}


def test_short_baseline_run_learns(data_dir, tmp_path):
    config = TrainConfig(recipe="baseline", epochs=3, seed=0)
    run = train(config, data_dir, tmp_path / "runs", tmp_path / "cache", log=print)
    metrics = evaluate_run(run, data_dir, tmp_path / "cache", log=print)
    assert metrics["images"] == 256
    assert metrics["accuracy"] >= 0.70, metrics  # chance is 0.5
    assert metrics["roc_auc"] >= 0.80, metrics


def test_mobilenet_v2_from_shared_weights_reaches_97_percent(data_dir, tmp_path):
    weights = REPO.parent / "shared" / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    assert weights.is_file(), f"needs ../shared/weights ({weights})"
    config = TrainConfig(recipe="mobilenet_v2", weights=str(weights), seed=0)
    run = train(config, data_dir, tmp_path / "runs", tmp_path / "cache", log=print)
    metrics = evaluate_run(run, data_dir, tmp_path / "cache", log=print)
    assert metrics["accuracy"] >= 0.97, metrics
