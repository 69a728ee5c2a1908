"""arraycache.py: hash-keyed arrays on disk with their metadata, complete or absent."""

import json

import numpy as np

from horses_humans.arraycache import cache_paths, load_cached_array, save_cached_array


def test_save_then_load_gives_the_array_memory_mapped_and_its_metadata_with_shape_and_dtype(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    meta = save_cached_array(tmp_path / "pixels", "train-32-abc", array, {"files": ["a", "b"]})
    assert meta == {"files": ["a", "b"], "shape": [2, 3, 4], "dtype": "uint8"}
    loaded, loaded_meta = load_cached_array(tmp_path / "pixels", "train-32-abc")
    assert isinstance(loaded, np.memmap) and np.array_equal(loaded, array) and loaded_meta == meta
    assert sorted(p.name for p in (tmp_path / "pixels").iterdir()) == ["train-32-abc.json", "train-32-abc.npy"]


def test_an_array_without_its_metadata_is_not_a_cache_hit(tmp_path):
    assert load_cached_array(tmp_path, "missing") is None
    npy, meta = cache_paths(tmp_path, "half")
    np.save(npy, np.zeros(3))  # a crash between the two writes leaves the .npy alone: the .json is written last
    assert load_cached_array(tmp_path, "half") is None
    meta.write_text(json.dumps({"shape": [3], "dtype": "float64"}))
    assert load_cached_array(tmp_path, "half")[1]["shape"] == [3]
