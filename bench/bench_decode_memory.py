"""Peak memory of decoding one giant image: the server's per-decode bound (settings.max_decodes x this).

Each case runs in a fresh subprocess and reads its own peak RSS (VmHWM in /proc/self/status: ru_maxrss would
include the parent's peak, which Linux keeps across fork and exec); the reference is the same process decoding a
300x300 photo, so the difference is what the giant added. Linux only.

    python bench/bench_decode_memory.py [--side 6300] [--size 150]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile

CHILD = """
import json, re, sys
from pathlib import Path
from horses_humans.data.images import load_pixels
data, size = Path(sys.argv[1]).read_bytes(), int(sys.argv[2])
pixels = load_pixels(data, size, "giant.png", max_pixels=10**9)
peak_kb = int(re.search(r"VmHWM:\\s*(\\d+)", Path("/proc/self/status").read_text()).group(1))
print(json.dumps({"png_bytes": len(data), "peak_mb": peak_kb / 1024}))
"""


def giant_png(mode: str, side: int) -> bytes:
    """A side x side PNG of this Pillow mode: a smooth gradient (16-bit) or a flat colour, a few KB to 1 MB as a
    file."""
    import numpy as np
    from PIL import Image

    if mode == "I;16":
        im = Image.fromarray((np.add.outer(np.arange(side), np.arange(side)) * 65535 // (2 * side)).astype(np.uint16))
    else:
        im = Image.new(mode, (side, side), {"RGB": (120, 80, 40), "RGBA": (120, 80, 40, 128)}.get(mode, 120))
    buffer = io.BytesIO()
    im.save(buffer, "PNG")
    return buffer.getvalue()


def measure(mode: str, side: int, size: int) -> dict:
    """Decode one side x side PNG of this Pillow mode in a fresh process -> its peak RSS (MB)."""
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        f.write(giant_png(mode, side))
        f.flush()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, f.name, str(size)], capture_output=True, text=True, check=True
        )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=6300, help="image width and height in pixels (default 6300)")
    parser.add_argument("--size", type=int, default=150, help="model input size the image is resized to (default 150)")
    args = parser.parse_args()
    reference = measure("RGB", 300, args.size)
    print(f"reference: 300x300 RGB PNG, peak RSS {reference['peak_mb']:.0f} MB")
    for mode in ("I;16", "RGB", "L", "RGBA"):
        r = measure(mode, args.side, args.size)
        added = r["peak_mb"] - reference["peak_mb"]
        print(
            f"{args.side}x{args.side} {mode:<4} PNG ({r['png_bytes'] / 1024:.0f} KB): peak RSS {r['peak_mb']:.0f} MB, "
            f"{added:.0f} MB over the reference = {added * 2**20 / args.side**2:.1f} bytes per pixel"
        )


if __name__ == "__main__":
    main()
