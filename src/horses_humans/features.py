"""Frozen-backbone features, computed once per (split, image size, backbone weights) and cached like pixels.

A frozen backbone without augmentation computes the same features every epoch, so the head can be
trained on cached features alone: epochs cost milliseconds instead of a backbone pass over every image.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import keras
import numpy as np

from .config import user_cache_dir
from .atomic import save_npy_atomic, write_json_atomic
from .data import Split


def weights_fingerprint(model) -> str:
    """sha256 of a model's weights: the cache key part that says which backbone computed the features."""
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def feature_extractor(model) -> keras.Model:
    """pixels -> preprocess -> backbone(training=False): the frozen front of a transfer model."""
    inputs = keras.Input(model.input.shape[1:], name="pixels")
    x = model.get_layer("preprocess")(inputs)
    return keras.Model(inputs, model.get_layer("backbone")(x, training=False), name="features")


def extract(extractor, pixels: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Backbone features of uint8 pixels, batch by batch (float32)."""
    out = [np.asarray(extractor(np.asarray(pixels[i:i + batch_size]), training=False), np.float32)
           for i in range(0, len(pixels), batch_size)]
    return np.concatenate(out)


def cached_features(model, split: Split, cache_dir: Path | None = None, log=print) -> np.ndarray:
    """Features of a split, read from the cache when the files and the backbone weights are unchanged."""
    backbone = model.get_layer("backbone")
    key = hashlib.sha256(f"{split.key}:{backbone.name}:{weights_fingerprint(backbone)}".encode()).hexdigest()[:20]
    cache = Path(cache_dir or user_cache_dir()) / "features"
    path = cache / f"{split.name}-{model.name}-{key}.npy"
    if path.exists():
        return np.load(path, mmap_mode="r")
    log(f"computing {model.name} features of {len(split)} {split.name} images (once; cached in {cache})")
    features = extract(feature_extractor(model), split.x)
    save_npy_atomic(path, features)
    write_json_atomic(path.with_suffix(".json"), {"split": split.name, "files": len(split), "shape": list(features.shape)})
    return features
