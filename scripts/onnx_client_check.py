"""Does an independent ONNX client answer as `predict` does? Issue 21's Done-when, on a folder of real photos.

Exports RUN as one self-describing .onnx (`horses-humans export RUN --format onnx`), labels every photo with
scripts/onnx_client.py (onnxruntime, numpy and Pillow only, reading only that file), labels the same photos with
`horses-humans predict RUN --csv --runtime keras`, and prints how often the two labels agree (unsure included) and
the largest probability difference. Exit status 1 below --target (default 99%). Photos are read where they lie.

    python scripts/onnx_client_check.py RUN [--photos ../shared/real-photos-dev] [--runs-dir DIR] [--skip-export]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_client import OnnxClient  # noqa: E402  (beside this script; imports nothing of horses_humans)

from horses_humans.runs.names import find_run  # noqa: E402  (this driver may; the client above does not)

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "real-photos-dev"


def cli(*args: str) -> str:
    """Run `horses-humans ARGS` with this interpreter; its stdout, or exit with its error line."""
    done = subprocess.run([sys.executable, "-m", "horses_humans.cli.main", *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"horses-humans {args[0]} failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def predict_rows(run: Path, photos: Path) -> list[dict]:
    """predict's CSV rows (file, label, p_CLASS ...) for every image under photos, read by the Keras model."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "predict.csv"
        cli("predict", str(run), str(photos), "--runtime", "keras", "--output", str(out))
        with out.open(newline="") as handle:
            return [row for row in csv.DictReader(handle) if not row["error"]]


def compare(client: OnnxClient, rows: list[dict]) -> dict:
    """Agreement of the client's labels with predict's, and the largest difference of any class probability."""
    answers = client.classify([Path(row["file"]) for row in rows])
    same = [label == row["label"] for (label, _), row in zip(answers, rows)]
    expected = np.array([[float(row[f"p_{name}"]) for name in client.class_names] for row in rows])
    got = np.array([probabilities for _, probabilities in answers])
    disagree = [(row["file"], row["label"], label) for (label, _), row in zip(answers, rows) if label != row["label"]]
    return {
        "photos": len(rows),
        "agreement": 100 * float(np.mean(same)),
        "max_abs_diff": float(np.abs(got - expected).max()),  # predict's CSV rounds to 4 decimals
        "unsure": sum(label == "unsure" for label, _ in answers),
        "disagreements": disagree,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run folder, its name in the runs folder, or latest (a `recommended` run)")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="a folder of photos (read, never copied)")
    parser.add_argument("--runs-dir", help="the runs folder RUN names are looked up in")
    parser.add_argument("--skip-export", action="store_true", help="use RUN/export/onnx as it is")
    parser.add_argument("--target", type=float, default=99.0, help="agreement %% below which the exit status is 1")
    args = parser.parse_args(argv)
    run = find_run(args.run, args.runs_dir)  # the folder RUN names, as the CLI finds it
    if not args.skip_export:
        cli("export", str(run), "--format", "onnx")
    model = run / "export" / "onnx" / "model.onnx"
    result = compare(OnnxClient(model), predict_rows(run, args.photos))
    for file, expected, got in result["disagreements"]:
        print(f"differs: {file}: predict {expected}, client {got}")
    print(
        f"{model}: the independent client agrees with predict on {result['agreement']:.1f}% of {result['photos']} "
        f"photos ({result['unsure']} unsure); max |dp| {result['max_abs_diff']:.1e} (predict's CSV has 4 decimals; "
        "it decodes a JPEG at a reduced DCT scale (draft), this client whole)"
    )
    return 0 if result["agreement"] >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
