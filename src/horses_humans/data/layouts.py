"""Find the data set in a data folder: its layout, its class names and the files of each side (train, validation,
maybe test), and the one routine that reads class folders.

A data folder DIR holds one sub-folder per class (the class names, sorted: class 0, 1, ...) in one of these layouts:
  official       DIR/horse-or-human/<class>/ + DIR/validation-horse-or-human/<class>/ (the Horses or Humans set)
  split-folders  DIR/train/<class>/ + DIR/val/<class>/ (or valid/, validation/), optionally DIR/test/<class>/
  class-folders  DIR/<class>/ alone: a stratified validation split of --val-split, deterministic for the seed
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..config import HorsesHumansError
from .files import is_hidden, is_utf8, shown, visible_files, visible_folders

TRAIN = "horse-or-human"
VALIDATION = "validation-horse-or-human"
SPLITS = (TRAIN, VALIDATION)
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
class FileList:
    """One part of a data set before decoding: files relative to root (each under its class folder), class indices."""

    name: str  # names its pixel cache: the split folder's name, or the side's ("train", "validation") for class folders
    root: Path
    files: list[str]
    labels: list[int]
    skipped: list[dict] = field(default_factory=list)  # [{"file": ..., "reason": ...}] left out before decoding


@dataclass(frozen=True)
class DataSet:
    """A data folder as found: its layout, class names and the files of each side (train, validation, maybe test)."""

    root: Path
    layout: str
    class_names: list[str]
    sides: dict[str, FileList]


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
    for name in names:
        if not is_utf8(name):
            raise HorsesHumansError(f"{shown(split_dir / name)}: a class folder name must be valid UTF-8: rename it.")
    if len(names) < 2:
        raise HorsesHumansError(
            f"{split_dir}: needs at least two class folders, found {names or 'none'}: "
            "add a folder of images for each class."
        )
    return names


def list_files(split_dir: Path) -> tuple[list[str], list[str], list[int]]:
    """(class names, files relative to split_dir, labels); an empty class is an error."""
    found = read_class_folders(split_dir)
    return found.names, found.files, found.labels(found.names)


@dataclass(frozen=True)
class ClassRule:
    """Which class folders a folder may hold, and how its errors say so."""

    known: tuple[str, ...] = ()  # the names allowed; empty: every visible sub-folder is a class, two at least
    member: str = "a known class"  # what a folder's name should be, for the error: "one of the run's classes"
    option: str = ""  # the option that named the folder, starting each error ("--extra-data ")


@dataclass(frozen=True)
class ClassFiles:
    """The images of a folder of class folders: the class folders found, each file (relative) and its class."""

    folder: Path
    names: list[str]
    files: list[str]
    classes: list[str]
    skipped: list[dict]  # files left out, as Split.skipped: their names are not UTF-8, which run records cannot hold

    def labels(self, class_names: list[str]) -> list[int]:
        """Each file's class as its index in class_names (a data set's or a run's order)."""
        index = {name: i for i, name in enumerate(class_names)}
        return [index[name] for name in self.classes]


def read_class_folders(folder: Path, rule: ClassRule = ClassRule()) -> ClassFiles:
    """The images of every class folder in folder (the one routine that reads class folders): a missing folder, too
    few class folders, a name the rule does not know or an empty class is a one-line error naming the folder."""
    folder = Path(folder)
    names = known_class_folders(folder, rule) if rule.known else class_names(folder)
    files, classes, skipped = [], [], []
    for name in names:
        inside = visible_files(folder / name)
        if not inside:
            raise HorsesHumansError(
                f"{rule.option}{folder / name}: class folder is empty: add its images or remove the folder."
            )
        usable = [p for p in inside if is_utf8(p.name)]
        skipped += [not_utf8(p) for p in inside if not is_utf8(p.name)]
        if not usable:
            raise HorsesHumansError(
                f"{rule.option}{shown(folder / name)}: no file name here is valid UTF-8: rename the files."
            )
        files += [str(p.relative_to(folder)) for p in usable]
        classes += [name] * len(usable)
    return ClassFiles(folder, names, files, classes, skipped)


def not_utf8(path: Path) -> dict:
    """A file left out for its name, as Split.skipped holds it (escaped, so the record is valid JSON)."""
    return {"file": shown(path), "reason": f"{shown(path)}: the file name is not valid UTF-8: rename it to use it"}


def known_class_folders(folder: Path, rule: ClassRule) -> list[str]:
    """The class folders of folder, each named after one of rule.known, one at least."""
    known = ", ".join(rule.known)
    if not folder.is_dir():
        raise HorsesHumansError(f"{rule.option}{folder}: no such folder: give a folder of class folders ({known}).")
    names = visible_folders(folder)
    if not names:
        raise HorsesHumansError(
            f"{rule.option}{folder}: no class folders: put its images in sub-folders named after the classes ({known})."
        )
    for name in names:
        if name not in rule.known:
            raise HorsesHumansError(
                f"{rule.option}{folder / name}: {name!r} is not {rule.member} ({known}): rename or remove the folder."
            )
    return names


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
    listed = {side: read_class_folders(root / folder) for side, folder in folders.items()}
    names = shared_classes(root, {folders[side]: found.names for side, found in listed.items()})
    sides = {
        side: FileList(folders[side], found.folder, found.files, found.labels(names), found.skipped)
        for side, found in listed.items()
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
    found = read_class_folders(root)
    names, files, labels = found.names, found.files, found.labels(found.names)
    for index, name in enumerate(names):
        if labels.count(index) < 2:
            raise HorsesHumansError(
                f"{root / name}: 1 image, too few to split into training and validation: add at "
                "least one more (or use the train/ + val/ layout)."
            )
    train_idx, val_idx = stratified_split(files, labels, val_split, seed)
    sides = {
        side: FileList(side, root, [files[i] for i in idx], [labels[i] for i in idx], skipped)
        for side, idx, skipped in (("train", train_idx, found.skipped), ("validation", val_idx, []))
    }
    return DataSet(root, CLASS_FOLDERS, names, sides)


def stratified_split(files: list[str], labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(training, validation) indices: per class, round(fraction * n) files, at least one on each side, picked by a
    hash of (seed, file name): deterministic for the seed, whatever order the files come in."""
    held_out = set()
    for wanted in sorted(set(labels)):
        members = [i for i, label in enumerate(labels) if label == wanted]
        n_val = min(len(members) - 1, max(1, math.floor(fraction * len(members) + 0.5)))
        ranked = sorted(members, key=lambda i: hashlib.sha256(f"{seed}:{files[i]}".encode()).hexdigest())
        held_out.update(ranked[:n_val])
    return [i for i in range(len(files)) if i not in held_out], sorted(held_out)


def labelled_folder(folder: Path, class_names: list[str]) -> FileList:
    """The images of a folder of class folders named after some of class_names (a run's), labelled by their index
    there; a folder named after no class is an error naming it."""
    found = read_class_folders(folder, ClassRule(tuple(class_names), "one of the run's classes"))
    return FileList("data", found.folder, found.files, found.labels(class_names), found.skipped)


def extra_rule(class_names: list[str], allowed: tuple[str, ...]) -> ClassRule:
    """What a train --extra-data folder may hold: class folders named after the data set's classes or `allowed`."""
    return ClassRule((*class_names, *allowed), "a class of the data set", "--extra-data ")


def find_class_root(root: Path) -> Path:
    """The folder holding the class folders: root itself or its single sub-folder (one level down)."""
    folders = visible_folders(root)
    if len(folders) == 1 and len(visible_folders(root / folders[0])) >= 2:
        return root / folders[0]
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
