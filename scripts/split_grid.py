"""docs/img/train-vs-validation.png: 8 random images per (split, class), one row each, to show the domain gap.

python scripts/split_grid.py [--data-dir DIR] [--seed 0]
"""

import argparse
import random
from pathlib import Path

from PIL import Image, ImageDraw

from horses_humans.config import resolve_data_dir
from horses_humans.data.images import load_pixels
from horses_humans.data.layouts import SPLITS, list_files

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    data_dir, tile, label_w = resolve_data_dir(args.data_dir), 110, 190
    rows = []
    for split in SPLITS:
        names, files, labels = list_files(data_dir / split)
        for index, name in enumerate(names):
            chosen = rng.sample([f for f, label in zip(files, labels) if label == index], 8)
            rows.append((f"{split}\n{name}", [data_dir / split / f for f in chosen]))
    grid = Image.new("RGB", (label_w + 8 * tile, len(rows) * tile), "white")
    draw = ImageDraw.Draw(grid)
    for r, (label, paths) in enumerate(rows):
        draw.multiline_text((8, r * tile + 40), label, fill="black")
        for c, path in enumerate(paths):
            grid.paste(Image.fromarray(load_pixels(path, tile - 4)), (label_w + c * tile + 2, r * tile + 2))
    out = REPO / "docs" / "img" / "train-vs-validation.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out, optimize=True)
    print(out)


if __name__ == "__main__":
    main()
