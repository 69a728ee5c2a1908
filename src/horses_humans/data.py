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
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(is_hidden(part) for part in p.relative_to(folder).parts))


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
        raise HorsesHumansError(f"{split_dir}: needs at least two class folders, found {names or 'none'}: "
                                "add a folder of images for each class.")
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
    return HorsesHumansError(f"{root}: no data set here ({found}). Run `horses-humans data download` or "
                             "`horses-humans data import PATH`, or point --data-dir / HORSES_HUMANS_DATA at a folder "
                             f"in one of the layouts {layouts_text()}.")


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
    raise no_data_set(root, f"it holds {', '.join(entries[:5])}{', ...' if len(entries) > 5 else ''}" if entries
                      else "the folder is empty")


def split_folders(root: Path, layout: str) -> dict[str, str]:
    """{side: folder under root} of a layout with split folders; a missing or doubled split is an error."""
    if layout == OFFICIAL:
        return {"train": TRAIN, "validation": VALIDATION}
    present = set(visible_folders(root))
    vals = [v for v in VAL_FOLDERS if v in present]
    if "train" not in present:
        found = ", ".join(f"{f}/" for f in sorted(present & set(SPLIT_FOLDER_NAMES)))
        raise HorsesHumansError(f"{root}: holds {found} but no train/: add {root / 'train'}/<class>/ with the "
                                "training images.")
    if not vals:
        raise HorsesHumansError(f"{root / 'train'}: no val/ (or valid/, validation/) beside it: add "
                                f"{root / 'val'}/<class>/, or put the class folders directly in {root} and let "
                                "train --val-split make the validation split.")
    if len(vals) > 1:
        raise HorsesHumansError(f"{root}: holds both {vals[0]}/ and {vals[1]}/: keep one validation folder.")
    return {"train": "train", "validation": vals[0], **({"test": "test"} if "test" in present else {})}


def shared_classes(root: Path, classes: dict[str, list[str]]) -> list[str]:
    """The class names every split folder holds; a class present in one and not another is an error naming it."""
    (first, names), *rest = classes.items()
    for folder, other in rest:
        for name in sorted(set(names) ^ set(other)):
            has, lacks = (first, folder) if name in names else (folder, first)
            raise HorsesHumansError(f"{root}: class folders differ between {has}/ and {lacks}/: {name!r} is only in "
                                    f"{has}/; add {root / lacks / name}/ with images, or remove {root / has / name}/.")
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
    sides = {side: FileList(folders[side], root / folders[side], files, labels)
             for side, (_, files, labels) in listed.items()}
    return DataSet(root, layout, names, sides)


def split_class_folders(root: Path, val_split: float, seed: int) -> DataSet:
    """Class folders alone: every class split into training and validation files (at least one each)."""
    folders = visible_folders(root)
    if len(folders) == 1 and visible_folders(root / folders[0]):
        raise HorsesHumansError(f"{root}: holds only {folders[0]}/, whose sub-folders look like the classes: point "
                                f"--data-dir at {root / folders[0]}.")
    names, files, labels = list_files(root)
    for index, name in enumerate(names):
        if labels.count(index) < 2:
            raise HorsesHumansError(f"{root / name}: 1 image, too few to split into training and validation: add at "
                                    "least one more (or use the train/ + val/ layout).")
    train_idx, val_idx = stratified_split(files, labels, val_split, seed)
    sides = {side: FileList(side, root, [files[i] for i in idx], [labels[i] for i in idx])
             for side, idx in (("train", train_idx), ("validation", val_idx))}
    return DataSet(root, CLASS_FOLDERS, names, sides)


