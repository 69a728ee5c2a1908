"""Decode one image file into the RGB uint8 pixels every model takes (shared by training, predict and serve)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's decompression-bomb guard stays on (Image.MAX_IMAGE_PIXELS is never raised); its warning
# zone (between 1x and 2x the limit) is treated as an error too, so a bomb is refused, not decoded.
_16BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


class ImageError(ValueError):
    """An input that cannot be turned into pixels; the message names the file and the reason."""


class NotAnImage(ImageError):
    """Bytes that no Pillow decoder recognises (text, SVG, ZIP, an empty file, ...)."""


class ImageTooLarge(ImageError):
    """An image over a configured size limit (bytes or pixels), refused before it is decoded."""


def open_image(source: str | Path | bytes, name: str | None = None, max_pixels: int | None = None) -> Image.Image:
    """Open and fully decode an image from a path or bytes, with EXIF orientation applied.

    max_pixels (width x height), if given, is checked from the header before any pixel is decoded.
    """
    label = name or str(source if not isinstance(source, bytes) else "<upload>")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            fp = io.BytesIO(source) if isinstance(source, bytes) else source
            with Image.open(fp) as im:
                check_pixels(im, label, max_pixels)
                im.load()
                return ImageOps.exif_transpose(im) or im
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{label}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise NotAnImage(f"{label}: not an image Pillow can read (corrupt, or another kind of file)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"{label}: refused as a possible decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{label}: cannot decode image ({exc})") from None
    except Exception as exc:  # hostile files make Pillow's plugins raise assorted types (struct.error, KeyError, ...)
        raise ImageError(f"{label}: cannot decode image ({type(exc).__name__}: {exc})") from None


def check_pixels(im: Image.Image, label: str, max_pixels: int | None) -> None:
    """Refuse an image whose header announces more than max_pixels pixels."""
    width, height = im.size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLarge(f"{label}: {width}x{height} is {width * height:,} pixels, over the limit of {max_pixels:,}; "
                            "send a smaller image")


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB: transparency composited on white, 16-bit scaled, CMYK/P/L/LA converted."""
    if im.mode in _16BIT_MODES:
        arr = np.asarray(im, dtype=np.float64)
        scale = 257.0 if arr.max(initial=0) > 255 or im.mode != "I" else 1.0
        return Image.fromarray(np.clip(arr / scale, 0, 255).astype(np.uint8), "L").convert("RGB")
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        arr = arr * 255.0 if arr.max(initial=0) <= 1.0 else arr
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L").convert("RGB")
    # "transparency" in info: a P palette entry, or an L/RGB colour key (PNG tRNS) -- transparent too
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def load_pixels(source: str | Path | bytes, size: int, name: str | None = None, max_pixels: int | None = None) -> np.ndarray:
    """Decode, convert to RGB and resize (bilinear) to size x size -> uint8 array (size, size, 3)."""
    label = name or str(source if not isinstance(source, bytes) else "<upload>")
    im = open_image(source, label, max_pixels)
    try:
        rgb = to_rgb(im)
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise ImageError(f"{label}: cannot convert {im.mode} image to RGB ({exc})") from None
