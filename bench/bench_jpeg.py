"""JPEG decoding (issue 22): Pillow's DCT-scaled decoding (draft, what load_pixels does) against the full decode, in
pixels, in a run's labels and accuracy, and in time per image against other decoders.

  pixels     mean absolute difference (0-255) between load_pixels with and without draft, per JPEG of --photos
  labels     a run's labels of the images of --photos and of its validation folder, decoded both ways: agreement, and
             accuracy where a file's class folder is one of the run's classes
  decoders   milliseconds per image to --size x --size RGB on one thread (best of --rounds per file, the least
             disturbed by other processes), on the JPEGs of --photos and on --phone made 4032x3024 phone JPEGs:
             Pillow full decode, Pillow with draft (load_pixels), and simplejpeg, PyTurboJPEG and pyvips where
             installed, each at its own smallest DCT scale still 2x the target (pyvips: its thumbnail), with the
             difference of each from the full decode

    python bench/bench_jpeg.py RUN --photos ../shared/real-photos-dev --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")  # one thread, like every other decoder here; read when pyvips loads

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from horses_humans.core import backend  # noqa: E402

backend.configure()

from phone_corpus import make_phone_jpegs  # noqa: E402

from horses_humans.config import resolve_data_dir  # noqa: E402
from horses_humans.core.tables import markdown_table  # noqa: E402
from horses_humans.data.images import JPEG_FORMATS, load_pixels  # noqa: E402
from horses_humans.data.layouts import VALIDATION  # noqa: E402
from horses_humans.inference.predictor import Predictor  # noqa: E402
from horses_humans.runs.store import load_run  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def images_under(folder: Path) -> list[Path]:
    """Every image file under folder, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def jpegs_among(files: list[Path]) -> list[Path]:
    """The files Pillow reads as JPEG (or MPO)."""
    return [f for f in files if format_of(f) in JPEG_FORMATS]


def format_of(path: Path) -> str | None:
    with Image.open(path) as im:
        return im.format


def drafted(path: Path, size: int) -> bool:
    """Whether a JPEG is big enough for a DCT scale at size (both sides at least 4x size)."""
    with Image.open(path) as im:
        return min(im.size) >= 4 * size


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def pixel_rows(jpegs: list[Path], size: int) -> list[list[str]]:
    """Mean absolute difference draft vs full decode: over all JPEGs, and over those a draft shrinks."""
    diffs = {f: mean_abs(load_pixels(f, size), load_pixels(f, size, draft=False)) for f in jpegs}
    shrunk = [d for f, d in diffs.items() if drafted(f, size)]
    rows = [["all JPEGs", len(diffs), f"{statistics.mean(diffs.values()):.3f}", f"{max(diffs.values()):.3f}"]]
    if shrunk:
        rows.append([f"drafted (both sides >= {4 * size} px)", len(shrunk), f"{statistics.mean(shrunk):.3f}"])
        rows[-1].append(f"{max(shrunk):.3f}")
    return rows


def labels_row(name: str, predictor: Predictor, files: list[Path]) -> list[str]:
    """Labels of files decoded with and without draft: agreement, and accuracy on the files of the run's classes."""
    labels = {}
    for draft in (True, False):
        pixels = np.stack([load_pixels(f, predictor.image_size, draft=draft) for f in files])
        labels[draft] = np.asarray(predictor.class_names)[predictor.predict_proba(pixels).argmax(axis=1)]
    truth = np.asarray([f.parent.name for f in files])
    known = np.isin(truth, predictor.class_names)
    accuracy = [f"{np.mean(labels[d][known] == truth[known]):.4f}" if known.any() else "-" for d in (False, True)]
    agree = int(np.sum(labels[True] == labels[False]))
    return [name, len(files), f"{agree}/{len(files)}", *accuracy]


# ---------------------------------------------------------------- decoders, one image to size x size RGB


def pillow_full(data: bytes, size: int) -> np.ndarray:
    return load_pixels(data, size, draft=False)


def pillow_draft(data: bytes, size: int) -> np.ndarray:
    return load_pixels(data, size)


def resized(pixels: np.ndarray, size: int) -> np.ndarray:
    """The same bilinear resize load_pixels ends with."""
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR))