def stratified_split(files: list[str], labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(training, validation) indices: per class, round(fraction * n) files, at least one on each side, picked by a
    hash of (seed, file name): deterministic for the seed, whatever order the files come in."""
    held_out = set()
    for label in sorted(set(labels)):
        members = [i for i, l in enumerate(labels) if l == label]
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
            raise HorsesHumansError(f"{folder / name}: {name!r} is not one of the run's classes "
                                    f"({', '.join(class_names)}): rename or remove the folder.")
    if not found:
        raise HorsesHumansError(f"{folder}: no class folders: put the images in sub-folders named after the run's "
                                f"classes ({', '.join(class_names)}).")
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
    meta = {"files": [f for f, good in zip(files, ok) if good], "labels": [l for l, good in zip(labels, ok) if good],
            "skipped": skipped, "class_names": names}
    return x[ok], meta


def load_files(found: FileList, class_names: list[str], image_size: int, cache_dir: Path | None = None,
               warn: Callable[[str], None] = print) -> Split:
    """Decoded pixels of a list of files, from the cache when the files are unchanged, else decoded once and cached."""
    key = split_key(file_stats(found.root, found.files), image_size)
    cache, name = Path(cache_dir or user_cache_dir()) / "pixels", f"{found.name}-{image_size}-{key[:20]}"
    cached = load_cached_array(cache, name)
    if cached is not None:
        x, meta = cached
    else:
        x, meta = decode_split(found.root, class_names, found.files, found.labels, image_size)
        meta = save_cached_array(cache, name, x, {**meta, "key": key})
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


def load_dataset(data_dir: Path, image_size: int, cache_dir: Path | None = None, warn=print, val_split: float = 0.2,
                 seed: int = 0) -> tuple[Split, Split]:
    """(train, validation) splits of the data set in data_dir, in any layout."""
    dataset = find_dataset(Path(data_dir), val_split, seed)
    return tuple(load_side(dataset, side, image_size, cache_dir, warn) for side in ("train", "validation"))


# ---------------------------------------------------------------- extra training folders (train --extra-data)

def load_extra(folders, class_names: list[str], image_size: int, cache_dir: Path | None = None, warn=print,
               allowed: tuple[str, ...] = ()) -> tuple[list[str], list[Split]]:
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
        raise HorsesHumansError(f"--extra-data {folder}: no class folders: put its images in sub-folders named {known}.")
    for name in found:
        if name not in class_names and name not in allowed:
            raise HorsesHumansError(f"--extra-data {folder / name}: {name!r} is not a class of the data set ({known}): "
                                    "rename or remove the folder.")
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
    return Split(name, np.concatenate([s.x for s in splits]), np.concatenate([s.y for s in splits]), files,
                 list(splits[0].class_names), [item for s in splits for item in s.skipped], key, splits[0].root,
                 tuple(splits))


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


def find_data_root(root: Path) -> Path:
    """The folder holding a data set: root itself, or its only entry when that is a folder of folders (a zip of
    mydata/) other than a split folder."""
    entries = [p for p in root.iterdir() if not is_hidden(p.name)]
    if (len(entries) == 1 and entries[0].is_dir() and entries[0].name not in (*SPLITS, *SPLIT_FOLDER_NAMES)
            and visible_folders(entries[0])):
        return entries[0]
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
        shutil.copytree(root, tmp / "split", ignore=hidden_names)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp / "split", dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def import_path(path: Path, data_dir: Path, split: str | None = None, log=print) -> list[str]:
    """Import a local zip or folder: a whole data set in any layout (it replaces what data_dir held), or, with
    --split or when it is named after one (horse-or-human.zip), one official split's class folders.
    Returns the folders written into data_dir."""
    path = Path(path)
    if not path.exists():
        raise HorsesHumansError(f"{path}: no such file or folder.")
    if path.is_file() and not zipfile.is_zipfile(path):
        raise HorsesHumansError(f"{path}: neither a folder nor a zip file.")
    split = split or official_split_named(path)
    if split is None:
        return import_dataset(path, Path(data_dir), log)
    if split not in SPLITS:
        raise HorsesHumansError(f"--split {split!r}: choose {TRAIN} or {VALIDATION}.")
    unpack_split(path, Path(data_dir) / split)
    log(f"{split}: imported from {path}")
    return [split]


def official_split_named(path: Path) -> str | None:
    """The official split a zip or folder is named after (horse-or-human.zip, as downloaded by hand), else None;
    a folder holding the official split folders is a whole data set, whatever its name."""
    if path.is_dir() and set(visible_folders(path)) & set(SPLITS):
        return None
    stem = path.name[:-4] if path.name.lower().endswith(".zip") else path.name
    return next((split for split in SPLITS if split == stem.lower()), None)


def import_dataset(source: Path, data_dir: Path, log=print) -> list[str]:
    """Copy a whole data set (a zip or folder in any layout, checked first) to data_dir: staged in a temporary folder
    beside it, then renamed into place. Returns the folders written."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=data_dir.parent, prefix=f".{data_dir.name}-import-"))
    try:
        if source.is_file():
            safe_extract(source, tmp / "unpacked")
        root = find_data_root(source if source.is_dir() else tmp / "unpacked")
        try:
            dataset = find_dataset(root)  # one clear error for a bad layout, before anything is replaced
        except HorsesHumansError as exc:  # name the zip, not the temporary folder it was unpacked in
            raise HorsesHumansError(str(exc).replace(str(tmp / "unpacked"), str(source))) from None
        shutil.copytree(root, tmp / "data", ignore=hidden_names)
        replaced = replace_folder(tmp / "data", data_dir, tmp / "replaced")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    counts = ", ".join(f"{len(found.files)} {side}" for side, found in dataset.sides.items())
    log(f"imported the {dataset.layout} data set from {source} into {data_dir}: {len(dataset.class_names)} classes "
        f"({', '.join(dataset.class_names)}), {counts} images" + (f"; it replaced {replaced}" if replaced else ""))
    return visible_folders(data_dir)


def replace_folder(new: Path, dest: Path, trash: Path) -> str | None:
    """Rename new onto dest, moving what dest held to trash first; returns what it replaced (None: nothing).
    A dest holding anything but a data set is refused: an import never deletes other files."""
    held = sorted(p.name for p in dest.iterdir() if not is_hidden(p.name)) if dest.is_dir() else []
    if dest.exists() and not dest.is_dir():
        raise HorsesHumansError(f"{dest}: is a file, not a data folder: choose another --data-dir.")
    if held and any((dest / name).is_file() for name in held):
        raise HorsesHumansError(f"{dest}: holds files ({', '.join(held[:5])}) besides a data set: import into an "
                                "empty or new folder (--data-dir DIR).")
    replaced = f"the {detect_layout(dest)} data set ({', '.join(held)})" if held else None
    if dest.exists():
        os.replace(dest, trash)
    os.replace(new, dest)
    return replaced
