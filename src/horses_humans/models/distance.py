"""Unsure on images unlike every training image (`train --distance-unsure`): a k-nearest-neighbour gate on the
backbone's pooled features, inside the model.

A model trained on real photos of its own classes has no `neither` examples to learn "none of these" from, and its
softmax is often sure of a stranger. What it does have is its training images: an image whose pooled backbone
features (L2-normalised) are far from all of them, farther than almost every training image is from the others, is
one it knows nothing about. The gate measures that distance, the mean cosine distance to the K nearest training
images, and answers uniform probabilities (1/C each; 0.5 for one sigmoid unit) past the threshold; the unsure rule
then answers "unsure" with the reason "unlike every image it was trained on" (inference/unsure.py).

The threshold is the QUANTILE of cross-fitted distances: each training image's distance to the other folds' images
(FOLDS folds), so the training images themselves are scored as a new image would be. So about 1 - QUANTILE of images
like the training ones are answered unsure: the price of the check. Measured in docs/own-data.md (issue 23 item 4).

The gate is built in Keras ops (matmul, top_k, a comparison), inside the model that Run.load_model gives, so
predict, evaluate, serve, Ray and every served export (ONNX, TFLite, TF.js, the browser page) carry it with no code of
their own; the reference features and the threshold are stored in the run's DISTANCE_FILE.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import HorsesHumansError
from ..core.atomic import atomic_path
from .backbones import BACKBONE, HEAD, PREPROCESS

DISTANCE_FILE = "distance.npz"
K = 5  # neighbours: the study's choice (scripts/fewshot_study.py, STUDY=distance)
QUANTILE = 0.98  # of cross-fitted training distances: about 2% of images like the training ones answered unsure
FOLDS = 5
GATE_LAYERS = ("distance_pool", "distance_gate")  # the layers `gated` adds: beside the model's chain of layers
FIX = "train the run again with --distance-unsure, or delete the file to answer without the distance check"
MAX_REFERENCES = 4000  # training images kept as references (a seeded sample of larger sets): 4000 x 1280 floats = 20 MB


def normalised(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32); a zero row stays zero."""
    features = np.asarray(features, np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def knn_distance(reference: np.ndarray, query: np.ndarray, k: int = K) -> np.ndarray:
    """Mean cosine distance (N,) of each query row to its k nearest reference rows (both normalised)."""
    similarity = normalised(query) @ normalised(reference).T
    k = min(k, similarity.shape[1])
    return 1.0 - np.sort(similarity, axis=1)[:, -k:].mean(axis=1)


def cross_fitted(features: np.ndarray, k: int = K, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Each row's knn_distance to the rows of the other folds (N,): a training image scored as a new one is."""
    fold = np.random.default_rng(seed).permutation(len(features)) % folds
    distance = np.empty(len(features), np.float32)
    for f in range(folds):
        distance[fold == f] = knn_distance(features[fold != f], features[fold == f], k)
    return distance


@dataclass(frozen=True)
class DistanceGate:
    """The gate of one run: normalised reference features (M, D), k, and the distance past which it answers."""

    reference: np.ndarray
    k: int
    threshold: float
    quantile: float = QUANTILE

    @classmethod
    def fit(cls, features: np.ndarray, seed: int = 0, quantile: float = QUANTILE) -> DistanceGate:
        """The gate of pooled training features (N, D): at most MAX_REFERENCES of them kept (a seeded sample), the
        threshold the quantile of their cross-fitted distances."""
        features = normalised(features)
        minimum = FOLDS * (K + 1)
        if len(features) < minimum:
            raise HorsesHumansError(
                f"--distance-unsure needs at least {minimum} training images to measure distances on "
                f"({len(features)} found): add images, or train without it."
            )
        if len(features) > MAX_REFERENCES:
            features = features[np.sort(np.random.default_rng(seed).permutation(len(features))[:MAX_REFERENCES])]
        threshold = float(np.quantile(cross_fitted(features, K, FOLDS, seed), quantile))
        return cls(features, K, threshold, quantile)

    def distance(self, features: np.ndarray) -> np.ndarray:
        """knn_distance of pooled features (N, D) to the references."""
        return knn_distance(self.reference, features, self.k)

    def save(self, path: Path) -> None:
        """Write the gate to path (an .npz), atomically."""
        with atomic_path(path) as scratch, open(scratch, "wb") as f:
            np.savez(f, reference=self.reference, k=self.k, threshold=self.threshold, quantile=self.quantile)

    @classmethod
    def load(cls, path: Path) -> DistanceGate:
        """Read a gate back, checked: a damaged file gives one clear error naming it and the fix."""
        try:
            with np.load(path, allow_pickle=False) as data:
                gate = cls(
                    np.asarray(data["reference"], np.float32),
                    int(data["k"]),
                    float(data["threshold"]),
                    float(data["quantile"]),
                )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise HorsesHumansError(f"{path}: cannot read the distance check ({exc}); {FIX}.") from None
        ref = gate.reference
        finite = np.isfinite(ref).all() and np.isfinite(gate.threshold)
        if ref.ndim != 2 or not 1 <= gate.k <= len(ref) or not finite:
            raise HorsesHumansError(
                f"{path}: the distance check is malformed ({ref.shape} references, k {gate.k}); {FIX}."
            )
        return gate


def gate_layer(gate: DistanceGate, units: int):
    """A Keras layer [pooled features (N, D), raw outputs (N, units)] -> raw outputs, uniform where the features are
    past the gate's threshold (0.5 for one sigmoid unit, 1/units for a softmax)."""
    import keras

    ops = keras.ops

    class DistanceGateLayer(keras.layers.Layer):
        def build(self, input_shape):
            self.reference = self.add_weight(
                shape=gate.reference.T.shape, initializer="zeros", trainable=False, name="reference"
            )
            self.reference.assign(gate.reference.T)

        def call(self, inputs):
            features, raw = inputs
            features = features / ops.maximum(ops.sqrt(ops.sum(features * features, axis=1, keepdims=True)), 1e-12)
            nearest, _ = ops.top_k(ops.matmul(features, self.reference), gate.k)
            far = ops.cast(1.0 - ops.mean(nearest, axis=1, keepdims=True) > gate.threshold, raw.dtype)
            uniform = 0.5 if units == 1 else 1.0 / units
            return raw * (1.0 - far) + uniform * far

    return DistanceGateLayer(name=GATE_LAYERS[1])


def gated(model, gate: DistanceGate, path: Path):
    """A transfer model (preprocess -> backbone -> head) with the gate after its head: the same layers and weights,
    pixels in, raw outputs out; a gate (read from path) that does not fit the model is one clear error."""
    import keras

    if not {BACKBONE, HEAD, PREPROCESS} <= {layer.name for layer in model.layers}:
        raise HorsesHumansError(
            f"{path}: a distance check needs a transfer model, and this run's has no backbone; {FIX}."
        )
    pixels = keras.Input(model.input.shape[1:], name="pixels")
    feature_map = model.get_layer(BACKBONE)(model.get_layer(PREPROCESS)(pixels), training=False)
    raw = model.get_layer(HEAD)(feature_map)
    pooled = keras.layers.GlobalAveragePooling2D(name=GATE_LAYERS[0])(feature_map)
    if pooled.shape[-1] != gate.reference.shape[1]:
        raise HorsesHumansError(
            f"{path}: the distance check holds {gate.reference.shape[1]}-wide features where this run's backbone gives "
            f"{pooled.shape[-1]}: it comes from another run; {FIX}."
        )
    return keras.Model(pixels, gate_layer(gate, raw.shape[-1])([pooled, raw]), name=model.name)


def load_gate(run_dir: Path) -> DistanceGate | None:
    """The run's gate, or None for a run trained without --distance-unsure."""
    path = Path(run_dir) / DISTANCE_FILE
    return DistanceGate.load(path) if path.exists() else None
