"""`predict --engine ray` on this machine: throughput with 1 and 2 Ray CPUs (workers) and its overhead against the
single-machine path, as ratios measured in one run (interleaved rounds: a noisy neighbour slows all alike).

Each path is timed end to end, as a user waits for it (the single-machine path loads the model and predicts every
file; the Ray path starts a local Ray of N CPUs, decodes in tasks, predicts on up to N model actors and writes the
CSV), and at its steady rate: files/s from the first answered batch to the last (start-up left out). Files are the
validation images repeated (symlinks) to --files.

    horses-humans train --recipe baseline --epochs 1 --seed 0 --runs-dir /tmp/bench-runs
    python bench/bench_ray.py /tmp/bench-runs/baseline-150-s0-* --files 512 --rounds 1
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from horses_humans import backend

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "validation-horse-or-human"


def make_files(source: Path, n: int, folder: Path) -> Path:
    """n files under folder: the source folder's images repeated, as symlinks."""
    from horses_humans.data import visible_files

    images = visible_files(source)
    folder.mkdir(parents=True)
    for i in range(n):
        image = images[i % len(images)]
        (folder / f"{i:06d}-{image.name}").symlink_to(image.resolve())
    return folder


class Clock:
    """Wall seconds from start to the first answered batch and to the end: start-up, and the steady rate after it."""

    def __init__(self):
        self.start, self.first, self.first_rows, self.end = time.perf_counter(), None, 0, None

    def answered(self, rows: int) -> None:
        """Note that `rows` rows are out (the first call marks the end of start-up)."""
        if self.first is None:
            self.first, self.first_rows = time.perf_counter(), rows

    def stop(self, rows: int) -> tuple[float, float]:
        """(end-to-end seconds, steady files/s after the first batch)."""
        self.end = time.perf_counter()
        steady = (rows - self.first_rows) / max(self.end - self.first, 1e-9)
        return self.end - self.start, steady


def local_run(run: Path, folder: Path, out: Path) -> tuple[float, float]:
    """The single-machine path: load the run's predictor, predict every file, write the CSV."""
    from horses_humans.atomic import write_text_atomic
    from horses_humans.predict import Predictor, collect_files, format_predictions

    clock = Clock()
    predictor = Predictor.from_run(run)
    files = collect_files([folder])
    results = predictor.predict_files(files, progress=lambda done, total: clock.answered(done))
    write_text_atomic(out, format_predictions(results, "csv", predictor.class_names))
    return clock.stop(len(files))


def ray_run(run: Path, folder: Path, out: Path, workers: int) -> tuple[float, float]:
    """`predict --engine ray` on a fresh local Ray of `workers` CPUs (start-up included), as predict_with_ray runs it."""
    from horses_humans import rayengine
    from horses_humans.predict import collect_files

    clock = Clock()
    files, names = collect_files([folder]), rayengine.load_run(run).class_names

    def counted(rows):
        for n, row in enumerate(rows, 1):
            clock.answered(n)
            yield row

    with rayengine.ray_session(None, workers) as ray:
        ds = rayengine.build_dataset(ray, files, run.resolve(), None, None, workers, rayengine.DEFAULT_BATCH)
        rayengine.write_rows(counted(rayengine.stream_rows(ds)), names, out, "csv")
    return clock.stop(len(files))


def measure(run: Path, folder: Path, rounds: int, scratch: Path) -> dict[str, list[tuple[float, float]]]:
    """{path name: (end-to-end seconds, steady files/s) per round}."""
    times = {"single machine": [], "ray, 1 CPU": [], "ray, 2 CPUs": []}
    for _ in range(rounds):
        times["single machine"].append(local_run(run, folder, scratch / "local.csv"))
        for workers in (1, 2):
            times[f"ray, {workers} CPU{'s' if workers > 1 else ''}"].append(
                ray_run(run, folder, scratch / f"ray{workers}.csv", workers))
    same = (scratch / "local.csv").read_bytes() == (scratch / "ray2.csv").read_bytes()
    print(f"rows identical to the single-machine path: {same}", file=sys.stderr)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory (e.g. a 1-epoch baseline: the model, not its accuracy, sets the speed)")
    parser.add_argument("--files", type=int, default=512, help="how many files to predict (default: 512)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--data", type=Path, default=DATA, help=f"images to repeat (default: {DATA})")
    args = parser.parse_args()
    backend.import_backend()  # TensorFlow imported before any clock starts: every path pays the same
    from horses_humans.tables import markdown_table

    with tempfile.TemporaryDirectory() as tmp:
        folder = make_files(args.data, args.files, Path(tmp) / "files")
        times = measure(args.run, folder, args.rounds, Path(tmp))
    total = {name: statistics.median(t for t, _ in runs) for name, runs in times.items()}
    steady = {name: statistics.median(r for _, r in runs) for name, runs in times.items()}
    local, one = "single machine", "ray, 1 CPU"
    rows = [[name, f"{total[name]:.1f}", f"{args.files / total[name]:.0f}", f"{total[local] / total[name]:.2f}x",
             f"{steady[name]:.0f}", f"{steady[name] / steady[local]:.2f}x", f"{steady[name] / steady[one]:.2f}x"]
            for name in times]
    print(f"{args.files} files, {args.rounds} round(s), {os.cpu_count()} cores; end to end (start-up included) and "
          "steady (files/s after the first batch is out)")
    print(markdown_table(["path", "end to end s", "files/s", "vs single machine", "steady files/s",
                          "steady vs single machine", "steady vs ray 1 CPU"], rows))

if __name__ == "__main__":
    main()
