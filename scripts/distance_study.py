"""Issue 23 item 4 with the real CLI: can a model trained on real photos of its classes alone (no renders, no neither
folder) say "unsure" to a stranger through `train --distance-unsure`, and what does the check cost on photos of its
own classes? Every estimate is grouped by source (SOURCES.tsv's `source_repo`):

- neither caught: for each source of neither photos, `train --recipe recommended --distance-unsure` on the dev horse
  and human photos of every other source, then answer that source's neither photos (unsure by any reason, and by
  the distance check alone);
- cost: the 80 horse and human photos in 5 stratified folds (39 of the 40 horses share one source, so leaving a
  source out would leave a model one horse photo), each answered by a run trained on the other 4 folds; the cost is
  the photos the distance check answers unsure that the same model without the check answers right, in points of
  the 80.

Fold folders are links; nothing is copied. Prints a markdown table (docs/real-photos.md quotes it).

    python scripts/distance_study.py                      about 25 minutes on 2 busy cores (24 runs, 3 seeds)
    SEEDS=0 REAL_PHOTOS=DIR RUNS=DIR python scripts/distance_study.py
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import random
import sys
from pathlib import Path

import keras
import numpy as np

from horses_humans.cli.main import main as main_cli
from horses_humans.inference.predictor import Predictor
from horses_humans.inference.unsure import UNLIKE_TRAINING, UNSURE
from horses_humans.runs.store import load_run

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT.parent / "shared" / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
CLASSES, NEITHER, FOLDS = ("horses", "humans"), "neither", 5


def cli(*args: str) -> None:
    """Run `horses-humans ARGS` in this process (one TensorFlow start for every run), quietly."""
    with contextlib.redirect_stdout(io.StringIO()):
        code = main_cli(list(args))
    if code:
        raise SystemExit(f"horses-humans {' '.join(args)} failed (exit {code})")


def sources(photos: Path) -> dict[str, str]:
    """{class/file: source_repo} from photos/SOURCES.tsv."""
    with open(photos / "SOURCES.tsv", newline="") as f:
        return {row["file"]: row["source_repo"] for row in csv.DictReader(f, delimiter="\t")}


def linked(photos: Path, files: list[str], into: Path) -> Path:
    """A folder of class folders holding links to `files` (class/file)."""
    for file in files:
        target = into / file
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to((photos / file).resolve())
    return into


def trained(folder: Path, runs: Path, name: str, seed: int) -> Path:
    """The finished `recommended --distance-unsure` run on folder, trained first when missing."""
    run = runs / name
    if not (run / "metrics.json").exists():
        print(f"training {name}", file=sys.stderr)
        options = ["--recipe", "recommended", "--weights", str(WEIGHTS), "--distance-unsure", "--seed", str(seed)]
        cli("train", *options, "--data-dir", str(folder), "--runs-dir", str(runs), "--name", name)
    return run


def answers(run_dir: Path, files: list[Path]) -> tuple[list, list[str]]:
    """The run's answers (with its distance check) and, for the same files, the labels its model gives without it."""
    run = load_run(run_dir)
    gated = Predictor.from_run(run, runtime="keras")

    model = keras.saving.load_model(run.checkpoint_path(), compile=False)  # the checkpoint as saved: no check
    plain = Predictor(model, run.class_names, run.image_size, output=run.output)
    plain.tta, plain.resize = run.config.tta, run.resize
    return gated.predict_files(files), [a.label for a in plain.predict_files(files)]


def neither_caught(photos: Path, source_of: dict, work: Path, seed: int) -> tuple[int, int, int]:
    """(neither photos, unsure by any reason, unsure by the distance check) with each neither source left out."""
    total = unsure = far = 0
    for source in sorted({s for f, s in source_of.items() if f.startswith(NEITHER + "/")}):
        train = [f for f, s in source_of.items() if s != source and not f.startswith(NEITHER + "/")]
        folder = linked(photos, train, work / f"without-{source.replace('/', '_')}")
        run = trained(folder, work / "runs", f"s{seed}-without-{source.replace('/', '_')}", seed)
        held = [photos / f for f, s in source_of.items() if s == source and f.startswith(NEITHER + "/")]
        found, _ = answers(run, held)
        total += len(found)
        unsure += sum(a.label == UNSURE for a in found)
        far += sum(a.unsure_reason == UNLIKE_TRAINING for a in found)
    return total, unsure, far


def cost(photos: Path, work: Path, seed: int) -> tuple[int, int, int, int]:
    """(real photos, right without the check, right with it and the rule, right without it but flagged by it)."""
    fold_of = {}
    for name in CLASSES:
        files = sorted(f"{name}/{p.name}" for p in (photos / name).iterdir())
        random.Random(seed).shuffle(files)
        fold_of.update({f: i % FOLDS for i, f in enumerate(files)})
    total = plain_right = right = flagged = 0
    for k in range(FOLDS):
        folder = linked(photos, [f for f, fold in fold_of.items() if fold != k], work / f"s{seed}-fold{k}")
        run = trained(folder, work / "runs", f"s{seed}-fold{k}", seed)
        held = [f for f, fold in fold_of.items() if fold == k]
        found, plain = answers(run, [photos / f for f in held])
        truth = [f.split("/")[0] for f in held]
        total += len(held)
        plain_right += sum(p == t for p, t in zip(plain, truth))
        right += sum(a.label == t for a, t in zip(found, truth))
        flagged += sum(a.unsure_reason == UNLIKE_TRAINING and p == t for a, p, t in zip(found, plain, truth))
    return total, plain_right, right, flagged


def main() -> None:
    photos = Path(os.environ.get("REAL_PHOTOS", ROOT.parent / "shared" / "real-photos-dev"))
    work = Path(os.environ.get("RUNS", ROOT / "runs" / "distance-study"))
    seeds = [int(s) for s in os.environ.get("SEEDS", "0,1,2").split(",")]
    source_of = sources(photos)
    rows = []
    for seed in seeds:
        n, unsure, far = neither_caught(photos, source_of, work, seed)
        total, plain_right, right, flagged = cost(photos, work, seed)
        rows.append((seed, n, unsure, far, total, plain_right, right, flagged))
    print("| seed | neither unsure (by the check) | real photos right: without the check -> with it | cost (points) |")
    print("|---|---|---|---|")
    for seed, n, unsure, far, total, plain_right, right, flagged in rows:
        print(
            f"| {seed} | {unsure}/{n} ({unsure / n:.0%}; {far} by the check) | {plain_right}/{total} -> {right}/{total}"
            f" | {100 * flagged / total:.2f} |"
        )
    caught = np.mean([r[2] / r[1] for r in rows])
    points = np.mean([100 * r[7] / r[4] for r in rows])
    print(f"\nmean over seeds {seeds}: {caught:.1%} of neither unsure, cost {points:.2f} points (target >= 70%, <= 2)")


if __name__ == "__main__":
    main()