def other_decoders() -> dict:
    """name -> decode(bytes, size) for each of simplejpeg, PyTurboJPEG and pyvips that imports."""
    found = {}
    try:
        import simplejpeg

        found["simplejpeg (DCT scale)"] = lambda data, size: resized(
            simplejpeg.decode_jpeg(data, "RGB", min_height=2 * size, min_width=2 * size), size
        )
    except ImportError:
        pass
    try:
        import turbojpeg

        found["PyTurboJPEG (DCT scale)"] = turbojpeg_decoder(turbojpeg)
    except (ImportError, RuntimeError, OSError):  # RuntimeError/OSError: no (or too old a) libturbojpeg
        pass
    try:
        import pyvips

        pyvips.cache_set_max(0)  # each decode does the work, as it would for a new upload
        found["pyvips thumbnail"] = lambda data, size: pyvips.Image.thumbnail_buffer(
            data, size, height=size, size="force"
        ).numpy()
    except (ImportError, OSError):
        pass
    return found


def turbojpeg_decoder(turbojpeg):
    """PyTurboJPEG's decode at the smallest of its 1/2, 1/4, 1/8 scales keeping both sides 2x size, resized."""
    jpeg = turbojpeg.TurboJPEG()

    def decode(data: bytes, size: int) -> np.ndarray:
        width, height, _, _ = jpeg.decode_header(data)
        factor = next(d for d in (8, 4, 2, 1) if d == 1 or min(width, height) // d >= 2 * size)
        return resized(jpeg.decode(data, pixel_format=turbojpeg.TJPF_RGB, scaling_factor=(1, factor)), size)

    return decode


def decoder_rows(jpegs: list[Path], size: int, rounds: int) -> list[list[str]]:
    """Per decoder: mean over files of the best-of-rounds ms per image, x Pillow+draft, and difference from full."""
    blobs = [f.read_bytes() for f in jpegs]
    decoders = {"Pillow, full decode (before)": pillow_full, "Pillow + draft (load_pixels)": pillow_draft}
    decoders |= other_decoders()
    full = [pillow_full(b, size) for b in blobs]
    ms = {name: statistics.mean(best_ms(decode, b, size, rounds) for b in blobs) for name, decode in decoders.items()}
    draft = ms["Pillow + draft (load_pixels)"]
    return [
        [name, f"{ms[name]:.2f}", f"{draft / ms[name]:.2f}", f"{diff_from(decode, blobs, full, size):.3f}"]
        for name, decode in decoders.items()
    ]


def best_ms(decode, data: bytes, size: int, rounds: int) -> float:
    """The shortest of `rounds` timings of one decode, milliseconds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        decode(data, size)
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def diff_from(decode, blobs: list[bytes], full: list[np.ndarray], size: int) -> float:
    """Mean absolute difference of a decoder's pixels from Pillow's full decode, over the files."""
    return statistics.mean(mean_abs(decode(b, size), f) for b, f in zip(blobs, full))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run, for the labels table")
    parser.add_argument("--photos", type=Path, required=True, help="a folder of photos (class folders for accuracy)")
    parser.add_argument("--data-dir", type=Path, help="data set folder (default: $HORSES_HUMANS_DATA, else the cache)")
    parser.add_argument("--size", type=int, default=224, help="side decoded to for pixels and decoders (default 224)")
    parser.add_argument("--phone", type=int, default=8, help="phone JPEGs (4032x3024) to make for the decoders")
    parser.add_argument("--rounds", type=int, default=5, help="timings per file and decoder (the best is kept)")
    args = parser.parse_args()
    photos = images_under(args.photos)
    jpegs = jpegs_among(photos)
    validation = images_under(resolve_data_dir(args.data_dir) / VALIDATION)
    print(f"{len(photos)} images in {args.photos}, {len(jpegs)} of them JPEGs; {os.cpu_count()} CPUs\n")
    print(f"Draft against full decode at {args.size} px, mean absolute difference (0-255):\n")
    print(markdown_table(["JPEGs", "files", "mean", "worst file"], pixel_rows(jpegs, args.size)))
    predictor = Predictor.from_run(load_run(args.run), runtime="keras")
    print(f"\nLabels of {args.run} at {predictor.image_size} px, full decode against draft:\n")
    rows = [labels_row(str(args.photos), predictor, photos), labels_row("validation", predictor, validation)]
    print(markdown_table(["images", "files", "same label", "accuracy, full", "accuracy, draft"], rows))
    header = ["decoder", "ms per image", "x Pillow+draft", "diff from full"]
    print(f"\nOne thread, to {args.size} px, JPEGs of {args.photos}:\n")
    print(markdown_table(header, decoder_rows(jpegs, args.size, args.rounds)))
    with tempfile.TemporaryDirectory(prefix="bench-jpeg-") as tmp:
        phone = make_phone_jpegs(validation, args.phone, args.phone, Path(tmp) / "phone")
        print(f"\nOne thread, to {args.size} px, {args.phone} phone JPEGs (4032x3024, quality 90):\n")
        print(markdown_table(header, decoder_rows(phone, args.size, args.rounds)))


if __name__ == "__main__":
    main()
