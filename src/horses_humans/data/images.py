"""Decode one image file into the RGB uint8 pixels every model takes (shared by training, predict and serve)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..config import DEFAULT_RESIZE, RESIZE_MODES

# Pillow's decompression-bomb guard stays on (Image.MAX_IMAGE_PIXELS is never raised); its warning
# zone (between 1x and 2x the limit) is treated as an error too, so a bomb is refused, not decoded.
_16BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
JPEG_FORMATS = {"JPEG", "MPO"}  # Pillow's names for the files its JPEG decoder reads (draft_jpeg)
STRIP_PIXELS = 1 << 20  # pixels per strip when converting 16-bit/float grey to 8 bits: 8 MB of float64 at a time
# How an image of any shape becomes size x size (RESIZE_MODES; a run records its own, TrainConfig.resize): squash, the
# whole image with its aspect ratio lost; crop, the centred square (Keras' smart_resize); pad, the whole image with its
# aspect ratio kept, letterboxed on PAD_COLOUR.
PAD_COLOUR = (0, 0, 0)  # black, as tf.image.resize_with_pad and keras.ops.image.resize(pad_to_aspect_ratio=True)
RESIZE_WORDS = {  # each mode in words, for READMEs and model cards (describe_resize)
    "squash": "squashed to {size}x{size} (the whole image; its aspect ratio is not kept)",
    "crop": "center-cropped to the largest square, then resized to {size}x{size}",
    "pad": "resized so the long side is {size} and centred on a black {size}x{size} square (aspect ratio kept)",
}


class ImageError(ValueError):
    """An input that cannot be turned into pixels; the message names the file and the reason."""


class NotAnImage(ImageError):
    """Bytes that no Pillow decoder recognises (text, SVG, ZIP, an empty file, ...)."""


class ImageTooLarge(ImageError):
    """An image over a configured size limit (bytes or pixels), refused before it is decoded."""


def open_image(
    source: str | Path | bytes,
    name: str | None = None,
    max_pixels: int | None = None,
    draft_for: int | None = None,
    resize: str = DEFAULT_RESIZE,
) -> Image.Image:
    """Open and fully decode an image from a path or bytes, with EXIF orientation applied.

    max_pixels (width x height), if given, is checked from the header before any pixel is decoded. draft_for, if
    given, is the square side the caller will resize to (by `resize`): a JPEG is then decoded at a reduced DCT scale
    (draft_jpeg).
    """
    label = name or str(source if not isinstance(source, bytes) else "<upload>")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            fp = io.BytesIO(source) if isinstance(source, bytes) else source
            with Image.open(fp) as im:
                check_pixels(im, label, max_pixels)  # the header's full size: a draft does not dodge the limit
                if draft_for:
                    draft_jpeg(im, draft_for, resize)
                im.load()
                ImageOps.exif_transpose(im, in_place=True)  # in place: a copy would double a giant's memory
                return im
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
        raise ImageTooLarge(
            f"{label}: {width}x{height} is {width * height:,} pixels, over the limit of {max_pixels:,} "
            "(predict --max-pixels, serve HORSES_HUMANS_SERVE_MAX_PIXELS); send a smaller image or raise the limit"
        )


def draft_jpeg(im: Image.Image, size: int, resize: str = DEFAULT_RESIZE) -> None:
    """Have a JPEG (or MPO, a phone's JPEG with extra frames) decode at the smallest DCT scale (1/2, 1/4, 1/8) that
    keeps what becomes the size x size square at least 2x `size` (draft_target): libjpeg then makes up to 64x fewer
    pixels, and the bilinear resize that follows still averages two or more of them into each output pixel, so
    quality holds. Other formats: untouched."""
    if im.format in JPEG_FORMATS:
        # no mode change: "RGB" only names the colour space libjpeg keeps
        im.draft("RGB", draft_target(im.size, size, resize))


def draft_target(image_size: tuple[int, int], size: int, resize: str) -> tuple[int, int]:
    """The smallest (width, height) a draft may decode to (Pillow keeps both sides at least this): squash and crop
    need both sides (each axis of the squash, the short side that is the crop's square) at 2x size; pad needs only
    the long side, the one that spans the square, at 2x size."""
    if resize != "pad":
        return 2 * size, 2 * size
    width, height = image_size
    longest = max(width, height, 1)
    return max(1, -(-2 * size * width // longest)), max(1, -(-2 * size * height // longest))  # ceil: never under 2x


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB: transparency composited on white, 16-bit scaled, CMYK/P/L/LA converted."""
    im = without_opaque_alpha(to_8bit(im))
    # "transparency" in info: a P palette entry, or an L/RGB colour key (PNG tRNS) -- transparent too
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
        return on_white(im)
    return im if im.mode == "RGB" else im.convert("RGB")


def on_white(im: Image.Image) -> Image.Image:
    """An image with transparency -> RGB composited on white, STRIP_PIXELS at a time (whole-image RGBA copies, a
    white background and the composite would be four full-size images at once)."""
    width, height = im.size
    out = Image.new("RGB", im.size)
    step = max(1, STRIP_PIXELS // max(width, 1))
    for top in range(0, height, step):
        strip = im.crop((0, top, width, min(top + step, height)))
        strip.info = im.info  # the colour key (tRNS) of a P/L/RGB image travels with its strips
        rgba = strip.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        out.paste(Image.alpha_composite(background, rgba).convert("RGB"), (0, top))
    return out


def without_opaque_alpha(im: Image.Image) -> Image.Image:
    """An RGBA/LA image whose alpha is 255 everywhere -> RGB/L (the same pixels, without a white composite: the
    data set's PNGs are all RGBA and fully opaque, and the composite was a third of their decode time)."""
    if im.mode in ("RGBA", "LA") and "transparency" not in im.info and im.getextrema()[-1][0] == 255:
        return im.convert(im.mode[:-1] if im.mode == "LA" else "RGB")
    return im


def to_8bit(im: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float grey -> 8-bit L (other modes as they are), converted a strip of rows at a
    time: a float copy of a whole 40M-pixel image would be 320 MB."""
    if im.mode in _16BIT_MODES:
        scale = 257.0 if im.mode != "I" or im.getextrema()[1] > 255 else 1.0
        return grey_strips(im, lambda rows: rows / scale)
    if im.mode == "F":
        factor = 255.0 if im.getextrema()[1] <= 1.0 else 1.0
        return grey_strips(im, lambda rows: rows * factor)
    return im


def grey_strips(im: Image.Image, scale) -> Image.Image:
    """Single-channel im -> L: scale(float64 rows) clipped to 0..255, STRIP_PIXELS at a time."""
    width, height = im.size
    out = np.empty((height, width), np.uint8)
    step = max(1, STRIP_PIXELS // max(width, 1))
    for top in range(0, height, step):
        rows = np.asarray(im.crop((0, top, width, min(top + step, height))), dtype=np.float64)
        out[top : top + len(rows)] = np.clip(scale(rows), 0, 255).astype(np.uint8)
    return Image.fromarray(out, "L")


def load_pixels(
    source: str | Path | bytes,
    size: int,
    name: str | None = None,
    max_pixels: int | None = None,
    draft: bool = True,
    resize: str = DEFAULT_RESIZE,
) -> np.ndarray:
    """Decode, convert to RGB and bring to size x size (fit_square: squash, crop or pad, bilinear) -> uint8 array
    (size, size, 3): the one decode of every path (pixel cache, predict, serve, evaluate, explain, the Ray engine).

    A JPEG is decoded at the smallest DCT scale still at least 2x size (draft_jpeg; draft=False decodes it whole, for
    comparisons). Grey and RGB images are resized before the RGB conversion (the same pixels: bilinear works per
    channel), so a decode holds the decoded image plus at most an 8-bit copy of it, never a full-size RGB conversion.
    """
    check_resize(resize)
    label = name or str(source if not isinstance(source, bytes) else "<upload>")
    im = open_image(source, label, max_pixels, draft_for=size if draft else None, resize=resize)
    try:
        im = without_opaque_alpha(to_8bit(im))
        if im.mode in ("L", "RGB") and "transparency" not in im.info:
            im = fit_square(im, size, resize)
        return np.asarray(fit_square(to_rgb(im), size, resize), dtype=np.uint8)  # already square: as it is
    except (OSError, ValueError) as exc:
        raise ImageError(f"{label}: cannot convert {im.mode} image to RGB ({exc})") from None


def describe_resize(resize: str, size: int) -> str:
    """How `resize` brings an image to size x size, in words (README of an export, model card)."""
    return RESIZE_WORDS[resize].format(size=size)


def check_resize(resize: str) -> str:
    """The resize mode, or an error naming the choices."""
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize {resize!r}: choose one of {', '.join(RESIZE_MODES)}")
    return resize


def fit_square(im: Image.Image, size: int, resize: str = DEFAULT_RESIZE) -> Image.Image:
    """An L or RGB image -> size x size by `resize`, with Pillow's bilinear filter (an image already size x size is
    returned as it is): squash resizes the whole image; crop cuts the centred square (the odd pixel goes right and
    down, as Keras' smart_resize) and resizes it; pad resizes the whole image so its long side is size and centres it
    on PAD_COLOUR. pixels.js and the export READMEs' clients repeat these steps exactly."""
    if im.size == (size, size):
        return im
    width, height = im.size
    if resize == "crop" and width != height:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        im = im.crop((left, top, left + side, top + side))
    if resize == "pad" and width != height:
        return letterbox(im, size)
    return im.resize((size, size), Image.Resampling.BILINEAR)


def letterbox(im: Image.Image, size: int) -> Image.Image:
    """im resized (bilinear) so its long side is size, centred on a size x size PAD_COLOUR square: resizing before
    padding keeps the memory of a panorama's pad at size x size, not its long side squared."""
    width, height = im.size
    longest = max(width, height)
    # integer rounding (half up) of side * size / longest, written the same way in pixels.js and the clients
    fitted = (max(1, (width * size + longest // 2) // longest), max(1, (height * size + longest // 2) // longest))
    canvas = Image.new(im.mode, (size, size), PAD_COLOUR if im.mode == "RGB" else PAD_COLOUR[0])
    canvas.paste(im.resize(fitted, Image.Resampling.BILINEAR), ((size - fitted[0]) // 2, (size - fitted[1]) // 2))
    return canvas


def array_pixels(array, size: int, name: str = "<array>", resize: str = DEFAULT_RESIZE) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array brought to size x size (fit_square), as load_pixels does a decoded file."""
    array = np.asarray(array)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8 or 0 in array.shape:
        raise ImageError(
            f"{name}: an array of shape {array.shape} and dtype {array.dtype}; give (height, width, 3) uint8 RGB pixels"
        )
    if array.shape[:2] == (size, size):
        return np.ascontiguousarray(array)
    return np.asarray(fit_square(Image.fromarray(array, "RGB"), size, check_resize(resize)), dtype=np.uint8)
