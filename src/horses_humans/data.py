"""The data set: find, download, import and check it; decode each image once into a pixel cache."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .arraycache import load_cached_array, save_cached_array
from .config import HorsesHumansError, user_cache_dir
from .images import ImageError, load_pixels

TRAIN = "horse-or-human"
VALIDATION = "validation-horse-or-human"
SPLITS = (TRAIN, VALIDATION)
CACHE_VERSION = 1  # bump when decoding changes, so old pixel caches are not reused


@dataclass(frozen=True)
class OfficialZip:
    """One split's official zip: where it is, how big, and its sha256 (from TensorFlow Datasets' checksums)."""

    url: str
    size: int
    sha256: str


OFFICIAL_ZIPS = {
    TRAIN: OfficialZip(
        "https://storage.googleapis.com/download.tensorflow.org/data/horse-or-human.zip",
        149574867,
        "e2e6f70d3d549c5dd10a57165e55af253ee66ad750403f95c0fb76bb943633a9",
    ),
    VALIDATION: OfficialZip(
        "https://storage.googleapis.com/download.tensorflow.org/data/validation-horse-or-human.zip",
        11480187,
        "ae5fff2f4f5554791f05358108e2e05d9801b191f1896ea101402f0e7f6c32c0",
    ),
}


@dataclass
class Split:
    """Decoded pixels of one split: x (N, S, S, 3) uint8 raw 0-255 RGB, y (N,) int class indices."""

    name: str
    x: np.ndarray
    y: np.ndarray
    files: list[str]  # relative to the split folder, same order as x
    class_names: list[str]
    skipped: list[dict] = field(default_factory=list)  # [{"file": ..., "reason": ...}]
    key: str = ""  # hash of the files (names, sizes, mtimes) and decode settings: keys derived caches

    def __len__(self) -> int:
        return len(self.y)


# ---------------------------------------------------------------- finding files

def is_hidden(name: str) -> bool:
    """Dot files and folders and macOS resource forks (__MACOSX) are never data."""
    return name.startswith(".") or name == "__MACOSX"


def visible_files(folder: Path) -> list[Path]:
    """Every file below folder, sorted, except hidden ones and those inside hidden folders.

    Only the parts below `folder` count: the folder itself may live in ~/.cache."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(is_hidden(part) for part in p.relative_to(folder).parts))


def class_names(split_dir: Path) -> list[str]:
    """Class names are the split's sub-folder names, sorted (horses=0, humans=1)."""
    if not split_dir.is_dir():
        raise HorsesHumansError(
            f"{split_dir}: data split not found. Run `horses-humans data download`, "
            f"`horses-humans data import PATH`, or point --data-dir / HORSES_HUMANS_DATA at a folder "
            f"holding {TRAIN}/ and {VALIDATION}/."
        )
    names = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not is_hidden(p.name))
    if len(names) < 2:
        raise HorsesHumansError(f"{split_dir}: needs at least two class folders, found {names or 'none'}.")
    return names


def list_files(split_dir: Path) -> tuple[list[str], list[str], list[int]]:
    """(class names, files relative to split_dir, labels); an empty class is an error."""
    names = class_names(split_dir)
    files, labels = [], []
    for index, name in enumerate(names):
        found = visible_files(split_dir / name)
        if not found:
            raise HorsesHumansError(f"{split_dir / name}: class folder is empty.")
        files += [str(p.relative_to(split_dir)) for p in found]
        labels += [index] * len(found)
    return names, files, labels


# ---------------------------------------------------------------- pixel cache

def file_stats(split_dir: Path, files: list[str]) -> list[list]:
    """(name, size, mtime_ns) per file: what a split's cache key is made of."""
    rows = []
    for name in files:
        st = (split_dir / name).stat()
        rows.append([name, st.st_size, st.st_mtime_ns])
    return rows


