"""Tiny learnable synthetic data sets: the official layout (horses reddish, humans bluish), and N-class sets in
each layout a user's own images come in (class i has its own colour cast)."""

import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from horses_humans.data.layouts import TRAIN, VALIDATION

# Class i's colour cast: 2 classes are red/blue as they always were; more classes add green, yellow, magenta, ...
CASTS = [(150, 0, 0), (0, 0, 150), (0, 150, 0), (150, 150, 0), (150, 0, 150), (0, 150, 150), (150, 75, 0), (75, 0, 150)]
LAYOUTS = ("official", "split-folders", "class-folders")  # what tests/test_*classes* build each own-data set in


def write_image(path: Path, cls: int, rng, size: int = 40, mode: str = "RGBA") -> None:
    """A noisy image whose colour cast tells its class."""
    pixels = rng.integers(0, 90, (size, size, 3)) + np.array(CASTS[cls % len(CASTS)])
    im = Image.fromarray(pixels.clip(0, 255).astype("uint8"), "RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    im.convert(mode).save(path)


def make_dataset(root: Path, train_per_class: int = 24, val_per_class: int = 8, seed: int = 0) -> Path:
    """Write horse-or-human/ and validation-horse-or-human/ with horses/ and humans/ under root."""
    rng = np.random.default_rng(seed)
    for split, n in ((TRAIN, train_per_class), (VALIDATION, val_per_class)):
        for cls, name in enumerate(("horses", "humans")):
            for i in range(n):
                write_image(Path(root) / split / name / f"{name[:-1]}{i:02d}.png", cls, rng)
    return Path(root)


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    """Zip every file under folder, stored as prefix + its path relative to folder."""
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + p.relative_to(folder).as_posix())
    return archive


def class_names(n: int) -> list[str]:
    """n class folder names (sorted order = class index order): class0 ... for n > 2, horses/humans for 2."""
    return ["horses", "humans"] if n == 2 else [f"class{i}" for i in range(n)]


def make_classes(root: Path, classes: list[str], per_class: int, rng, size: int = 40) -> Path:
    """root/<class>/<class>-NN.png for every class, `per_class` learnable images each."""
    for cls, name in enumerate(classes):
        for i in range(per_class):
            write_image(Path(root) / name / f"{name}-{i:02d}.png", cls, rng, size, mode="RGB")
    return Path(root)


def make_own_dataset(
    root: Path, n_classes: int, layout: str, per_class: int = 12, seed: int = 0, test: bool = False
) -> Path:
    """A user's own data set of n_classes in one of LAYOUTS:
    official       horse-or-human/<class>/ + validation-horse-or-human/<class>/
    split-folders  train/<class>/ + val/<class>/ (+ test/<class>/ when test=True)
    class-folders  <class>/ alone (the tool makes the validation split)
    per_class images per class in the training side (a third as many in val/test)."""
    rng, names, root = np.random.default_rng(seed), class_names(n_classes), Path(root)
    held_out = max(2, per_class // 3)
    if layout == "official":
        make_classes(root / TRAIN, names, per_class, rng)
        make_classes(root / VALIDATION, names, held_out, rng)
    elif layout == "split-folders":
        make_classes(root / "train", names, per_class, rng)
        make_classes(root / "val", names, held_out, rng)
        if test:
            make_classes(root / "test", names, held_out, rng)
    elif layout == "class-folders":
        make_classes(root, names, per_class, rng)
    else:
        raise ValueError(f"unknown layout {layout!r}: one of {LAYOUTS}")
    return root
