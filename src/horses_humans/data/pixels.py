"""Decode a data set's images once into a pixel cache: Split (the decoded pixels of one part), load_files, joined."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import DEFAULT_RESIZE, HorsesHumansError, user_cache_dir
from ..core.arraycache import cached_array
from .files import shown
from .images import ImageError, load_pixels
from .layouts import ClassFiles, DataSet, FileList, extra_rule, find_dataset, read_class_folders

CACHE_VERSION = 2  # bump when decoding changes, so old pixel caches are not reused (2: JPEGs decoded by DCT draft)


@dataclass
class Split:
    """Decoded pixels of one split: x (N, S, S, 3) uint8 raw 0-255 RGB, y (N,) int class indices."""

    name: str
    x: np.ndarray
    y: np.ndarray
    files: list[str]  # relative to root (the split folder, or DIR for class folders), same order as x
    class_names: list[str]
    skipped: list[dict] = field(default_factory=list)  # [{"file": ..., "reason": ...}]
    key: str = ""  # hash of the files (names, sizes, mtimes) and decode settings: keys derived caches
    root: Path | None = None  # the folder `files` are relative to
    parts: tuple = ()  # the splits this one joins (data.joined): caches derived from pixels are made per part

    def __len__(self) -> int:
        return len(self.y)


def file_digests(root: Path, files: list[str]) -> list[str]:
    """sha256 of each file's bytes (what a run records, to tell later whether its data changed)."""

    def digest(name: str) -> str:
        return hashlib.sha256((Path(root) / name).read_bytes()).hexdigest()

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(digest, files))


# ---------------------------------------------------------------- pixel cache


def file_stats(split_dir: Path, files: list[str]) -> list[list]:
    """(name, size, mtime_ns) per file: what a split's cache key is made of."""
    rows = []
    for name in files:
        st = (split_dir / name).stat()
        rows.append([name, st.st_size, st.st_mtime_ns])
    return rows


def split_key(rows: list[list], image_size: int, resize: str = DEFAULT_RESIZE) -> str:
    """Stable hash of a split's file list, sizes, mtimes and the decode settings (size and resize mode)."""
    # squash, the only mode before --resize, stays out of the key: the caches made before it keep their names
    mode = {} if resize == DEFAULT_RESIZE else {"resize": resize}
    blob = json.dumps({"v": CACHE_VERSION, "size": image_size, "files": rows, **mode}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def decode_all(
    split_dir: Path, files: list[str], image_size: int, workers: int | None = None, resize: str = DEFAULT_RESIZE
):
    """Decode every file (threads: Pillow releases the GIL); returns (pixels, ok mask, skipped)."""
    x = np.zeros((len(files), image_size, image_size, 3), np.uint8)
    ok = np.zeros(len(files), bool)
    skipped = []

    def one(i: int) -> None:
        try:
            x[i] = load_pixels(split_dir / files[i], image_size, name=str(split_dir / files[i]), resize=resize)
            ok[i] = True
        except ImageError as exc:
            skipped.append({"file": str(split_dir / files[i]), "reason": str(exc)})

    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        list(pool.map(one, range(len(files))))
    return x, ok, sorted(skipped, key=lambda s: s["file"])


def decode_split(
    split_dir: Path,
    names: list[str],
    files: list[str],
    labels: list[int],
    image_size: int,
    resize: str = DEFAULT_RESIZE,
):
    """(pixels of the readable files, metadata: their files and labels, skipped files, class names)."""
    x, ok, skipped = decode_all(split_dir, files, image_size, resize=resize)
    meta = {
        "files": [f for f, good in zip(files, ok) if good],
        "labels": [label for label, good in zip(labels, ok) if good],
        "skipped": skipped,
        "class_names": names,
    }
    return x[ok], meta


def load_files(
    found: FileList,
    class_names: list[str],
    image_size: int,
    cache_dir: Path | None = None,
    warn: Callable[[str], None] = print,
    resize: str = DEFAULT_RESIZE,
) -> Split:
    """Decoded pixels of a list of files (brought to the square by `resize`), from the cache when the files are
    unchanged, else decoded once and cached."""
    key = split_key(file_stats(found.root, found.files), image_size, resize)
    mode = "" if resize == DEFAULT_RESIZE else f"-{resize}"
    cache, name = Path(cache_dir or user_cache_dir()) / "pixels", f"{found.name}-{image_size}{mode}-{key[:20]}"

    def decode() -> tuple[np.ndarray, dict]:
        x, meta = decode_split(found.root, class_names, found.files, found.labels, image_size, resize)
        return x, {**meta, "key": key}

    x, meta = cached_pixels(cache, name, decode, warn)
    skipped = found.skipped + meta["skipped"]
    for item in skipped:
        warn(f"warning: skipped {shown(item['reason'])}")  # a file name may hold bytes or escapes no terminal takes
    label = dict(zip(found.files, found.labels))  # not the cached labels: --data labels by the run's class order
    y = np.asarray([label[f] for f in meta["files"]], np.int64)
    result = Split(found.name, x, y, meta["files"], list(class_names), skipped, key, found.root)
    for index in sorted(set(found.labels)):
        if not np.any(result.y == index):
            raise HorsesHumansError(f"{found.root / class_names[index]}: no readable image in this class.")
    return result


def cached_pixels(cache: Path, name: str, decode: Callable, warn: Callable[[str], None]) -> tuple[np.ndarray, dict]:
    """cached_array for the pixel cache; a disk that is full or cannot be written is one error naming the file."""
    try:
        return cached_array(cache, name, decode, warn)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT, None)  # None: numpy's short write ("N requested, M written")
        fix = "free some space on its disk" if full else "check its permissions"
        raise HorsesHumansError(
            f"{cache / name}.npy: cannot write the pixel cache ({exc.strerror or exc}): {fix}, or point --cache-dir "
            "(or HORSES_HUMANS_CACHE) at another folder."
        ) from None


