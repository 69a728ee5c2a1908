"""The data set: find it in one of three layouts, download, import and check it; decode each image once into a
pixel cache.

A data folder DIR holds one sub-folder per class (the class names, sorted: class 0, 1, ...) in one of these layouts:
  official       DIR/horse-or-human/<class>/ + DIR/validation-horse-or-human/<class>/ (the Horses or Humans set)
  split-folders  DIR/train/<class>/ + DIR/val/<class>/ (or valid/, validation/), optionally DIR/test/<class>/
  class-folders  DIR/<class>/ alone: a stratified validation split of --val-split, deterministic for the seed
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import stat
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from ..config import HorsesHumansError, check_positive, user_cache_dir
from ..core.arraycache import cached_array
from .images import ImageError, load_pixels

TRAIN = "horse-or-human"
VALIDATION = "validation-horse-or-human"
SPLITS = (TRAIN, VALIDATION)
CACHE_VERSION = 1  # bump when decoding changes, so old pixel caches are not reused
OFFICIAL, SPLIT_FOLDERS, CLASS_FOLDERS = "official", "split-folders", "class-folders"
LAYOUTS = {  # layout -> what it looks like
    OFFICIAL: f"DIR/{TRAIN}/<class>/ + DIR/{VALIDATION}/<class>/",
    SPLIT_FOLDERS: "DIR/train/<class>/ + DIR/val/<class>/ (+ DIR/test/<class>/)",
    CLASS_FOLDERS: "DIR/<class>/ alone (train --val-split makes the validation split)",
}
SIDES = ("train", "validation", "test")  # what a run uses each part of a data set for
VAL_FOLDERS = ("val", "valid", "validation")
SPLIT_FOLDER_NAMES = ("train", *VAL_FOLDERS, "test")


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
    files: list[str]  # relative to root (the split folder, or DIR for class folders), same order as x
    class_names: list[str]
    skipped: list[dict] = field(default_factory=list)  # [{"file": ..., "reason": ...}]
    key: str = ""  # hash of the files (names, sizes, mtimes) and decode settings: keys derived caches
    root: Path | None = None  # the folder `files` are relative to
    parts: tuple = ()  # the splits this one joins (data.joined): caches derived from pixels are made per part

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class FileList:
    """One part of a data set before decoding: files relative to root (each under its class folder), class indices."""

    name: str  # names its pixel cache: the split folder's name, or the side's ("train", "validation") for class folders
    root: Path
    files: list[str]
    labels: list[int]


@dataclass(frozen=True)
class DataSet:
    """A data folder as found: its layout, class names and the files of each side (train, validation, maybe test)."""

    root: Path
    layout: str
    class_names: list[str]
    sides: dict[str, FileList]


# ---------------------------------------------------------------- finding files

OS_JUNK = {"__macosx", "thumbs.db", "ehthumbs.db", "desktop.ini"}  # what macOS and Windows leave in photo folders


def is_hidden(name: str) -> bool:
    """Dot files and folders, macOS resource forks (__MACOSX) and Windows' Thumbs.db / desktop.ini are never data."""
    return name.startswith(".") or name.lower() in OS_JUNK


def hidden_names(folder: str, names: list[str]) -> list[str]:
    """shutil.copytree's ignore: the hidden names (is_hidden) in a folder, never copied."""
    return [name for name in names if is_hidden(name)]


def visible_files(folder: Path) -> list[Path]:
    """Every file below folder, sorted, except hidden ones and those inside hidden folders.

    Only the parts below `folder` count: the folder itself may live in ~/.cache."""
    folder = Path(folder)
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not any(is_hidden(part) for part in p.relative_to(folder).parts)
    )


def visible_folders(folder: Path) -> list[str]:
    """Names of the sub-folders of folder that are not hidden, sorted."""
    return sorted(p.name for p in Path(folder).iterdir() if p.is_dir() and not is_hidden(p.name))


def layouts_text() -> str:
    """The accepted layouts, numbered, for error messages."""
    return "; ".join(f"({i}) {text}" for i, text in enumerate(LAYOUTS.values(), 1))


