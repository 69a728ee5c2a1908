"""Phone-size JPEGs made from images at hand (imported as `phone_corpus`: a bench runs as a script, with bench/ on
sys.path). Made in a temporary folder by the bench that needs them, never committed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

PHONE_SIZE = (4032, 3024)  # a 12-megapixel phone camera, landscape
QUALITY = 90  # what phone cameras write, about
NOISE = 3.0  # sensor noise (standard deviation, 0-255): a bare upscale compresses to a tenth of a real photo's bytes


def phone_jpeg(source: Path, target: Path, seed: int) -> Path:
    """`source` upscaled (bicubic) to PHONE_SIZE, with sensor-like noise, saved as a quality-90 JPEG at `target`."""
    with Image.open(source) as im:
        big = np.asarray(im.convert("RGB").resize(PHONE_SIZE, Image.Resampling.BICUBIC), dtype=np.float32)
    noise = np.random.default_rng(seed).normal(0.0, NOISE, big.shape[:2] + (1,)).astype(np.float32)
    Image.fromarray((big + noise).clip(0, 255).astype(np.uint8)).save(target, "JPEG", quality=QUALITY)
    return target


def make_phone_jpegs(sources: list[Path], unique: int, count: int, folder: Path) -> list[Path]:
    """`count` files in `folder`: `unique` phone JPEGs made from the first sources, then symbolic links cycling
    through them (decoding costs the same; making a 12-megapixel JPEG costs about half a second)."""
    made_dir = folder.parent / f"{folder.name}-made"  # beside `folder`: a walk of it finds each file once
    folder.mkdir(parents=True)
    made_dir.mkdir()
    picks = [sources[i * len(sources) // unique] for i in range(unique)]  # spread over the classes' sorted files
    with ThreadPoolExecutor() as pool:
        made = list(pool.map(lambda i: phone_jpeg(picks[i], made_dir / f"phone{i:03d}.jpg", i), range(unique)))
    files = [folder / f"{i:06d}.jpg" for i in range(count)]
    for i, path in enumerate(files):
        path.symlink_to(made[i % unique])
    return files
