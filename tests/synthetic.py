"""A tiny learnable synthetic data set in the official layout (horses reddish, humans bluish)."""

import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from horses_humans.data import TRAIN, VALIDATION


def write_image(path: Path, cls: int, rng, size: int = 40, mode: str = "RGBA") -> None:
    """A noisy image whose dominant channel tells its class."""
    pixels = rng.integers(0, 90, (size, size, 3))
    pixels[..., 0 if cls == 0 else 2] += 150
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
