"""How well calibration fits (issue 23 item 1): validation ECE of the served probabilities for the baseline CNN,
`recommended` and a three-class own-data run, and `recommended`'s ECE on real photos, each under the calibration
training now chooses (calibration.py) and under the former one (one temperature T >= 1, no prior).

    DATA=../shared/data python scripts/calibration_study.py [RUNS_DIR]     (about 5 minutes on 2 cores)
    METHOD=best DATA=../shared/data python scripts/calibration_study.py [RUNS_DIR]   every method, labels may move

The three-class data set is the official horses and humans (train and validation images, linked, not copied) plus
a third class, `icons`: the 96 px Adwaita icons of /usr/share/icons (Debian's adwaita-icon-theme), a class of real,
unrelated images any Debian machine has; it is split 75/25 by --val-split. Real photos are ../shared/real-photos-dev
(horses/ and humans/; read in place, never copied), scored as scripts/real_photos.py scores them.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np

from horses_humans.analysis.answers import load_measuring_folder, score_folder
from horses_humans.cli.main import main as main_cli
from horses_humans.core.tables import markdown_table
from horses_humans.inference.calibration import (
    ECE_BINS,
    expected_calibration_error,
    fit_method,
    negative_log_likelihood,
    served,
)
from horses_humans.inference.predictor import Predictor
from horses_humans.runs.record import load_run_split
from horses_humans.runs.store import load_run, read_calibration, update_calibration

ROOT = Path(__file__).resolve().parent.parent
W035 = ROOT.parent / "shared" / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
PHOTOS = ROOT.parent / "shared" / "real-photos-dev"
ICONS = Path("/usr/share/icons/Adwaita/96x96")
ICON_FOLDERS = ("legacy", "status", "actions")
SEED = 0
METHOD = os.environ.get("METHOD", "auto")  # calibrate --method: auto (keeps labels, the default) or best, or a name


def own_data(folder: Path) -> Path:
    """horses/, humans/ (links to the official images) and icons/ (links to the Adwaita icons) under folder."""
    official = Path(os.environ.get("HORSES_HUMANS_DATA", ROOT.parent / "shared" / "data"))
    for cls in ("horses", "humans"):
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for side in ("horse-or-human", "validation-horse-or-human"):
            for image in sorted((official / side / cls).iterdir()):
                link = folder / cls / f"{side}-{image.name}"
                link.is_symlink() or link.symlink_to(image.resolve())
    (folder / "icons").mkdir(exist_ok=True)
    icons = sorted(p.resolve() for name in ICON_FOLDERS for p in (ICONS / name).glob("*.png"))
    if not icons:
        sys.exit(f"{ICONS}: no icons (apt-get install adwaita-icon-theme), the third class of the own-data run")
    for i, image in enumerate(icons):
        link = folder / "icons" / f"icon-{i:04d}.png"
        link.is_symlink() or link.symlink_to(image)
    return folder


def photo_data(folder: Path) -> Path:
    """horses/, humans/ and other/ (the neither photos) under folder: links into ../shared/real-photos-dev, as
    scripts/own_data_example.sh lays them out (it copies them under runs/; links copy nothing)."""
    for cls, source in (("horses", "horses"), ("humans", "humans"), ("other", "neither")):
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for image in sorted((PHOTOS / source).iterdir()):
            link = folder / cls / image.name
            link.is_symlink() or link.symlink_to(image.resolve())
    return folder


def trained(runs: Path, name: str, options: list[str]) -> Path:
    """runs/NAME, trained with options unless it exists, then calibrated by METHOD (`calibrate --method`) and its
    unsure rule refitted on that calibration, as training does."""
    if not (runs / name / "metrics.json").exists():
        argv = ["train", *options, "--seed", str(SEED), "--runs-dir", str(runs), "--name", name]
        assert main_cli(argv) == 0, f"train {' '.join(argv)} failed"
    data = ["--data-dir", options[options.index("--data-dir") + 1]] if "--data-dir" in options else []
    assert main_cli(["calibrate", str(runs / name), "--method", METHOD, *data]) == 0, f"calibrate {name} failed"
    assert main_cli(["unsure", str(runs / name), *data]) == 0, f"unsure {name} failed"
    return runs / name


def raw_views(run_dir: Path, x: np.ndarray) -> np.ndarray:
    """The model's own probabilities of x and, for a run with flips, of its mirror: (V, N, C), as calibrate_run."""
    run = load_run(run_dir)
    predictor = Predictor.uncalibrated(run)  # no flips: the mirror is a view of its own
    return np.stack([predictor.predict_proba(x)] + ([predictor.predict_proba(x[:, :, ::-1])] if run.config.tta else []))


def former_temperature(y: np.ndarray, validation_views: np.ndarray) -> float:
    """The calibration before issue 23: one T in [1, 148], no prior, T = 1 when validation has no mistakes."""
    t = fit_method(y, validation_views, "temperature", prior_sd=None).temperature
    return max(t, 1.0) if t != 1.0 else 1.0  # the optimum on [1, 148] of a one-dimensional convex-in-log-T NLL


