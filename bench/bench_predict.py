"""Batch prediction at scale (issue 14): throughput against the decode limit and against today's code path, the cold
one-image answer of an exported run against Keras, and how peak memory grows with the number of files.

The files are the validation images (300x300 PNGs) repeated as symbolic links in a temporary folder to --files names.
  decode limit   the same files decoded and resized on every CPU (threads), no model: what prediction can reach
  today's path   the code path before streaming: batches of 32 decoded one file after another, then the model, with
                 every row kept until the end (Predictor.predict_chunk over chunks, Keras)
  streaming      Predictor.predict_batches over the lazy walk: decoding threads ahead of the model, rows written
                 to a CSV as they come (Keras, then the runtime `--runtime auto` picks)
  cold predict   one image, `horses-humans predict RUN IMAGE` in a fresh process, wall seconds (median of --rounds)
  peak memory    maximum RSS of `predict RUN FOLDER --output CSV` on --files files against on --files / 20
Ratios are within this one run, so a busy machine slows every line alike.

    python bench/bench_predict.py RUN --files 20000 --data-dir /work/shared/data
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from horses_humans.core import backend

backend.configure()

from horses_humans.config import resolve_data_dir  # noqa: E402
from horses_humans.core.batching import chunks  # noqa: E402
from horses_humans.core.tables import markdown_table  # noqa: E402
from horses_humans.data.files import walk_inputs  # noqa: E402
from horses_humans.data.images import load_pixels  # noqa: E402
from horses_humans.data.layouts import VALIDATION  # noqa: E402
from horses_humans.inference.predictor import Predictor, default_workers  # noqa: E402
from horses_humans.inference.resultfiles import model_stamp, open_results  # noqa: E402
from horses_humans.runs.store import load_run  # noqa: E402

PEAK_RSS = (
    "import resource, subprocess, sys\nsubprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)  # KiB, of the one child


def repeated_files(images: list[Path], count: int, folder: Path) -> Path:
    """`count` symbolic links in `folder`, cycling through `images`."""
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"{i:06d}.png").symlink_to(images[i % len(images)].resolve())  # a relative --data-dir too
    return folder


def decode_limit(files: list[Path], size: int, workers: int) -> float:
    """Images per second decoded and resized on `workers` threads, no model."""
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(lambda f: load_pixels(f, size), files, chunksize=16):
            pass
    return len(files) / (time.perf_counter() - start)


def todays_path(predictor: Predictor, files: list[Path]) -> float:
    """Images per second of the code path before streaming: serial decoding per batch of 32, every row kept."""
    start = time.perf_counter()
    results = []
    for chunk in chunks(files, 32):
        results += predictor.predict_chunk(chunk)
    return len(results) / (time.perf_counter() - start)


def streaming(predictor: Predictor, folder: Path, output: Path, batch_size: int, workers: int, model) -> float:
    """Images per second of the streaming path: the lazy walk, decoding threads ahead of the model, rows to CSV
    (`model`: the ModelStamp of what answers, for the CSV's sidecar)."""
    start, count = time.perf_counter(), 0
    with open_results(output, "csv", predictor.class_names, model) as writer:
        for batch in predictor.predict_batches(walk_inputs([folder]), batch_size, workers):
            writer.write(batch)
            count += len(batch)
    return count / (time.perf_counter() - start)


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "horses_humans", "predict", *map(str, args)]


def cold_seconds(run: Path, image: Path, runtime: str, rounds: int) -> float:
    """Median wall seconds of a fresh `predict RUN IMAGE --runtime RUNTIME` process."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(cli(run, image, "--runtime", runtime), check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mib(run: Path, folder: Path, output: Path) -> float:
    """Maximum resident memory of one `predict RUN FOLDER --output CSV` process, MiB."""
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *cli(run, folder, "--output", output)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(result.stdout.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "run", type=Path, help="a finished run (export it with `export RUN --format web` for the runtime lines)"
    )
    parser.add_argument("--files", type=int, default=20_000, help="files to predict (default 20000)")
    parser.add_argument("--data-dir", type=Path, help="data set folder (default: $HORSES_HUMANS_DATA, else the cache)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--rounds", type=int, default=3, help="cold one-image runs per runtime (median)")
    args = parser.parse_args()
    images = sorted((resolve_data_dir(args.data_dir) / VALIDATION).rglob("*.png"))
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        tmp = Path(tmp)
        folder = repeated_files(images, args.files, tmp / "many")
        few = repeated_files(images, max(args.files // 20, 1), tmp / "few")
        rows = throughput_rows(args, folder, tmp)
        print(
            f"{args.files} files, {args.workers} decoding threads, batches of {args.batch_size}, "
            f"{os.cpu_count()} CPUs\n"
        )
        print(markdown_table(["path", "images/s", "x decode limit", "x today's path"], rows))
        print()
        print(markdown_table(["one image, fresh process", "wall s"], cold_rows(args, images[0])))
        print()
        many, small = peak_rss_mib(args.run, folder, tmp / "m.csv"), peak_rss_mib(args.run, few, tmp / "f.csv")
        print(
            markdown_table(
                ["predict --output CSV", "peak RSS MiB"],
                [
                    [f"{args.files} files", f"{many:.0f}"],
                    [f"{len(list(few.iterdir()))} files", f"{small:.0f}"],
                    ["ratio", f"{many / small:.2f}"],
                ],
            )
        )


def throughput_rows(args, folder: Path, tmp: Path) -> list[list[str]]:
    """Decode limit, today's path and the streaming path (Keras, and the runtime auto picks), with their ratios."""
    files, run = sorted(folder.iterdir()), load_run(args.run)
    keras = Predictor.from_run(args.run).warm_up()
    auto = Predictor.from_run(args.run, runtime="auto").warm_up()
    limit = decode_limit(files, keras.image_size, args.workers)
    today = todays_path(keras, files)
    measured = {
        "decode limit (no model)": limit,
        "today's path (Keras, serial decoding)": today,
        "streaming, Keras": streaming(
            keras, folder, tmp / "k.csv", args.batch_size, args.workers, model_stamp(run, runtime="keras")
        ),
    }
    if "Keras" not in auto.source:
        measured[f"streaming, {auto.source.split(' (')[0]} (auto)"] = streaming(
            auto, folder, tmp / "a.csv", args.batch_size, args.workers, model_stamp(run)
        )
    return [[name, f"{rate:.0f}", f"{rate / limit:.2f}", f"{rate / today:.2f}"] for name, rate in measured.items()]


def cold_rows(args, image: Path) -> list[list[str]]:
    """Fresh-process wall seconds of one image with Keras and with the runtime auto picks."""
    rows = [["--runtime keras", f"{cold_seconds(args.run, image, 'keras', args.rounds):.2f}"]]
    rows.append(["--runtime auto", f"{cold_seconds(args.run, image, 'auto', args.rounds):.2f}"])
    return rows


if __name__ == "__main__":
    main()