def class_names(split_dir: Path) -> list[str]:
    """Class names are the split's sub-folder names, sorted (horses=0, humans=1)."""
    if not split_dir.is_dir():
        raise HorsesHumansError(
            f"{split_dir}: data split not found. Run `horses-humans data download`, "
            f"`horses-humans data import PATH`, or point --data-dir / HORSES_HUMANS_DATA at a folder "
            f"holding {TRAIN}/ and {VALIDATION}/."
        )
    names = visible_folders(split_dir)
    if len(names) < 2:
        raise HorsesHumansError(
            f"{split_dir}: needs at least two class folders, found {names or 'none'}: "
            "add a folder of images for each class."
        )
    return names


def list_files(split_dir: Path) -> tuple[list[str], list[str], list[int]]:
    """(class names, files relative to split_dir, labels); an empty class is an error."""
    names = class_names(split_dir)
    files, labels = [], []
    for index, name in enumerate(names):
        found = visible_files(split_dir / name)
        if not found:
            raise HorsesHumansError(f"{split_dir / name}: class folder is empty: add its images or remove the folder.")
        files += [str(p.relative_to(split_dir)) for p in found]
        labels += [index] * len(found)
    return names, files, labels


def no_data_set(root: Path, found: str) -> HorsesHumansError:
    """The error for a folder holding no data set: what is there, how to get one, and the accepted layouts."""
    return HorsesHumansError(
        f"{root}: no data set here ({found}). Run `horses-humans data download` or "
        "`horses-humans data import PATH`, or point --data-dir / HORSES_HUMANS_DATA at a folder "
        f"in one of the layouts {layouts_text()}."
    )


def detect_layout(root: Path) -> str:
    """Which layout root holds, from its folder names alone (find_dataset checks what is inside them)."""
    root = Path(root)
    if not root.is_dir():
        raise no_data_set(root, "no such folder")
    folders = set(visible_folders(root))
    if folders & set(SPLITS):
        return OFFICIAL
    if folders & set(SPLIT_FOLDER_NAMES):
        return SPLIT_FOLDERS
    if folders:
        return CLASS_FOLDERS
    entries = sorted(p.name for p in root.iterdir() if not is_hidden(p.name))
    raise no_data_set(
        root,
        f"it holds {', '.join(entries[:5])}{', ...' if len(entries) > 5 else ''}" if entries else "the folder is empty",
    )


def split_folders(root: Path, layout: str) -> dict[str, str]:
    """{side: folder under root} of a layout with split folders; a missing or doubled split is an error."""
    if layout == OFFICIAL:
        return {"train": TRAIN, "validation": VALIDATION}
    present = set(visible_folders(root))
    vals = [v for v in VAL_FOLDERS if v in present]
    if "train" not in present:
        found = ", ".join(f"{f}/" for f in sorted(present & set(SPLIT_FOLDER_NAMES)))
        raise HorsesHumansError(
            f"{root}: holds {found} but no train/: add {root / 'train'}/<class>/ with the training images."
        )
    if not vals:
        raise HorsesHumansError(
            f"{root / 'train'}: no val/ (or valid/, validation/) beside it: add "
            f"{root / 'val'}/<class>/, or put the class folders directly in {root} and let "
            "train --val-split make the validation split."
        )
    if len(vals) > 1:
        raise HorsesHumansError(f"{root}: holds both {vals[0]}/ and {vals[1]}/: keep one validation folder.")
    return {"train": "train", "validation": vals[0], **({"test": "test"} if "test" in present else {})}


def shared_classes(root: Path, classes: dict[str, list[str]]) -> list[str]:
    """The class names every split folder holds; a class present in one and not another is an error naming it."""
    (first, names), *rest = classes.items()
    for folder, other in rest:
        for name in sorted(set(names) ^ set(other)):
            has, lacks = (first, folder) if name in names else (folder, first)
            raise HorsesHumansError(
                f"{root}: class folders differ between {has}/ and {lacks}/: {name!r} is only in "
                f"{has}/; add {root / lacks / name}/ with images, or remove {root / has / name}/."
            )
    return names


def find_dataset(root: Path, val_split: float = 0.2, seed: int = 0) -> DataSet:
    """The data set in root, whatever its layout: its class names and each side's files (class folders alone are
    split here, by stratified_split)."""
    root = Path(root)
    layout = detect_layout(root)
    if layout == CLASS_FOLDERS:
        return split_class_folders(root, val_split, seed)
    folders = split_folders(root, layout)
    listed = {side: list_files(root / folder) for side, folder in folders.items()}
    names = shared_classes(root, {folders[side]: found[0] for side, found in listed.items()})
    sides = {
        side: FileList(folders[side], root / folders[side], files, labels)
        for side, (_, files, labels) in listed.items()
    }
    return DataSet(root, layout, names, sides)


