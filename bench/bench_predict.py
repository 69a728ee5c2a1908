"""Batch prediction at scale (issue 14): throughput against the decode limit and against today's code path, the cold
one-image answer of an exported run against Keras, and how peak memory grows with the number of files.

--corpus official (the default): the validation images (300x300 PNGs) repeated as symbolic links in a temporary
folder to --files names. --corpus phone: --unique 4032x3024 quality-90 JPEGs made from the validation images
(upscaled, with sensor-like noise; bench/phone_corpus.py) in a temporary folder, linked to --files names (default 160).
  decode limit   the same files decoded and resized on every CPU (threads), no model: what prediction can reach
                 (load_pixels: for JPEGs, Pillow's DCT-scaled draft, the decoder bench/bench_jpeg.py chose)
  naive loop     one image at a time: Pillow full decode, RGB, resize, the same model on a batch of one
  predict        the CLI's path in this process (predict_paths: the walk, decoding threads, rows to a CSV, --runtime
                 auto), judged against two targets: >= 6x the naive loop, and within 1.5x of the decode limit
  today's path   the code path before streaming: batches of 32 decoded one file after another, then the model, with
                 every row kept until the end (Predictor.predict_chunk over chunks, Keras)
  streaming      Predictor.predict_batches over the lazy walk: decoding threads ahead of the model, rows written
                 to a CSV as they come (Keras, then the runtime `--runtime auto` picks)
  cold predict   one image, `horses-humans predict RUN IMAGE` in a fresh process, wall seconds (median of --rounds)
  peak memory    maximum RSS of `predict RUN FOLDER --output CSV` on --files files against on --files / 20
(today's path, streaming, cold predict and peak memory: the official corpus only.)
Ratios are within this one run, so a busy machine slows every line alike.

    python bench/bench_predict.py RUN --files 20000 --data-dir /work/shared/data
    python bench/bench_predict.py RUN --corpus phone --data-dir /work/shared/data
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

import numpy as np
from PIL import Image

from horses_humans.core import backend

backend.configure()

from phone_corpus import make_phone_jpegs  # noqa: E402

from horses_humans.config import resolve_data_dir  # noqa: E402
from horses_humans.core.batching import chunks  # noqa: E402
from horses_humans.core.tables import markdown_table  # noqa: E402
from horses_humans.data.files import walk_inputs  # noqa: E402
from horses_humans.data.images import load_pixels  # noqa: E402
from horses_humans.data.layouts import VALIDATION  # noqa: E402
from horses_humans.inference.predictor import Predictor, default_workers, predict_paths  # noqa: E402
from horses_humans.inference.resultfiles import model_stamp, open_results  # noqa: E402
from horses_humans.runs.store import load_run  # noqa: E402

TARGET_NAIVE = 6.0  # predict at least 6x the naive one-image loop
TARGET_LIMIT = 1.5  # predict within 1.5x of the decode limit (at least 1 / 1.5 of its images/s)
TODAY = "today's path (Keras, serial decoding)"
PHONE_FILES = 160  # --files default of the phone corpus (a 12-megapixel JPEG costs ~0.15 s to decode whole)
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


def naive_loop(predictor: Predictor, files: list[Path]) -> float:
    """Images per second of one image at a time: Pillow full decode, RGB, bilinear resize, a model call of one."""
    size, start = predictor.image_size, time.perf_counter()
    for path in files:
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        predictor.predict_proba(pixels[None])
    return len(files) / (time.perf_counter() - start)


def model_alone(predictor: Predictor, batch_size: int) -> float:
    """Images per second of the model on 512 images already in memory, in batches: what decoding shares CPUs with."""
    pixels = np.zeros((512, predictor.image_size, predictor.image_size, 3), np.uint8)
    predictor.predict_proba(pixels[:batch_size], batch_size)  # a batch of this size traced once, not timed
    start = time.perf_counter()
    predictor.predict_proba(pixels, batch_size)
    return len(pixels) / (time.perf_counter() - start)


def predict_cli_path(predictor: Predictor, folder: Path, output: Path, args, model) -> float:
    """Images per second of what `predict RUN FOLDER --output CSV` runs once its model is loaded (predict_paths)."""
    start = time.perf_counter()
    with open_results(output, "csv", predictor.class_names, model) as writer:
        tally = predict_paths(predictor, [folder], writer, args.batch_size, args.workers, log=lambda line: None)
    if tally.skipped:
        raise SystemExit(f"{folder}: {tally.skipped} files could not be predicted; the bench needs every one")
    return tally.predicted / (time.perf_counter() - start)


def target_lines(predict: float, naive: float, limit: float, model: float) -> list[str]:
    """One line per target, met or missed with the ratio it was judged on; a miss adds its measured bound."""
    speedup, behind = predict / naive, limit / predict
    shared = 1 / (1 / limit + 1 / model)  # decoding and the model on the same CPUs, one after the other's CPU time
    met = "met" if speedup >= TARGET_NAIVE else "MISSED"
    lines = [f"target >= {TARGET_NAIVE:g}x the naive loop: {met} ({speedup:.2f}x)"]
    if speedup < TARGET_NAIVE and limit / naive < TARGET_NAIVE:
        lines.append(f"  bound: the decode limit itself is {limit / naive:.2f}x the naive loop on these CPUs")
    lines.append(
        f"target within {TARGET_LIMIT:g}x of the decode limit: {'met' if behind <= TARGET_LIMIT else 'MISSED'} "
        f"(limit / predict = {behind:.2f}x)"
    )
    if behind > TARGET_LIMIT:
        lines.append(
            f"  bound: decoding and the model share the CPUs: at most 1 / (1/limit + 1/model) = {shared:.0f} "
            f"images/s, limit / that = {limit / shared:.2f}x; predict reached {predict / shared:.2f} of it"
        )
    return lines


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
    args = parse_args()
    images = sorted((resolve_data_dir(args.data_dir) / VALIDATION).rglob("*.png"))
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        tmp = Path(tmp)
        if args.corpus == "phone":
            files = make_phone_jpegs(images, min(args.unique, args.files), args.files, tmp / "many")
            corpus = f"{args.files} phone JPEGs (4032x3024, {min(args.unique, args.files)} distinct)"
        else:
            files = sorted(repeated_files(images, args.files, tmp / "many").iterdir())
            corpus = f"{args.files} validation PNGs (300x300, {len(images)} distinct)"
        rows, targets = throughput_rows(args, files, tmp)
        print(f"{corpus}, {args.workers} decoding threads, batches of {args.batch_size}, {os.cpu_count()} CPUs\n")
        header = ["path", "images/s", "x decode limit", "x naive loop", "x today's path"]
        print(markdown_table(header[: len(rows[0])], rows))
        print("\n" + "\n".join(targets))
        if args.corpus == "official":
            print_cold_and_memory(args, images, files[0].parent, tmp)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "run", type=Path, help="a finished run (export it with `export RUN --format web` for the runtime lines)"
    )
    parser.add_argument("--corpus", choices=["official", "phone"], default="official", help="what to predict")
    parser.add_argument("--files", type=int, help=f"files to predict (default 20000; phone: {PHONE_FILES})")
    parser.add_argument("--unique", type=int, default=16, help="distinct phone JPEGs to make (default 16)")
    parser.add_argument("--naive-files", type=int, default=256, help="files the naive loop decodes (default 256)")
    parser.add_argument("--data-dir", type=Path, help="data set folder (default: $HORSES_HUMANS_DATA, else the cache)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--repeat", type=int, default=1, help="rounds of limit, model, predict (best kept)")
    parser.add_argument("--rounds", type=int, default=3, help="cold one-image runs per runtime (median)")
    args = parser.parse_args()
    args.files = args.files or (PHONE_FILES if args.corpus == "phone" else 20_000)
    return args


def print_cold_and_memory(args, images: list[Path], folder: Path, tmp: Path) -> None:
    """The official corpus's cold one-image table and its peak memory on --files files against --files / 20."""
    few = repeated_files(images, max(args.files // 20, 1), tmp / "few")
    print()
    print(markdown_table(["one image, fresh process", "wall s"], cold_rows(args, images[0])))
    print()
    many, small = peak_rss_mib(args.run, folder, tmp / "m.csv"), peak_rss_mib(args.run, few, tmp / "f.csv")
    rows = [[f"{args.files} files", f"{many:.0f}"], [f"{len(list(few.iterdir()))} files", f"{small:.0f}"]]
    print(markdown_table(["predict --output CSV", "peak RSS MiB"], [*rows, ["ratio", f"{many / small:.2f}"]]))


def throughput_rows(args, files: list[Path], tmp: Path) -> tuple[list[list[str]], list[str]]:
    """The decode limit, the naive loop and predict's CLI path (the official corpus adds today's path and the
    streaming lines), each with its ratios; and the target lines."""
    run = load_run(args.run)
    auto = Predictor.from_run(args.run, runtime="auto").warm_up()
    rounds = [interleaved(args, auto, files, tmp, model_stamp(run)) for _ in range(args.repeat)]
    limit, model, predict = (max(measured) for measured in zip(*rounds))  # the best of each: the least disturbed
    naive = naive_loop(auto, files[: args.naive_files])
    measured = {
        "decode limit (no model)": limit,
        f"model alone ({auto.source.split(' (')[0]}, no decoding)": model,
        f"naive loop ({auto.source.split(' (')[0]}, one image at a time, full decode)": naive,
        f"predict (CLI path, --runtime auto: {auto.source.split(' (')[0]})": predict,
    }
    today = None
    if args.corpus == "official":
        measured |= official_rows(args, run, auto, files, tmp)
        today = measured[TODAY]
    rows = [[name, f"{rate:.0f}", f"{rate / limit:.2f}", f"{rate / naive:.2f}"] for name, rate in measured.items()]
    if today:
        rows = [[*row, f"{rate / today:.2f}"] for row, rate in zip(rows, measured.values())]
    return rows, target_lines(predict, naive, limit, model)


def interleaved(args, predictor: Predictor, files: list[Path], tmp: Path, model) -> tuple[float, float, float]:
    """(decode limit, model alone, predict's CLI path) images/s, measured one after another, so that a change in
    the machine's load falls on all three alike."""
    limit = decode_limit(files, predictor.image_size, args.workers)
    alone = model_alone(predictor, args.batch_size)
    return limit, alone, predict_cli_path(predictor, files[0].parent, tmp / "p.csv", args, model)


def official_rows(args, run, auto: Predictor, files: list[Path], tmp: Path) -> dict[str, float]:
    """Today's path (serial decoding per batch) and the streaming path, Keras and the runtime auto picks."""
    keras, folder = Predictor.from_run(args.run, runtime="keras").warm_up(), files[0].parent
    measured = {
        TODAY: todays_path(keras, files),
        "streaming, Keras": streaming(
            keras, folder, tmp / "k.csv", args.batch_size, args.workers, model_stamp(run, runtime="keras")
        ),
    }
    if "Keras" not in auto.source:
        measured[f"streaming, {auto.source.split(' (')[0]} (auto)"] = streaming(
            auto, folder, tmp / "a.csv", args.batch_size, args.workers, model_stamp(run)
        )
    return measured


def cold_rows(args, image: Path) -> list[list[str]]:
    """Fresh-process wall seconds of one image with Keras and with the runtime auto picks."""
    rows = [["--runtime keras", f"{cold_seconds(args.run, image, 'keras', args.rounds):.2f}"]]
    rows.append(["--runtime auto", f"{cold_seconds(args.run, image, 'auto', args.rounds):.2f}"])
    return rows


if __name__ == "__main__":
    main()
