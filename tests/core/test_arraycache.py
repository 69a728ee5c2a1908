"""arraycache.py: hash-keyed arrays on disk with their metadata, complete or absent."""

import json

import numpy as np
import pytest

from horses_humans.core.arraycache import (
    CHECKSUM,
    DamagedCache,
    cache_paths,
    checksum,
    load_cached_array,
    save_cached_array,
)


def test_save_then_load_gives_the_array_memory_mapped_and_its_metadata_with_shape_and_dtype(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    meta = save_cached_array(tmp_path / "pixels", "train-32-abc", array, {"files": ["a", "b"]})
    assert meta == {"files": ["a", "b"], "shape": [2, 3, 4], "dtype": "uint8", CHECKSUM: checksum(array)}
    loaded, loaded_meta = load_cached_array(tmp_path / "pixels", "train-32-abc")
    assert isinstance(loaded, np.memmap) and np.array_equal(loaded, array) and loaded_meta == meta
    assert sorted(p.name for p in (tmp_path / "pixels").iterdir()) == ["train-32-abc.json", "train-32-abc.npy"]


def test_an_array_without_its_metadata_is_not_a_cache_hit(tmp_path):
    assert load_cached_array(tmp_path, "missing") is None
    npy, meta = cache_paths(tmp_path, "half")
    np.save(npy, np.zeros(3))  # a crash between the two writes leaves the .npy alone: the .json is written last
    assert load_cached_array(tmp_path, "half") is None
    meta.write_text(json.dumps({"shape": [3], "dtype": "float64", CHECKSUM: checksum(np.zeros(3))}))
    assert load_cached_array(tmp_path, "half")[1]["shape"] == [3]


def test_metadata_without_a_checksum_is_a_damaged_cache_not_a_hit(tmp_path):
    npy, meta = cache_paths(tmp_path, "old")
    np.save(npy, np.zeros(3))
    meta.write_text(json.dumps({"shape": [3], "dtype": "float64"}))  # written before caches carried checksums
    with pytest.raises(DamagedCache, match=CHECKSUM):
        load_cached_array(tmp_path, "old")


def test_the_checksum_covers_every_byte_and_streams_large_arrays(monkeypatch):
    monkeypatch.setattr("horses_humans.core.arraycache.CHUNK_BYTES", 7)  # many chunks, the last one short
    array = np.arange(100, dtype=np.float32)
    changed = array.copy()
    changed[-1] += 1
    assert checksum(array) == checksum(array.copy()) != checksum(changed)
    assert checksum(array[::-1]) != checksum(array)  # the same bytes in another order differ
