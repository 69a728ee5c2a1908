"""The distance check (models/distance.py): cross-fitted threshold, the gate layer against its numpy twin, the run
file written atomically and read back checked."""

import keras
import numpy as np
import pytest

from horses_humans.config import HorsesHumansError
from horses_humans.models.distance import QUANTILE, DistanceGate, cross_fitted, gate_layer, knn_distance, load_gate


def clusters(rng, n: int = 200, dim: int = 16) -> np.ndarray:
    """Two tight clusters (the same two for every rng) of positive 'pooled features', as ReLU features are."""
    centres = np.random.default_rng(99).uniform(0.5, 1.5, (2, dim))
    return np.abs(centres[np.arange(n) % 2] + rng.normal(0, 0.05, (n, dim))).astype(np.float32)


def test_knn_distance_is_the_mean_cosine_distance_to_the_k_nearest():
    reference = np.eye(3, dtype=np.float32)
    query = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]], np.float32)
    np.testing.assert_allclose(knn_distance(reference, query, k=1), [0.0, 1 - 1 / np.sqrt(2)], atol=1e-6)
    np.testing.assert_allclose(knn_distance(reference, query, k=3)[0], (0 + 1 + 1) / 3, atol=1e-6)


def test_cross_fitted_scores_each_row_without_itself():
    features = clusters(np.random.default_rng(0))
    assert (cross_fitted(features) > 1e-4).all()  # a row never finds itself at distance 0
    duplicated = np.concatenate([features, features])  # every row has a twin: some fold holds it, most do not
    assert np.median(cross_fitted(duplicated)) < np.median(cross_fitted(features))


def test_the_threshold_leaves_about_two_percent_of_training_rows_past_it_and_catches_strangers():
    rng = np.random.default_rng(1)
    features = clusters(rng, 400)
    gate = DistanceGate.fit(features, seed=0)
    assert gate.quantile == QUANTILE
    past = (cross_fitted(gate.reference, seed=0) > gate.threshold).mean()
    assert 0.005 <= past <= 0.03
    strangers = rng.uniform(0, 2, (50, 16)).astype(np.float32)  # no cluster's direction
    assert (gate.distance(strangers) > gate.threshold).mean() > 0.9
    assert (gate.distance(clusters(np.random.default_rng(2), 100)) > gate.threshold).mean() < 0.1


def test_too_few_training_images_is_one_clear_error():
    with pytest.raises(HorsesHumansError, match="at least 30 training images"):
        DistanceGate.fit(np.ones((12, 4), np.float32))


@pytest.mark.parametrize("units", [1, 3])
def test_the_keras_gate_matches_numpy_and_answers_uniform_past_the_threshold(units):
    rng = np.random.default_rng(3)
    gate = DistanceGate.fit(clusters(rng), seed=0)
    query = np.concatenate([clusters(np.random.default_rng(4), 6), rng.uniform(0, 2, (6, 16))]).astype(np.float32)
    raw = rng.dirichlet(np.ones(max(units, 2)), len(query))[:, :units].astype(np.float32)
    out = keras.ops.convert_to_numpy(gate_layer(gate, units)([query, raw]))
    far = gate.distance(query) > gate.threshold
    assert far[6:].all() and not far[:6].any()
    np.testing.assert_allclose(out[~far], raw[~far], atol=1e-6)
    np.testing.assert_array_equal(out[far], np.full((far.sum(), units), 0.5 if units == 1 else np.float32(1 / 3)))


def test_the_gate_file_round_trips_and_a_damaged_one_names_itself(tmp_path):
    gate = DistanceGate.fit(clusters(np.random.default_rng(5)), seed=0)
    gate.save(tmp_path / "distance.npz")
    back = load_gate(tmp_path)
    np.testing.assert_array_equal(back.reference, gate.reference)
    assert (back.k, back.threshold, back.quantile) == (gate.k, gate.threshold, gate.quantile)
    assert [p.name for p in tmp_path.iterdir()] == ["distance.npz"]  # no temporary file left behind
    data = (tmp_path / "distance.npz").read_bytes()
    (tmp_path / "distance.npz").write_bytes(data[: len(data) // 2])  # cut short, as a full disk leaves it
    with pytest.raises(HorsesHumansError, match=r"distance\.npz: cannot read the distance check.*delete the file"):
        load_gate(tmp_path)
    np.savez(
        tmp_path / "distance.npz", reference=np.full((4, 3), np.nan, np.float32), k=5, threshold=0.1, quantile=0.98
    )
    with pytest.raises(HorsesHumansError, match="malformed"):
        load_gate(tmp_path)


def test_a_run_without_the_file_has_no_gate(tmp_path):
    assert load_gate(tmp_path) is None


def test_a_gate_that_does_not_fit_the_model_is_one_clear_error(tmp_path):
    from horses_humans.config import TrainConfig
    from horses_humans.models.distance import gated
    from horses_humans.models.recipes import build_model

    path = tmp_path / "distance.npz"
    wrong_width = DistanceGate.fit(clusters(np.random.default_rng(6)), seed=0)  # 16-wide; MobileNetV2 pools 1280
    transfer = build_model(TrainConfig(recipe="mobilenet_v2", weights="none", image_size=32))
    with pytest.raises(HorsesHumansError, match=r"distance\.npz: the distance check holds 16-wide features .* 1280"):
        gated(transfer, wrong_width, path)
    cnn = build_model(TrainConfig(recipe="baseline", image_size=32, conv_filters=(4,)))
    with pytest.raises(HorsesHumansError, match=r"distance\.npz: a distance check needs a transfer model"):
        gated(cnn, wrong_width, path)
    fits = DistanceGate(np.eye(1280, dtype=np.float32)[:40], 5, 0.5)
    assert gated(transfer, fits, path).output.shape[-1] == transfer.output.shape[-1]
