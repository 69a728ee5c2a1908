"""Arrays cached on disk under a hash-keyed name: NAME.npy with NAME.json (its metadata) beside it.

Both files are written atomically, the .json last, so its presence means the array was complete when written. The
metadata records the array's shape, dtype and a blake2b checksum of its bytes; load_cached_array checks all three,
so a cache cut short, zeroed, overwritten or reordered on disk is found and rebuilt (cached_array), never used.
Checking costs about 3% of the decode it saves (`python bench/bench_cache.py --data-dir ../shared/data --images 256
--size 150`, 2-core CPU, busy: blake2b 0.14 ms per 150 px image at 489 MB/s, decoding it 5.4 ms; hash / decode 0.026).
Processes building the same cache take turns on .NAME.lock: the first builds, the others wait and read its result.
Decoded pixels (data.py) and backbone features (features.py) are cached this way.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from .atomic import save_npy_atomic, write_json_atomic

logger = logging.getLogger(__name__)  # progress lines; the CLI sends them to stderr

CHECKSUM = "blake2b"  # the metadata key; hashlib's blake2b is in the standard library and fast on 64-bit CPUs
CHUNK_BYTES = 1 << 24  # hash a memory-mapped array 16 MiB at a time: it is never read into memory whole


class DamagedCache(Exception):
    """A cache whose files disagree with its metadata (the message says why); cached_array rebuilds it."""


def cache_paths(folder: Path, name: str) -> tuple[Path, Path]:
    """(NAME.npy, NAME.json) in folder."""
    return Path(folder) / f"{name}.npy", Path(folder) / f"{name}.json"


def checksum(array: np.ndarray) -> str:
    """blake2b (128-bit) hex digest of an array's bytes in C order."""
    digest = hashlib.blake2b(digest_size=16)
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)  # no copy for a contiguous (memory-mapped) array
    for start in range(0, flat.size, CHUNK_BYTES):
        digest.update(flat[start : start + CHUNK_BYTES])
    return digest.hexdigest()


def load_cached_array(folder: Path, name: str) -> tuple[np.ndarray, dict] | None:
    """(memory-mapped array, metadata) when the cache is there and intact, None when there is none (no metadata:
    never written, or a crash before it); DamagedCache when its files disagree with the metadata."""
    npy, meta_path = cache_paths(folder, name)
    if not meta_path.exists():
        return None
    meta = read_metadata(meta_path)
    if not npy.exists():
        raise DamagedCache(f"{npy.name} is missing")
    try:
        array = np.load(npy, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:  # truncated, zeroed or garbage header
        raise DamagedCache(f"unreadable .npy: {exc}") from None
    check_array(array, meta)
    return array, meta


def read_metadata(path: Path) -> dict:
    """NAME.json as a dict with shape, dtype and checksum; DamagedCache when it is not."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedCache(f"unreadable metadata: {exc}") from None
    if not isinstance(meta, dict) or not {"shape", "dtype", CHECKSUM} <= set(meta):
        raise DamagedCache(f"metadata without shape, dtype and {CHECKSUM} (an older version's cache, or not ours)")
    return meta


def check_array(array: np.ndarray, meta: dict) -> None:
    """DamagedCache unless the array has the metadata's shape, dtype and checksum."""
    if list(array.shape) != meta["shape"] or str(array.dtype) != meta["dtype"]:
        raise DamagedCache(f"holds {array.dtype}{list(array.shape)}, metadata says {meta['dtype']}{meta['shape']}")
    if checksum(array) != meta[CHECKSUM]:
        raise DamagedCache(f"{CHECKSUM} checksum mismatch: its bytes changed since it was written")


def save_cached_array(folder: Path, name: str, array: np.ndarray, meta: dict) -> dict:
    """Write the array, then its metadata plus shape, dtype and checksum; returns that metadata."""
    npy, meta_path = cache_paths(folder, name)
    save_npy_atomic(npy, array)
    meta = {**meta, "shape": list(array.shape), "dtype": str(array.dtype), CHECKSUM: checksum(array)}
    write_json_atomic(meta_path, meta)
    return meta


def cached_array(
    folder: Path, name: str, build: Callable[[], tuple[np.ndarray, dict]], log: Callable[[str], None] = logger.info
) -> tuple[np.ndarray, dict]:
    """(array, metadata) from the cache when it is intact, else from build() -> (array, metadata), saved for next
    time. A damaged cache logs one line and is rebuilt; while one process builds, the others wait for its result."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with hold_lock(folder / f".{name}.lock", f"{folder / name}.npy", log):  # hidden: not one of the cache files
        try:
            cached = load_cached_array(folder, name)
        except DamagedCache as why:
            log(f"cache {folder / name}.npy is damaged ({why}): rebuilding")
            cached = None
        if cached is not None:
            return cached
        array, meta = build()
        return array, save_cached_array(folder, name, array, meta)


@contextmanager
def hold_lock(path: Path, what: str, log: Callable[[str], None]):
    """Hold the file lock at path; when another process holds it, one line says this one waits for it."""
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"waiting for another process building {what}")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