def split_class_folders(root: Path, val_split: float, seed: int) -> DataSet:
    """Class folders alone: every class split into training and validation files (at least one each)."""
    folders = visible_folders(root)
    if len(folders) == 1 and visible_folders(root / folders[0]):
        raise HorsesHumansError(
            f"{root}: holds only {folders[0]}/, whose sub-folders look like the classes: point "
            f"--data-dir at {root / folders[0]}."
        )
    names, files, labels = list_files(root)
    for index, name in enumerate(names):
        if labels.count(index) < 2:
            raise HorsesHumansError(
                f"{root / name}: 1 image, too few to split into training and validation: add at "
                "least one more (or use the train/ + val/ layout)."
            )
    train_idx, val_idx = stratified_split(files, labels, val_split, seed)
    sides = {
        side: FileList(side, root, [files[i] for i in idx], [labels[i] for i in idx])
        for side, idx in (("train", train_idx), ("validation", val_idx))
    }
    return DataSet(root, CLASS_FOLDERS, names, sides)


def stratified_split(files: list[str], labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(training, validation) indices: per class, round(fraction * n) files, at least one on each side, picked by a
    hash of (seed, file name): deterministic for the seed, whatever order the files come in."""
    held_out = set()
    for label in sorted(set(labels)):
        members = [i for i, label in enumerate(labels) if label == label]
        n_val = min(len(members) - 1, max(1, math.floor(fraction * len(members) + 0.5)))
        ranked = sorted(members, key=lambda i: hashlib.sha256(f"{seed}:{files[i]}".encode()).hexdigest())
        held_out.update(ranked[:n_val])
    return [i for i in range(len(files)) if i not in held_out], sorted(held_out)


def labelled_folder(folder: Path, class_names: list[str]) -> FileList:
    """The images of a folder of class folders named after some of class_names (a run's), labelled by their index
    there; a folder named after no class is an error naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HorsesHumansError(f"{folder}: no such folder: give a folder of class folders ({', '.join(class_names)}).")
    found = visible_folders(folder)
    for name in found:
        if name not in class_names:
            raise HorsesHumansError(
                f"{folder / name}: {name!r} is not one of the run's classes "
                f"({', '.join(class_names)}): rename or remove the folder."
            )
    if not found:
        raise HorsesHumansError(
            f"{folder}: no class folders: put the images in sub-folders named after the run's "
            f"classes ({', '.join(class_names)})."
        )
    files, labels = [], []
    for name in found:
        inside = visible_files(folder / name)
        if not inside:
            raise HorsesHumansError(f"{folder / name}: class folder is empty: add its images or remove the folder.")
        files += [str(p.relative_to(folder)) for p in inside]
        labels += [class_names.index(name)] * len(inside)
    return FileList("data", folder, files, labels)


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
) -> Split:
    """Decoded pixels of a list of files, from the cache when the files are unchanged, else decoded once and cached."""
    key = split_key(file_stats(found.root, found.files), image_size)
    cache, name = Path(cache_dir or user_cache_dir()) / "pixels", f"{found.name}-{image_size}-{key[:20]}"

    def decode() -> tuple[np.ndarray, dict]:
        x, meta = decode_split(found.root, class_names, found.files, found.labels, image_size)
        return x, {**meta, "key": key}

    x, meta = cached_array(cache, name, decode, warn)
    for item in meta["skipped"]:
        warn(f"warning: skipped {item['reason']}")
    label = dict(zip(found.files, found.labels))  # not the cached labels: --data labels by the run's class order
    y = np.asarray([label[f] for f in meta["files"]], np.int64)
    result = Split(found.name, x, y, meta["files"], list(class_names), meta["skipped"], key, found.root)
    for index in sorted(set(found.labels)):
        if not np.any(result.y == index):
            raise HorsesHumansError(f"{found.root / class_names[index]}: no readable image in this class.")
    return result


def load_split(
    data_dir: Path,
    split: str,
    image_size: int,
    cache_dir: Path | None = None,
    warn: Callable[[str], None] = print,
) -> Split:
    """Decoded pixels of one split folder (DATA_DIR/SPLIT/<class>/), through the pixel cache."""
    split_dir = Path(data_dir) / split
    names, files, labels = list_files(split_dir)
    return load_files(FileList(split, split_dir, files, labels), names, image_size, cache_dir, warn)


def load_side(dataset: DataSet, side: str, image_size: int, cache_dir: Path | None = None, warn=print) -> Split:
    """Decoded pixels of one side (train, validation, test) of a data set."""
    return load_files(dataset.sides[side], dataset.class_names, image_size, cache_dir, warn)


def load_dataset(
    data_dir: Path, image_size: int, cache_dir: Path | None = None, warn=print, val_split: float = 0.2, seed: int = 0
) -> tuple[Split, Split]:
    """(train, validation) splits of the data set in data_dir, in any layout."""
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
    """Decoded pixels of each extra folder of class folders, for the training side: (the class names with any
    `allowed` name that a folder adds appended, one Split per folder labelled by them)."""
    found = {Path(folder): extra_class_folders(Path(folder), class_names, allowed) for folder in folders}
    names = list(class_names) + [n for n in allowed if n not in class_names and any(n in f for f in found.values())]
    return names, [load_files(extra_file_list(folder, names), names, image_size, cache_dir, warn) for folder in found]


def extra_class_folders(folder: Path, class_names: list[str], allowed: tuple[str, ...]) -> list[str]:
    """The class folders of one extra folder; a missing folder, none inside, or a name that is neither one of
    class_names nor `allowed` is a one-line error naming it."""
    known = ", ".join([*class_names, *allowed])
    if not folder.is_dir():
        raise HorsesHumansError(f"--extra-data {folder}: no such folder: give a folder of class folders ({known}).")
    found = visible_folders(folder)
    if not found:
        raise HorsesHumansError(
            f"--extra-data {folder}: no class folders: put its images in sub-folders named {known}."
        )
    for name in found:
        if name not in class_names and name not in allowed:
            raise HorsesHumansError(
                f"--extra-data {folder / name}: {name!r} is not a class of the data set ({known}): "
                "rename or remove the folder."
            )
    return found


def extra_file_list(folder: Path, class_names: list[str]) -> FileList:
    """An extra folder's images labelled by class_names; its pixel cache is named after the folder."""
    found = labelled_folder(folder, class_names)
    return FileList(f"extra-{folder.resolve().name}", found.root, found.files, found.labels)


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
                fname=f"{split}.zip",
                origin=src.url,
                file_hash=src.sha256,
                hash_algorithm="sha256",
                cache_dir=str(data_dir),
                cache_subdir="downloads",
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


def find_data_root(root: Path) -> Path:
    """The folder holding a data set: root itself, or its only entry when that is a folder of folders (a zip of
    mydata/) other than a split folder."""
    entries = [p for p in root.iterdir() if not is_hidden(p.name)]
    if (
        len(entries) == 1
        and entries[0].is_dir()
        and entries[0].name not in (*SPLITS, *SPLIT_FOLDER_NAMES)
        and visible_folders(entries[0])
    ):
        return entries[0]
    return root


# ---------------------------------------------------------------- import: bounded, staged beside the data folder

IMAGE_SUFFIXES = frozenset(
    {  # what an import keeps: the photo formats Pillow decodes (not all it registers: .mpg, .h5)
        ".png",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".gif",
        ".bmp",
        ".dib",
        ".webp",
        ".avif",
        ".tif",
        ".tiff",
        ".tga",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
    }
)
SHOWN = 3  # names shown per reason in the skipped-entries line
BLOCK = 4096  # a file's disk overhead at most, for the free-space check
CHUNK = 1 << 20
ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)  # damaged, encrypted,
# or an unsupported compression (zipfile raises RuntimeError for a password, NotImplementedError for deflate64)


