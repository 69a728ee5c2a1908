"""Synthetic images for tests and benchmarks, as bytes: hostile uploads and awkward-but-valid images, made in
memory (no data set needed). The CLI and server tests and bench/bench_serve.py send the same files.

hostile_files() must be refused with a reason (a 4xx naming the file); awkward_files() are odd but valid and
must be predicted.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that announces width x height (1-bit grey) but carries almost no data: a bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def encode(im: Image.Image, fmt: str, **kwargs) -> bytes:
    """An image's bytes in a format."""
    buffer = io.BytesIO()
    im.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def photo(size=(60, 40), seed: int = 0) -> Image.Image:
    """A noisy RGB picture."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def zip_bytes() -> bytes:
    """A ZIP archive holding a PNG (an image inside is still not an image)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("inside.png", encode(photo(), "PNG"))
    return buffer.getvalue()


def exif_rotated() -> bytes:
    """A 60x40 JPEG whose EXIF says 'rotate 90 degrees' (orientation 6)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(photo(), "JPEG", exif=exif, quality=95)


def animated_gif() -> bytes:
    """Three frames."""
    frames = [photo(seed=i).convert("P") for i in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def hostile_files() -> dict[str, tuple[bytes, int]]:
    """name -> (bytes, the HTTP status the server must answer): every one a 4xx."""
    jpeg = encode(photo(), "JPEG")
    return {
        "corrupt.png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, 415),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], 422),
        "empty.png": (b"", 400),
        "notes.txt": (b"just some text, not a picture\n", 415),
        "drawing.svg": (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
            415,
        ),
        "archive.zip": (zip_bytes(), 415),
        "bomb.png": (png_header_only(100_000, 100_000), 413),  # Pillow's decompression-bomb guard
        "huge.png": (png_header_only(8_000, 6_000), 413),  # under Pillow's guard, over the pixel limit (40M)
    }


def awkward_files() -> dict[str, bytes]:
    """name -> bytes of valid images in unusual modes and containers: every one must be predicted."""
    rgb = photo()
    return {
        "cmyk.jpg": encode(rgb.convert("CMYK"), "JPEG"),
        "sixteen.png": encode(Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257), "PNG"),  # I;16
        "animated.gif": animated_gif(),
        "rotated.jpg": exif_rotated(),
        "alpha.png": encode(rgb.convert("RGBA"), "PNG"),
        "palette.png": encode(rgb.convert("P"), "PNG"),
        "wrong-extension.txt": encode(rgb, "PNG"),  # content decides, not the name
    }
