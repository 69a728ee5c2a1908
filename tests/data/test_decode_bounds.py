"""Decoding holds a bounded amount of memory: strip-wise 16-bit/float and transparency conversions give the same
pixels as whole-image ones, opaque alpha is dropped without a composite, and a 16-bit giant decodes in ~4 bytes a
pixel (it took 26 with a float64 copy of the whole image)."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from horses_humans.data import images
from horses_humans.data.images import load_pixels


def png(im: Image.Image) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, "PNG")
    return buffer.getvalue()


def whole_image_reference(im: Image.Image, size: int) -> np.ndarray:
    """What load_pixels computed before strips: float64 of the whole image, or one composite on white."""
    if im.mode == "I;16":
        grey = Image.fromarray(np.clip(np.asarray(im, np.float64) / 257.0, 0, 255).astype(np.uint8), "L")
        rgb = grey.convert("RGB")
    else:
        rgb = Image.alpha_composite(Image.new("RGBA", im.size, (255,) * 4), im.convert("RGBA")).convert("RGB")
    return np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR))


@pytest.mark.parametrize("mode", ["I;16", "RGBA", "RGBA-opaque"])
def test_strips_give_the_whole_image_answer(monkeypatch, mode):
    monkeypatch.setattr(images, "STRIP_PIXELS", 97 * 5)  # many strips, the last one short
    rng = np.random.default_rng(0)
    if mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65536, (61, 97), dtype=np.uint16))
    else:
        pixels = rng.integers(0, 256, (61, 97, 4), dtype=np.uint8)
        pixels[..., 3] = 255 if mode == "RGBA-opaque" else pixels[..., 3]
        im = Image.fromarray(pixels, "RGBA")
    assert np.array_equal(load_pixels(png(im), 32), whole_image_reference(im, 32))


def test_palette_colour_key_survives_strips(monkeypatch):
    monkeypatch.setattr(images, "STRIP_PIXELS", 8)
    im = Image.new("P", (8, 6), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste(1, (0, 3, 8, 6))
    im.info["transparency"] = 0  # red is transparent: the top half becomes white, the blue half stays
    pixels = load_pixels(png(im), 8)
    assert (pixels[0] == 255).all() and (pixels[-1] == (0, 0, 255)).all()


CHILD = """
import json, re, sys
from pathlib import Path
from horses_humans.data.images import load_pixels
data = Path(sys.argv[1]).read_bytes()
base = int(re.search(r"VmHWM:\\s*(\\d+)", Path("/proc/self/status").read_text()).group(1))
load_pixels(data, 150, "giant.png")
peak = int(re.search(r"VmHWM:\\s*(\\d+)", Path("/proc/self/status").read_text()).group(1))
print(json.dumps({"added_mb": (peak - base) / 1024}))
"""


def test_a_16bit_giant_decodes_in_about_4_bytes_a_pixel(tmp_path):
    side = 6300
    path = tmp_path / "giant.png"
    path.write_bytes(
        png(Image.fromarray((np.add.outer(np.arange(side), np.arange(side)) * 65535 // (2 * side)).astype(np.uint16)))
    )
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=120, check=True
    )
    added = json.loads(out.stdout)["added_mb"]
    assert added < 6 * side**2 / 2**20, f"decoding a {side}x{side} 16-bit PNG added {added:.0f} MB"