@dataclass(frozen=True)
class ImportLimits:
    """What one import may hold: bytes of images written, and entries (files and folders, skipped ones too) read.
    The defaults hold the official set (1,283 images, 161 MB by `du -sb` of its two splits) many times over."""

    max_bytes: int = 2 * 2**30
    max_files: int = 50_000

    def __post_init__(self):
        check_positive("max_bytes", self.max_bytes)
        check_positive("max_files", self.max_files)

    @classmethod
    def given(cls, max_bytes: int | None = None, max_files: int | None = None) -> ImportLimits:
        """The limits from the options given (--max-bytes, --max-files), the defaults for the others."""
        default = cls()
        return cls(
            default.max_bytes if max_bytes is None else max_bytes, default.max_files if max_files is None else max_files
        )


@dataclass(frozen=True)
class Entry:
    """A folder or image an import writes: its path in the data set, its announced size, where its bytes are."""

    name: str  # relative, "/"-separated: never absolute, never ".."
    size: int  # bytes the zip's directory or the file's stat announces (either can be wrong by the time it is read)
    origin: zipfile.ZipInfo | Path | None  # None: a folder
    mtime_ns: int | None = None  # the original's, kept: re-importing the same files keeps their pixel cache's key


@dataclass
class ImportPlan:
    """What an import of source writes (entries) and what it leaves out (reason -> names)."""

    source: Path
    entries: list[Entry] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, name: str) -> None:
        """Leave name out, for reason (reported in one line)."""
        self.skipped.setdefault(reason, []).append(name)

    def add_file(self, name: str, size: int, origin: zipfile.ZipInfo | Path, mtime_ns: int | None) -> None:
        """Plan an image; any other file is left out."""
        if PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES:
            self.entries.append(Entry(name, size, origin, mtime_ns))
        else:
            self.skip("not images", name)


