"""Arrays cached on disk under a hash-keyed name: NAME.npy with NAME.json (its metadata) beside it.

Both files are written atomically, the .json last, so its presence means the array is complete. The metadata
records the array's shape and dtype, so checks of what a cache file holds belong in load_cached_array alone.
Decoded pixels (data.py) and backbone features (features.py) are cached this way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .atomic import save_npy_atomic, write_json_atomic


def cache_paths(folder: Path, name: str) -> tuple[Path, Path]:
    """(NAME.npy, NAME.json) in folder."""
    return Path(folder) / f"{name}.npy", Path(folder) / f"{name}.json"


def load_cached_array(folder: Path, name: str) -> tuple[np.ndarray, dict] | None:
    """(memory-mapped array, metadata) when both files are there, else None."""
    npy, meta = cache_paths(folder, name)
    if not (npy.exists() and meta.exists()):
        return None
    return np.load(npy, mmap_mode="r"), json.loads(meta.read_text())


def save_cached_array(folder: Path, name: str, array: np.ndarray, meta: dict) -> dict:
    """Write the array, then its metadata plus shape and dtype; returns that metadata."""
    npy, meta_path = cache_paths(folder, name)
    save_npy_atomic(npy, array)
    meta = {**meta, "shape": list(array.shape), "dtype": str(array.dtype)}
    write_json_atomic(meta_path, meta)
    return meta
