"""Which --resize should `recommended` default to? Trains `train --recipe recommended --resize MODE` on the official
renders (seed 0 unless SEEDS says more) for each mode and scores the real dev photos (REAL_PHOTOS, default
../shared/real-photos-dev: horses/, humans/, neither/) through each run's own decode and unsure rule, as
scripts/real_photos.py does; prints one markdown row per mode and seed.

    python scripts/resize_real_photos.py                     squash and crop, seed 0: about 6 minutes on 2 CPU cores
    MODES=squash,crop,pad SEEDS=0,1,2 RUNS=DIR python scripts/resize_real_photos.py     about 20 minutes
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from horses_humans.analysis.answers import score_folder
from horses_humans.core.tables import markdown_table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_photos import CLASSES, NEITHER, ROOT, cli, install_shared_weights, share  # noqa: E402

HEADER = ["--resize", "seed", "real horses right", "real humans right", "right with the rule", "neither unsure"]


def trained(runs: Path, mode: str, seed: int) -> Path:
    """The finished recommended run of one mode and seed, trained first when missing."""
    run = runs / f"recommended-{mode}-s{seed}"
    if not (run / "metrics.json").exists():
        print(f"training recommended --resize {mode}, seed {seed}", file=sys.stderr)
        options = ["--recipe", "recommended", "--resize", mode, "--seed", str(seed), "--name", run.name]
        cli("train", *options, "--runs-dir", str(runs))
    return run


def row(mode: str, seed: int, found: dict) -> list[str]:
    """One table row: each real class's plain recall, both through the rule, and the neither photos answered unsure."""
    counts, plain = found["counts"], found["plain"]
    images = {c: counts[c]["images"] for c in CLASSES}
    right = sum(counts[c]["right"] for c in CLASSES)
    return [
        mode,
        str(seed),
        *(share(plain[c], images[c]) for c in CLASSES),
        share(right, sum(images.values())),
        share(counts[NEITHER]["unsure"], counts[NEITHER]["images"]),
    ]


def main() -> None:
    photos = Path(os.environ.get("REAL_PHOTOS") or ROOT.parent / "shared" / "real-photos-dev")
    runs = Path(os.environ.get("RUNS") or ROOT / "runs" / "resize-real-photos")
    modes = (os.environ.get("MODES") or "squash,crop").split(",")
    seeds = [int(s) for s in (os.environ.get("SEEDS") or "0").split(",")]
    install_shared_weights()
    rows = [
        row(mode, seed, score_folder(trained(runs, mode, seed), photos, log=lambda line: None))
        for seed in seeds
        for mode in modes
    ]
    print(markdown_table(HEADER, rows))


if __name__ == "__main__":
    main()