def import_path(
    path: Path, data_dir: Path, split: str | None = None, log=print, limits: ImportLimits = ImportLimits()
) -> list[str]:
    """Import a local zip or folder: a whole data set in any layout (it replaces what data_dir held), or, with
    --split or when it is named after one (horse-or-human.zip), one official split's class folders.
    Returns the folders written into data_dir."""
    path = Path(path)
    if not path.exists():
        raise HorsesHumansError(f"{path}: no such file or folder.")
    if not (path.is_dir() or path.is_file()):  # a FIFO would block the zip check forever
        raise HorsesHumansError(f"{path}: neither a folder nor a zip file (a FIFO, device or socket): name the zip.")
    if path.is_file() and not zipfile.is_zipfile(path):
        raise HorsesHumansError(f"{path}: neither a folder nor a zip file.")
    split = split or official_split_named(path)
    if split is None:
        return import_dataset(path, Path(data_dir), log, limits)
    if split not in SPLITS:
        raise HorsesHumansError(f"--split {split!r}: choose {TRAIN} or {VALIDATION}.")
    unpack_split(path, Path(data_dir) / split, limits, log)
    log(f"{split}: imported from {path}")
    return [split]


def official_split_named(path: Path) -> str | None:
    """The official split a zip or folder is named after (horse-or-human.zip, as downloaded by hand), else None;
    a folder holding the official split folders is a whole data set, whatever its name."""
    if path.is_dir() and set(visible_folders(path)) & set(SPLITS):
        return None
    stem = path.name[:-4] if path.name.lower().endswith(".zip") else path.name
    return next((split for split in SPLITS if split == stem.lower()), None)


def unpack_split(source: Path, dest: Path, limits: ImportLimits = ImportLimits(), log=print) -> None:
    """Write a zip's or folder's class folders into dest: staged beside it (within the limits), then renamed."""
    with staged(source, dest, limits, log) as unpacked:
        root = find_class_root(unpacked)
        names = class_names(root)  # validates: at least two class folders
        if set(names) & set(SPLITS):  # else both splits would become "classes" of one split
            raise HorsesHumansError(
                f"{source}: holds the split folders {names}, not class folders; "
                f"import the folder that directly holds {TRAIN}/ and {VALIDATION}/ (unzip it first)."
            )
        swap_in(root, dest, unpacked.parent / "replaced")


def import_dataset(source: Path, data_dir: Path, log=print, limits: ImportLimits = ImportLimits()) -> list[str]:
    """Write a whole data set (a zip or folder in any layout, checked first) into data_dir: staged in a temporary
    folder beside it (within the limits), then renamed into place. Returns the folders written."""
    replaced = what_import_replaces(data_dir)  # refused before anything is written
    with staged(source, data_dir, limits, log) as unpacked:
        dataset = find_dataset(
            find_data_root(unpacked)
        )  # one clear error for a bad layout, before anything is replaced
        swap_in(dataset.root, data_dir, unpacked.parent / "replaced")
    counts = ", ".join(f"{len(found.files)} {side}" for side, found in dataset.sides.items())
    log(
        f"imported the {dataset.layout} data set from {source} into {data_dir}: {len(dataset.class_names)} classes "
        f"({', '.join(dataset.class_names)}), {counts} images" + (f"; it replaced {replaced}" if replaced else "")
    )
    return visible_folders(data_dir)