def load_split(
    data_dir: Path,
    split: str,
    image_size: int,
    cache_dir: Path | None = None,
    warn: Callable[[str], None] = print,
    resize: str = DEFAULT_RESIZE,
) -> Split:
    """Decoded pixels of one split folder (DATA_DIR/SPLIT/<class>/), through the pixel cache."""
    split_dir = Path(data_dir) / split
    found = read_class_folders(split_dir)
    files = FileList(split, split_dir, found.files, found.labels(found.names), found.skipped)
    return load_files(files, found.names, image_size, cache_dir, warn, resize)


def load_side(
    dataset: DataSet, side: str, image_size: int, cache_dir: Path | None = None, warn=print, resize=DEFAULT_RESIZE
) -> Split:
    """Decoded pixels of one side (train, validation, test) of a data set."""
    return load_files(dataset.sides[side], dataset.class_names, image_size, cache_dir, warn, resize)


def load_dataset(
    data_dir: Path, image_size: int, cache_dir: Path | None = None, warn=print, val_split: float = 0.2, seed: int = 0
) -> tuple[Split, Split]:
    """(train, validation) splits of the data set in data_dir, in any layout, squashed (the benchmarks' reading)."""
    dataset = find_dataset(Path(data_dir), val_split, seed)
    return tuple(load_side(dataset, side, image_size, cache_dir, warn) for side in ("train", "validation"))


# ---------------------------------------------------------------- extra training folders (train --extra-data)


def load_extra(
    folders,
    class_names: list[str],
    image_size: int,
    cache_dir: Path | None = None,
    warn=print,
    allowed: tuple[str, ...] = (),
) -> tuple[list[str], list[Split]]:
    """Decoded (squashed) pixels of each extra folder of class folders, for the training side: (the class names with
    any `allowed` name that a folder adds appended, one Split per folder labelled by them)."""
    names, found = find_extra(folders, class_names, allowed)
    return names, [load_files(files, names, image_size, cache_dir, warn) for files in found]


def find_extra(folders, class_names: list[str], allowed: tuple[str, ...] = ()) -> tuple[list[str], list[FileList]]:
    """The images of each extra folder of class folders: (the class names with any `allowed` name that a folder adds
    appended, one FileList per folder labelled by them), for load_files to decode."""
    rule = extra_rule(class_names, allowed)
    found = [read_class_folders(Path(folder), rule) for folder in folders]
    names = list(class_names) + [n for n in allowed if n not in class_names and any(n in f.names for f in found)]
    return names, [extra_file_list(extra, names) for extra in found]


def extra_file_list(found: ClassFiles, class_names: list[str]) -> FileList:
    """An extra folder's images labelled by class_names; its pixel cache is named after the folder."""
    name = f"extra-{found.folder.resolve().name}"
    return FileList(name, found.folder, found.files, found.labels(class_names), found.skipped)


def joined(name: str, splits: list[Split]) -> Split:
    """Several decoded splits of the same classes as one (the training side and its extra folders, to fit on):
    pixels, labels and files concatenated (files keep their split's root: `folder/class/file` past the first),
    skipped files of all, and a key over theirs (it names derived caches, e.g. backbone features)."""
    if len(splits) == 1:
        return splits[0]
    files = splits[0].files + [f"{Path(s.root).resolve()}/{f}" for s in splits[1:] for f in s.files]
    key = hashlib.sha256(":".join(s.key for s in splits).encode()).hexdigest()
    return Split(
        name,
        np.concatenate([s.x for s in splits]),
        np.concatenate([s.y for s in splits]),
        files,
        list(splits[0].class_names),
        [item for s in splits for item in s.skipped],
        key,
        splits[0].root,
        tuple(splits),
    )