def split_key(rows: list[list], image_size: int) -> str:
    """Stable hash of a split's file list, sizes, mtimes and the decode settings."""
    blob = json.dumps({"v": CACHE_VERSION, "size": image_size, "files": rows}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def decode_all(split_dir: Path, files: list[str], image_size: int, workers: int | None = None):
    """Decode every file (threads: Pillow releases the GIL); returns (pixels, ok mask, skipped)."""
    x = np.zeros((len(files), image_size, image_size, 3), np.uint8)
    ok = np.zeros(len(files), bool)
    skipped = []

    def one(i: int) -> None:
        try:
            x[i] = load_pixels(split_dir / files[i], image_size, name=str(split_dir / files[i]))
            ok[i] = True
        except ImageError as exc:
            skipped.append({"file": str(split_dir / files[i]), "reason": str(exc)})

    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        list(pool.map(one, range(len(files))))
    return x, ok, sorted(skipped, key=lambda s: s["file"])


def decode_split(split_dir: Path, names: list[str], files: list[str], labels: list[int], image_size: int):
    """(pixels of the readable files, metadata: their files and labels, skipped files, class names)."""
    x, ok, skipped = decode_all(split_dir, files, image_size)
    meta = {"files": [f for f, good in zip(files, ok) if good], "labels": [l for l, good in zip(labels, ok) if good],
            "skipped": skipped, "class_names": names}
    return x[ok], meta


def load_split(
    data_dir: Path,
    split: str,
    image_size: int,
    cache_dir: Path | None = None,
    warn: Callable[[str], None] = print,
) -> Split:
    """Decoded pixels of a split, from the cache when the files are unchanged, else decoded once and cached."""
    split_dir = Path(data_dir) / split
    names, files, labels = list_files(split_dir)
    key = split_key(file_stats(split_dir, files), image_size)
    cache, name = Path(cache_dir or user_cache_dir()) / "pixels", f"{split}-{image_size}-{key[:20]}"
    cached = load_cached_array(cache, name)
    if cached is not None:
        x, meta = cached
    else:
        x, meta = decode_split(split_dir, names, files, labels, image_size)
        meta = save_cached_array(cache, name, x, {**meta, "key": key})
    for item in meta["skipped"]:
        warn(f"warning: skipped {item['reason']}")
    result = Split(split, x, np.asarray(meta["labels"], np.int64), meta["files"], names, meta["skipped"], key)
    for index, name in enumerate(names):
        if not np.any(result.y == index):
            raise HorsesHumansError(f"{split_dir / name}: no readable image in this class.")
    return result


def load_dataset(data_dir: Path, image_size: int, cache_dir: Path | None = None, warn=print) -> tuple[Split, Split]:
    """(train, validation) splits; their class names must agree."""
    train = load_split(data_dir, TRAIN, image_size, cache_dir, warn)
    val = load_split(data_dir, VALIDATION, image_size, cache_dir, warn)
    if train.class_names != val.class_names:
        raise HorsesHumansError(
            f"{data_dir}: class folders differ between {TRAIN} {train.class_names} and {VALIDATION} {val.class_names}."
        )
    return train, val


# ---------------------------------------------------------------- download / import

def download(data_dir: Path, zips: dict[str, OfficialZip] | None = None, log=print) -> None:
    """Fetch each split's official zip (verified by sha256, cached by Keras) and unpack it under data_dir."""
    import keras  # heavy; only needed here

    for split, src in (zips or OFFICIAL_ZIPS).items():
        if (data_dir / split).is_dir():
            log(f"{split}: already present in {data_dir}")
            continue
        log(f"{split}: downloading {src.url} ({src.size / 1e6:.1f} MB)")
        try:
            archive = keras.utils.get_file(
                fname=f"{split}.zip", origin=src.url, file_hash=src.sha256, hash_algorithm="sha256",
                cache_dir=str(data_dir), cache_subdir="downloads",
            )
        except Exception as exc:  # get_file raises bare Exception/ValueError with the URL in it
            raise HorsesHumansError(
                f"{split}: download of {src.url} failed ({exc}). Offline? Copy the data set here with "
                f"`horses-humans data import PATH`."
            ) from None
        unpack_split(Path(archive), data_dir / split)


def find_class_root(root: Path) -> Path:
    """The folder holding the class folders: root itself or its single sub-folder (one level down)."""
    subdirs = [p for p in root.iterdir() if p.is_dir() and not is_hidden(p.name)]
    if len(subdirs) == 1 and len([p for p in subdirs[0].iterdir() if p.is_dir() and not is_hidden(p.name)]) >= 2:
        return subdirs[0]
    return root


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a zip, refusing members that would land outside dest (zip-slip)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                target = (dest / member).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise HorsesHumansError(f"{archive}: member {member!r} points outside the archive; refused.")
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise HorsesHumansError(f"{archive}: not a valid zip file ({exc}).") from None


def unpack_split(source: Path, dest: Path) -> None:
    """Copy a zip or folder of class folders into dest atomically (temp folder + rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}-"))
    try:
        if source.is_dir():
            root = find_class_root(source)
        else:
            safe_extract(source, tmp / "unpacked")
            root = find_class_root(tmp / "unpacked")
        names = class_names(root)  # validates: at least two class folders
        if set(names) & set(SPLITS):  # else both splits would become "classes" of one split
            raise HorsesHumansError(
                f"{source}: holds the split folders {names}, not class folders; "
                f"import the folder that directly holds {TRAIN}/ and {VALIDATION}/ (unzip it first)."
            )
        shutil.copytree(root, tmp / "split", ignore=shutil.ignore_patterns(".*", "__MACOSX"))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp / "split", dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def import_path(path: Path, data_dir: Path, split: str | None = None, log=print) -> list[str]:
    """Import a local zip or folder: the official layout (both splits) or one split's class folders."""
    path = Path(path)
    if not path.exists():
        raise HorsesHumansError(f"{path}: no such file or folder.")
    if path.is_file() and not zipfile.is_zipfile(path):
        raise HorsesHumansError(f"{path}: neither a folder nor a zip file.")
    if path.is_dir() and all((path / s).is_dir() for s in SPLITS):
        for s in SPLITS:
            unpack_split(path / s, data_dir / s)
            log(f"{s}: imported from {path / s}")
        return list(SPLITS)
    split = split or guess_split(path)
    if split not in SPLITS:
        raise HorsesHumansError(f"--split {split!r}: choose {TRAIN} or {VALIDATION}.")
    unpack_split(path, data_dir / split)
    log(f"{split}: imported from {path}")
    return [split]


def guess_split(path: Path) -> str:
    """A name containing 'validation' is the validation split, anything else the training split."""
    return VALIDATION if "validation" in path.name.lower() else TRAIN