def what_import_replaces(dest: Path) -> str | None:
    """What an import into dest replaces, in words (None: nothing). A dest holding anything but a data set is
    refused: an import never deletes other files."""
    held = sorted(p.name for p in dest.iterdir() if not is_hidden(p.name)) if dest.is_dir() else []
    if dest.exists() and not dest.is_dir():
        raise HorsesHumansError(f"{dest}: is a file, not a data folder: choose another --data-dir.")
    if held and any((dest / name).is_file() for name in held):
        raise HorsesHumansError(
            f"{dest}: holds files ({', '.join(held[:5])}) besides a data set: import into an "
            "empty or new folder (--data-dir DIR)."
        )
    return f"the {detect_layout(dest)} data set ({', '.join(held)})" if held else None


def swap_in(new: Path, dest: Path, trash: Path) -> None:
    """Rename new onto dest; what dest held goes to trash first, and back should the rename fail."""
    if dest.exists():
        os.replace(dest, trash)
    try:
        os.replace(new, dest)
    except OSError:
        if trash.exists():
            os.replace(trash, dest)
        raise


# ---------------------------------------------------------------- staging: plan and check, then write


@contextmanager
def staged(source: Path, dest: Path, limits: ImportLimits, log):
    """Check an import of source against the limits and the free disk, then write it into a temporary folder beside
    dest: yields that folder, removed afterwards with whatever is left in it. Errors name source, not the folder."""
    clean_interrupted(dest, log)  # first: what a killed import left counts against the free space
    with opened(source, limits) as (plan, open_entry):
        check_plan(plan, dest.parent, limits)
        report_skipped(plan, log)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f"{staging_prefix(dest)}{os.getpid()}-"))
        try:
            write_plan(plan, tmp / "unpacked", open_entry, limits)
            yield tmp / "unpacked"
        except HorsesHumansError as exc:
            raise HorsesHumansError(str(exc).replace(str(tmp / "unpacked"), str(source))) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def staging_prefix(dest: Path) -> str:
    """How the temporary folders an import of dest stages in are named: then the id of the process that owns one."""
    return f".{dest.name}-import-"


