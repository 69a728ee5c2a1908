"""Frozen-backbone features, computed once per (split, image size, backbone weights) and cached like pixels.

A frozen backbone without augmentation computes the same features every epoch, so the head can be
trained on cached features alone: epochs cost milliseconds instead of a backbone pass over every image.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..config import user_cache_dir
from ..core.arraycache import cached_array
from ..core.batching import batched
from ..core.progress import ProgressBar
from ..data.pixels import Split
from ..models.recipes import Recipe


def weights_fingerprint(model) -> str:
    """sha256 of a model's weights: the cache key part that says which backbone computed the features."""
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def extract(extractor, pixels: np.ndarray, batch_size: int = 64, progress=None) -> np.ndarray:
    """Backbone features of uint8 pixels (N, S, S, 3), batch by batch -> float32 (N, *extractor's output);
    progress(done, total) after each batch."""
    return batched(
        lambda x: extractor(np.asarray(x), training=False),
        pixels,
        batch_size,
        tuple(extractor.output.shape[1:]),
        progress,
    )


def cached_features(recipe: Recipe, model, split: Split, cache_dir: Path | None = None, log=print) -> np.ndarray:
    """Features of a split, read from the cache when the files and the backbone weights are unchanged; a joined
    split's part by part (the renders' features serve every run, whatever extra folders join them)."""
    if split.parts:
        return np.concatenate([cached_features(recipe, model, part, cache_dir, log) for part in split.parts])
    backbone = recipe.backbone_layer(model)
    key = hashlib.sha256(f"{split.key}:{backbone.name}:{weights_fingerprint(backbone)}".encode()).hexdigest()[:20]
    cache, name = Path(cache_dir or user_cache_dir()) / "features", f"{split.name}-{model.name}-{key}"

    def compute() -> tuple[np.ndarray, dict]:
        log(f"computing {model.name} features of {len(split)} {split.name} images (once; cached in {cache})")
        with ProgressBar(f"{model.name} features of {split.name}") as progress:  # drawn on a terminal only
            features = extract(recipe.feature_extractor(model), split.x, progress=progress)
        return features, {"split": split.name, "files": len(split)}

    return cached_array(cache, name, compute, log)[0]