def row(name: str, run_dir: Path, photos: Path | None) -> list:
    """One table row: method, parameters, validation ECE (raw, former T, now), real-photo ECE (same three)."""
    run, record = load_run(run_dir), read_calibration(run_dir)
    val = load_run_split(run, "validation", None, None, lambda line: None)
    y, v = np.asarray(val.y), raw_views(run_dir, np.asarray(val.x))
    t_old = former_temperature(y, v)
    output = run.output
    now = lambda views: served(views, output.temperature, output.scale, output.bias)  # noqa: E731  as predict serves
    cells = [name, record["method"], describe_terms(record), f"{record['mistakes']}/{record['images']}"]
    cells += [ece(y, served(v)), ece(y, served(v, t_old)), ece(y, now(v)), f"{t_old:.2f}"]
    if photos is None:
        return cells + ["", "", "", ""]
    split = load_measuring_folder(run, photos, None, lambda line: None)
    keep = np.isin(np.asarray(split.y), [run.class_names.index(c) for c in ("horses", "humans")])
    yp, vp = np.asarray(split.y)[keep], raw_views(run_dir, np.asarray(split.x)[keep])
    right = lambda output, p: float(np.mean(output.predicted(p) == yp))  # noqa: E731
    accuracy = f"{right(run.raw_output, served(vp)):.1%} -> {right(output, now(vp)):.1%} of {len(yp)}"
    return cells + [ece(yp, served(vp)), ece(yp, served(vp, t_old)), ece(yp, now(vp)), accuracy]


def former_copy(run_dir: Path) -> Path:
    """A copy of the run (model, records) under the former calibration, T = 1 for `recommended`, with its unsure rule
    fitted again on those probabilities."""
    former = run_dir.with_name(run_dir.name + "-former")
    if not former.exists():
        shutil.copytree(run_dir, former, ignore=shutil.ignore_patterns("export", "evaluations"))
        run = load_run(run_dir)
        val = load_run_split(run, "validation", None, None, lambda line: None)
        t = former_temperature(np.asarray(val.y), raw_views(run_dir, np.asarray(val.x)))
        update_calibration(former, method="temperature", temperature=t, class_scale=None, class_bias=None)
        assert main_cli(["unsure", str(former)]) == 0
    return former


def unsure_rows(run_dir: Path) -> list[list]:
    """The real dev photos under the run's unsure rule, now and under the former calibration (score_folder, as
    scripts/real_photos.py counts them): right, unsure, and wrong answers above p 0.999, per folder."""
    rows = []
    for name, run in (("now", run_dir), ("former T >= 1", former_copy(run_dir))):
        found = score_folder(run, PHOTOS, log=lambda line: None)
        counts = found["counts"]
        cells = [
            f"{c}: {counts[c]['right']} right, {counts[c]['unsure']} unsure, {counts[c]['sure_wrong']} wrong "
            f"above p 0.999 of {counts[c]['images']}"
            for c in ("horses", "humans", "neither")
        ]
        rows.append([name, f"{found['min_confidence']:.3f}", *cells])
    return rows


def describe_terms(record: dict) -> str:
    """T, and the class scales and biases where the method has them."""
    text = f"T {record['temperature']:.3f}"
    for key in ("class_scale", "class_bias"):
        if record.get(key):
            text += f"; {key.split('_')[1]} " + ", ".join(f"{v:.2f}" for v in record[key])
    return text


def ece(y: np.ndarray, probabilities: np.ndarray) -> str:
    """ECE (15 bins) and NLL, as evaluate reports the first."""
    nll = negative_log_likelihood(y, probabilities)
    return f"{expected_calibration_error(y, probabilities, ECE_BINS):.4f} ({nll:.3f})"


def main() -> None:
    runs = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "runs" / "calibration-study")
    runs.mkdir(parents=True, exist_ok=True)
    photos = PHOTOS if (PHOTOS / "horses").is_dir() else None
    weights = ["--weights", str(W035)]
    table = [
        ("baseline, 5 epochs", trained(runs, "baseline-e5", ["--recipe", "baseline", "--epochs", "5"]), photos),
        ("recommended", trained(runs, "recommended", ["--recipe", "recommended", *weights]), photos),
        (
            "3 classes (horses, humans, icons), mobilenet_v2 0.35",
            trained(
                runs,
                "three-classes",
                [
                    "--recipe",
                    "mobilenet_v2",
                    *weights,
                    "--data-dir",
                    str(own_data(runs / "three-classes-data")),
                    "--val-split",
                    "0.25",
                ],
            ),
            None,
        ),
    ]
    if photos is not None:  # the run issue 23 measured at ECE 0.099 (scripts/own_data_example.sh, seed 0)
        data = photo_data(runs / "photos-data")
        options = ["--recipe", "mobilenet_v2", *weights, "--data-dir", str(data), "--val-split", "0.25"]
        table.append(("3 classes of real photos (own_data_example.sh)", trained(runs, "photos", options), None))
    header = [
        "run",
        "method",
        "terms",
        "validation mistakes",
        "validation ECE (NLL): raw",
        "former T >= 1",
        "now",
        "former T",
        "real-photo ECE (NLL): raw",
        "former T >= 1",
        "now",
        "real-photo accuracy: raw -> now",
    ]
    print(markdown_table(header, [row(name, run, where) for name, run, where in table]))
    if photos is not None:
        print()
        header = ["recommended's calibration", "unsure below", "real horses", "real humans", "neither photos"]
        print(markdown_table(header, unsure_rows(runs / "recommended")))


if __name__ == "__main__":
    main()