def clean_interrupted(dest: Path, log) -> None:
    """Remove the staging folders that killed imports left beside dest. One killed between moving the old data aside
    and moving the new in still holds the old data: it goes back first."""
    prefix = staging_prefix(dest)
    for tmp in sorted(dest.parent.iterdir()) if dest.parent.is_dir() else []:
        pid = tmp.name[len(prefix) :].split("-")[0] if tmp.name.startswith(prefix) else ""
        if not pid.isdigit() or process_alive(int(pid)):
            continue  # not a staging folder, or one an import still running is writing
        if (tmp / "replaced").is_dir() and not dest.exists():
            os.replace(tmp / "replaced", dest)
            log(f"{dest}: put back, an import killed while it replaced the data had moved it aside")
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"{tmp}: removed, left by an import that was killed (process {pid})")


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs (another user's counts). On Windows always True: os.kill would end it."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def opened(source: Path, limits: ImportLimits):
    """(plan, open_entry) for a folder or a zip; the zip stays open while its members are written."""
    if source.is_dir():
        yield folder_plan(source, limits), open_regular
        return
    announced = announced_members(source)
    if announced is not None and announced > limits.max_files:
        raise too_many(source, str(announced), limits)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise HorsesHumansError(f"{source}: not a valid zip file ({exc}).") from None
    with archive:
        yield zip_plan(archive, source, limits), archive.open


def announced_members(path: Path) -> int | None:
    """The member count a zip's end record announces, read before zipfile loads its whole directory (ten million
    members take gigabytes as ZipInfo objects); None when there is no end record (zipfile then says what is wrong)."""
    with open(path, "rb") as fh:
        fh.seek(max(0, fh.seek(0, os.SEEK_END) - 22 - 0xFFFF))  # the record (22 bytes) and a comment of 64 KiB at most
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return None
        count = struct.unpack_from("<H", tail, at + 10)[0]
        if count != 0xFFFF or tail[max(0, at - 20) : at - 16] != b"PK\x06\x07":
            return count
        fh.seek(struct.unpack_from("<Q", tail, at - 12)[0])  # Zip64: the locator points at the Zip64 end record
        record = fh.read(40)
    return struct.unpack_from("<Q", record, 32)[0] if len(record) == 40 and record[:4] == b"PK\x06\x06" else None


def zip_plan(archive: zipfile.ZipFile, source: Path, limits: ImportLimits) -> ImportPlan:
    """Sort a zip's members into folders and images to write and members to skip, from its directory alone."""
    members = archive.infolist()
    if len(members) > limits.max_files:
        raise too_many(source, str(len(members)), limits)
    plan = ImportPlan(source)
    for info in members:
        parts = member_parts(source, info.filename)
        if not parts or any(is_hidden(part) for part in parts):
            continue  # __MACOSX/, .DS_Store: never data, not worth a report
        name, kind = "/".join(parts), stat.S_IFMT(info.external_attr >> 16)  # the Unix file type, when a Unix zip says
        if info.is_dir() or kind == stat.S_IFDIR:
            plan.entries.append(Entry(name, 0, None))
        elif kind == stat.S_IFLNK:
            plan.skip("symlinks", name)  # never followed: it could point anywhere
        elif kind not in (0, stat.S_IFREG):
            plan.skip("not regular files", name)
        else:
            plan.add_file(name, info.file_size, info, zip_mtime_ns(info))
    return plan


def zip_mtime_ns(info: zipfile.ZipInfo) -> int | None:
    """A member's modification time (the zip stores local time, to 2 s), None when it is not a valid date."""
    try:
        return int(time.mktime((*info.date_time, 0, 0, -1))) * 10**9
    except (OverflowError, ValueError):
        return None


def member_parts(source: Path, member: str) -> tuple[str, ...]:
    """A zip member's path parts; an absolute one or one that climbs out with '..' is refused (zip-slip)."""
    parts = PurePosixPath(member.replace("\\", "/")).parts
    if PureWindowsPath(member).anchor or member.startswith("/") or ".." in parts:
        raise HorsesHumansError(
            f"{source}: member {member!r} points outside the archive; refused: the zip is unsafe, "
            "re-create it with paths relative to its top folder."
        )
    return parts


def folder_plan(source: Path, limits: ImportLimits) -> ImportPlan:
    """Walk a folder into what to write and what to skip; links to files and folders are followed, never round a
    loop, and FIFOs, devices and sockets are never opened."""
    plan, seen = ImportPlan(source), 0
    todo = [(str(source), "", frozenset({inode(os.stat(source))}))]
    while todo:
        folder, prefix, ancestors = todo.pop()
        inner = []
        for path, name in folder_names(plan, folder, prefix):
            seen += 1
            if seen > limits.max_files:
                raise too_many(source, f"more than {limits.max_files}", limits)
            inner += plan_folder_entry(plan, path, name, ancestors)
        todo += reversed(inner)  # the first sub-folder is walked next: entries come in sorted order
    return plan


def folder_names(plan: ImportPlan, folder: str, prefix: str) -> list[tuple[str, str]]:
    """(path, name in the data set) of a folder's visible entries; an unreadable folder is skipped."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        plan.skip("unreadable", prefix.rstrip("/") or ".")
        return []
    return [(os.path.join(folder, n), prefix + n) for n in names if not is_hidden(n)]


def plan_folder_entry(plan: ImportPlan, path: str, name: str, ancestors: frozenset) -> list[tuple]:
    """Plan one entry of a folder; a folder to walk into comes back as [(path, name/, its ancestors)]."""
    try:
        info = os.stat(path)  # follows links: a dangling link or one that points at itself fails here
    except OSError:
        plan.skip("broken links" if os.path.islink(path) else "unreadable", name)
        return []
    if stat.S_ISDIR(info.st_mode):
        if inode(info) in ancestors:  # a link back up the tree: walking it would never end
            plan.skip("symlink loops", name)
            return []
        plan.entries.append(Entry(name, 0, None))
        return [(path, name + "/", ancestors | {inode(info)})]
    if stat.S_ISREG(info.st_mode):
        plan.add_file(name, info.st_size, Path(path), info.st_mtime_ns)
    else:
        plan.skip("not regular files", name)
    return []


def inode(info: os.stat_result) -> tuple[int, int]:
    """What tells two folders apart whatever path reached them."""
    return info.st_dev, info.st_ino


def too_many(source: Path, found: str, limits: ImportLimits) -> HorsesHumansError:
    """The refusal of an import with more entries than --max-files."""
    return HorsesHumansError(
        f"{source}: holds {found} files and folders, over the limit of {limits.max_files}: "
        "raise --max-files if they are all data."
    )


def check_plan(plan: ImportPlan, where: Path, limits: ImportLimits) -> None:
    """Refuse, before anything is written, an import over --max-bytes or over the free space where it goes."""
    size = sum(entry.size for entry in plan.entries)
    if size > limits.max_bytes:
        raise HorsesHumansError(
            f"{plan.source}: its images unpack to {size_text(size)}, over the limit of "
            f"{size_text(limits.max_bytes)}: raise --max-bytes if the data set is that large."
        )
    need, free = size + BLOCK * len(plan.entries), shutil.disk_usage(existing_folder(where)).free
    if need > free:
        raise HorsesHumansError(
            f"{where}: {size_text(free)} free on its disk, the import of {plan.source} needs "
            f"{size_text(need)}: free some space or choose another --data-dir."
        )


def existing_folder(path: Path) -> Path:
    """path, or its nearest parent that exists (where a new data folder's disk is measured)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return path


def size_text(n: int) -> str:
    """A byte count for a message, exact (--max-bytes takes bytes) and readable: 812 bytes, 3.3 KiB (3408 bytes)."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n} bytes)"
    return f"{n} bytes"


def report_skipped(plan: ImportPlan, log) -> None:
    """One line: how many entries the import leaves out, by reason, with the first few names of each."""
    if not plan.skipped:
        return
    reasons = [
        f"{len(names)} {reason} ({', '.join(names[:SHOWN])}{', ...' if len(names) > SHOWN else ''})"
        for reason, names in plan.skipped.items()
    ]
    total = sum(map(len, plan.skipped.values()))
    log(f"{plan.source}: skipped {total} {'entry' if total == 1 else 'entries'}: {'; '.join(reasons)}")


def write_plan(plan: ImportPlan, dest: Path, open_entry: Callable, limits: ImportLimits) -> None:
    """Write the planned folders and images under dest (a new folder), counting bytes as they are written."""
    dest.mkdir()
    written = 0
    for entry in plan.entries:
        try:
            written += write_entry(plan, entry, dest / entry.name, open_entry, limits.max_bytes - written)
        except ZIP_READ_ERRORS as exc:
            raise HorsesHumansError(
                f"{plan.source}: cannot unpack {entry.name!r} ({exc}): nothing was changed: the "
                "zip is damaged, encrypted or unusually compressed; re-create it."
            ) from None
        except OSError as exc:  # a full disk, an unreadable file, a member that is both a file and a folder
            raise HorsesHumansError(
                f"{plan.source}: importing {entry.name!r} failed ({exc.strerror or exc}); nothing was changed."
            ) from None


def write_entry(plan: ImportPlan, entry: Entry, target: Path, open_entry: Callable, room: int) -> int:
    """Write one folder, or one image's bytes, at most room of them (a size announced is not trusted), with its
    original time; returns the bytes written."""
    if entry.origin is None:
        target.mkdir(parents=True, exist_ok=True)
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open_entry(entry.origin) as src, open(target, "wb") as out:
        while chunk := src.read(CHUNK):
            written += len(chunk)
            if written > room:
                raise HorsesHumansError(
                    f"{plan.source}: {entry.name!r} holds more bytes than announced and the "
                    "import passed its --max-bytes limit: stopped, nothing was changed."
                )
            out.write(chunk)
    if entry.mtime_ns is not None:
        os.utime(target, ns=(entry.mtime_ns, entry.mtime_ns))
    return written


class NotRegularFile(OSError):
    """A path that was to be read is a FIFO, a device, a socket or a folder (found on the open file itself)."""


def open_regular(path: str | Path):
    """Open a file for reading only while it is a regular file (the import and predict both read through this):
    non-blocking, so a FIFO swapped in since it was checked cannot block; NotRegularFile says what it is instead."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)  # O_NONBLOCK has no effect on a regular file's reads
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFile(f"{path}: {kind_of(mode)}, not a regular file")
    return os.fdopen(fd, "rb")


def kind_of(mode: int) -> str:
    """What a file that is not a regular one is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"
