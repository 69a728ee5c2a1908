"""`predict --engine ray` on this machine: throughput with 1 and 2 Ray CPUs (workers) and its overhead against the
single-machine path, as ratios measured in one run (interleaved rounds: a noisy neighbour slows all alike).

Each measurement is end to end, as a user waits for it: the single-machine path loads the model and predicts every
file; the Ray path starts a local Ray of N CPUs, decodes in tasks, predicts on up to N model actors and writes the
CSV); a last row times starting and stopping Ray alone, the fixed part of its overhead.
Files are the validation images repeated (symlinks) to --files.

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

from horses_humans.core import backend

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "validation-horse-or-human"


def make_files(source: Path, n: int, folder: Path) -> Path:
    """n files under folder: the source folder's images repeated, as symlinks."""
    from horses_humans.data.files import visible_files

    images = visible_files(source)
    folder.mkdir(parents=True)
    for i in range(n):
        image = images[i % len(images)]
        (folder / f"{i:06d}-{image.name}").symlink_to(image.resolve())
    return folder


def local_seconds(run: Path, folder: Path, out: Path) -> float:
    """Wall seconds of the single-machine path: load the run's predictor, predict every file, write the CSV."""
    from horses_humans.inference.predictor import Predictor, collect_files
    from horses_humans.inference.resultfiles import model_stamp, open_results
    from horses_humans.runs.store import load_run

    start = time.perf_counter()
    loaded = load_run(run)
    predictor = Predictor.from_run(loaded, runtime="keras")  # Keras, as the Ray side below
    results = predictor.predict_files(collect_files([folder]))
    with open_results(out, "csv", predictor.class_names, model_stamp(loaded, runtime="keras")) as writer:
        writer.write(results)
    return time.perf_counter() - start


def ray_seconds(run: Path, folder: Path, out: Path, workers: int) -> float:
    """Wall seconds of `predict --engine ray` on a fresh local Ray of `workers` CPUs (start-up included)."""
    from horses_humans.inference.rayengine import RayPredict, predict_with_ray

    start = time.perf_counter()
    predict_with_ray(RayPredict(run, [folder], out, runtime="keras", workers=workers))
    return time.perf_counter() - start


def startup_seconds(workers: int) -> float:
    """Wall seconds to start and stop a local Ray of `workers` CPUs with no work: the fixed part of its overhead."""
    from horses_humans.inference.rayengine import ray_session

    start = time.perf_counter()
    with ray_session(None, workers):
        pass
    return time.perf_counter() - start


def measure(run: Path, folder: Path, rounds: int, scratch: Path) -> dict[str, list[float]]:
    """{path name: wall seconds per round}."""
    times = {"single machine": [], "ray, 1 CPU": [], "ray, 2 CPUs": [], "ray start and stop alone, 2 CPUs": []}
    for _ in range(rounds):
        times["ray start and stop alone, 2 CPUs"].append(startup_seconds(2))
        times["single machine"].append(local_seconds(run, folder, scratch / "local.csv"))
        for workers in (1, 2):
            times[f"ray, {workers} CPU{'s' if workers > 1 else ''}"].append(
                ray_seconds(run, folder, scratch / f"ray{workers}.csv", workers)
            )
    same = (scratch / "local.csv").read_bytes() == (scratch / "ray2.csv").read_bytes()
    print(f"rows identical to the single-machine path: {same}", file=sys.stderr)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "run", type=Path, help="a run directory (e.g. a 1-epoch baseline: the model, not its accuracy, sets the speed)"
    )
    parser.add_argument("--files", type=int, default=512, help="how many files to predict (default: 512)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--data", type=Path, default=DATA, help=f"images to repeat (default: {DATA})")
    args = parser.parse_args()
    backend.import_backend()  # TensorFlow imported before any clock starts: every path pays the same
    from horses_humans.core.tables import markdown_table

    with tempfile.TemporaryDirectory() as tmp:
        folder = make_files(args.data, args.files, Path(tmp) / "files")
        times = measure(args.run, folder, args.rounds, Path(tmp))
    median = {name: statistics.median(t) for name, t in times.items()}
    local, one = median["single machine"], median["ray, 1 CPU"]
    rows = [
        [name, f"{s:.1f}", f"{args.files / s:.0f}", f"{local / s:.2f}x", f"{one / s:.2f}x"]
        for name, s in median.items()
        if "alone" not in name
    ]
    rows.append([name := "ray start and stop alone, 2 CPUs", f"{median[name]:.1f}", "", "", ""])
    print(f"{args.files} files, {args.rounds} round(s), {os.cpu_count()} cores; end to end, start-up included")
    print(markdown_table(["path", "median s", "files/s", "speed vs single machine", "speed vs ray 1 CPU"], rows))


if __name__ == "__main__":
    main()
