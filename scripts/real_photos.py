"""How right is a model trained on the CGI renders on real photos? Train the candidates that are missing into
runs/real-photos/ (official data alone), score each on the real horse and human photos of REAL_PHOTOS (default
../shared/real-photos-dev; its neither/ folder is left out: no run has that class) and write docs/real-photos.md.
Every number in README's "What to expect on real photos" comes from here.

    python scripts/real_photos.py                 about 15 minutes on the 2-core CPU the first time; then seconds
    REAL_PHOTOS=DIR RUNS=DIR python scripts/real_photos.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from horses_humans.tables import markdown_table

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT.parent / "shared" / "weights"
W035 = WEIGHTS / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
W100 = WEIGHTS / "mobilenet_v2_1.0_224_no_top.dequantized.weights.h5"
CLASSES = ("horses", "humans")
HEADER = ["candidate", "train options", "seeds", "real horses right", "real humans right", "real photos right",
          "validation renders right", "train time (s)"]


def weights(path: Path) -> str:
    """The exact shared file when it is there, else imagenet (the Keras cache, else the download)."""
    return str(path) if path.exists() else "imagenet"


def candidates() -> list[tuple[str, list[str], list[int]]]:
    """(name, train options, seeds): the reference CNN, MobileNetV2 heads, augmentation, fine-tuning, the alias."""
    m035 = ["--recipe", "mobilenet_v2", "--weights", weights(W035)]
    m100 = ["--recipe", "mobilenet_v2", "--alpha", "1.0", "--weights", weights(W100)]
    return [
        ("baseline CNN (reference)", ["--recipe", "baseline"], [0]),
        ("mobilenet_v2 0.35, head", m035, [0, 1, 2]),
        ("mobilenet_v2 1.0, head", m100, [0, 1, 2]),
        ("mobilenet_v2 0.35, augment flip", m035 + ["--augment", "--augmentation", "flip"], [0]),
        ("mobilenet_v2 0.35, augment mild", m035 + ["--augment", "--augmentation", "mild"], [0]),
        ("mobilenet_v2 0.35, fine-tune top 20 layers", m035 + ["--fine-tune-from", "20", "--fine-tune-epochs", "2"], [0]),
        ("mobilenet_v2 0.35, head, test-time flips", m035 + ["--tta"], [0, 1, 2]),
        ("mobilenet_v2 1.0, head, test-time flips", m100 + ["--tta"], [0, 1, 2]),
        ("recommended", ["--recipe", "recommended"], [0, 1, 2]),
    ]


def install_shared_weights() -> None:
    """`recommended` takes the Keras cache's ImageNet weights: put the shared 0.35 file there (offline machines)."""
    if W035.exists():
        cli("weights", "install", "--backbone", "mobilenet_v2", "--alpha", "0.35", str(W035))


def cli(*args: str) -> str:
    """Run `horses-humans ARGS` with this interpreter; its stdout."""
    done = subprocess.run([sys.executable, "-m", "horses_humans", *args], check=True, stdout=subprocess.PIPE, text=True)
    return done.stdout


def slug(name: str) -> str:
    """'mobilenet_v2 0.35, head' -> 'mobilenet_v2-0.35-head' (a folder name)."""
    return "-".join(name.replace(",", " ").replace("(", " ").replace(")", " ").split())


def trained_run(runs: Path, name: str, options: list[str], seed: int) -> Path:
    """The finished run of one candidate and seed, trained first when missing."""
    folder = runs / f"{slug(name)}-s{seed}"
    finished = sorted(p.parent for p in folder.glob("*/metrics.json"))
    if not finished:
        print(f"training {name}, seed {seed}", file=sys.stderr)
        cli("train", *options, "--seed", str(seed), "--runs-dir", str(folder))
        finished = sorted(p.parent for p in folder.glob("*/metrics.json"))
    return finished[-1]


def real_folder(photos: Path, into: Path) -> Path:
    """A folder of the horse and human class folders of `photos` alone (links: nothing is copied)."""
    for name in CLASSES:
        if not (photos / name).is_dir():
            raise SystemExit(f"{photos / name} is missing: set REAL_PHOTOS to a folder with horses/ and humans/.")
        (into / name).symlink_to((photos / name).resolve())
    return into


def score(run: Path, folder: Path) -> dict:
    """Real-photo recall per class and overall, validation accuracy and training time of one run."""
    real = json.loads(cli("evaluate", str(run), "--data", str(folder), "--json"))
    metrics = json.loads((run / "metrics.json").read_text())
    return {**{c: real["per_class"][c]["recall"] for c in CLASSES}, "overall": real["accuracy"],
            "validation": metrics["val_accuracy"], "seconds": metrics["train_seconds"]}


def percent(values: list[float]) -> str:
    """'97.5' for one seed, 'mean (min-max)' over several."""
    cells = [100 * v for v in values]
    mean = f"{statistics.mean(cells):.1f}"
    return mean if len(cells) == 1 else f"{mean} ({min(cells):.1f}-{max(cells):.1f})"


def row(name: str, options: list[str], seeds: list[int], scores: list[dict]) -> list:
    """One table row: each measure over the candidate's seeds."""
    shown = " ".join(o if not o.endswith(".h5") else Path(o).name for o in options)
    return [name, f"`{shown}`", ",".join(map(str, seeds)), *(percent([s[k] for s in scores]) for k in
            (*CLASSES, "overall", "validation")), f"{statistics.mean(s['seconds'] for s in scores):.0f}"]


def page(table: str, photos: Path) -> str:
    """docs/real-photos.md: what was measured, how, and the table."""
    counts = ", ".join(f"{len(list((photos / c).iterdir()))} {c}" for c in CLASSES)
    return (f"# Real photos: models trained on the CGI renders\n\nGenerated by `python scripts/real_photos.py` "
            f"(do not edit by hand). Every model trained on the official renders alone; scored with `horses-humans "
            f"evaluate RUN --data DIR` on the real photos of `{photos.name}` ({counts}). \"right\" is recall: the "
            "share of that class's photos answered with it. Several seeds: mean (min-max). Validation renders: the "
            "final epoch's accuracy on the 256 official validation images, from training (without test-time flips). "
            "Train time: seconds on the machine that "
            f"ran the script (2 shared CPU cores here).\n\n{table}\n")


def main() -> None:
    photos = Path(os.environ.get("REAL_PHOTOS", ROOT.parent / "shared" / "real-photos-dev"))
    runs = Path(os.environ.get("RUNS", ROOT / "runs" / "real-photos"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = real_folder(photos, Path(tmp))
        install_shared_weights()
        for name, options, seeds in candidates():
            scores = [score(trained_run(runs, name, options, seed), folder) for seed in seeds]
            rows.append(row(name, options, seeds, scores))
    table = markdown_table(HEADER, rows)
    (ROOT / "docs" / "real-photos.md").write_text(page(table, photos))
    print(table)


if __name__ == "__main__":
    main()
