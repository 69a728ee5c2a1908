"""Single-image CPU latency of every published export of a run against the Keras model, in one process.

The exports are the folders `horses-humans export RUN --all` wrote into RUN/export/. The references are the run's
Keras model called the two ways a Keras user would: `model.predict(x)` (the notebook's way) and
`model.predict_on_batch(x)` (what the prediction service uses). Rounds take turns over all runtimes, so a noisy
neighbour slows everyone alike; each round times `--calls` single-image predictions after a warm-up, and the
median of the round medians is reported with the ratio to both references. Target: int8 TFLite under 5 ms.

    python bench/bench_export.py runs/export/baseline-150-s0-.../ --rounds 5 --calls 100
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from horses_humans.core import backend  # noqa: E402

backend.configure()  # before keras is imported

import numpy as np  # noqa: E402

from horses_humans.core.backend import quiet_native_stderr  # noqa: E402
from horses_humans.core.tables import markdown_table  # noqa: E402
from horses_humans.export.formats import FORMATS  # noqa: E402
from horses_humans.export.parity import p50_latency_ms  # noqa: E402
from horses_humans.inference.runtimes import KerasRuntime  # noqa: E402
from horses_humans.runs.layout import EXPORT_DIR  # noqa: E402
from horses_humans.runs.store import load_run  # noqa: E402

TARGET_MS = {"tflite-int8": 5.0}


def load_runtimes(run) -> dict:
    """name -> predict(batch) for the two Keras references and every published export."""
    model = run.load_model()
    runtimes = {
        "keras model.predict (reference)": lambda x: model.predict(x, verbose=0),
        "keras predict_on_batch (reference)": KerasRuntime(model).predict,
    }
    for folder in sorted((run.path / EXPORT_DIR).iterdir()):
        manifest = folder / "export.json"
        if folder.is_dir() and not folder.name.startswith(".") and manifest.exists():
            spec = FORMATS[json.loads(manifest.read_text())["format"]]
            with quiet_native_stderr():
                runtimes[folder.name] = spec.runtime(folder / spec.file).predict
    return runtimes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=100, help="single-image calls timed per runtime per round")
    args = parser.parse_args()
    run = load_run(args.run)
    runtimes = load_runtimes(run)
    if len(runtimes) == 2:
        sys.exit(f"{args.run / EXPORT_DIR}: no exports; run `horses-humans export {args.run} --all` first")
    image = np.random.default_rng(0).integers(0, 256, (run.image_size, run.image_size, 3), dtype=np.uint8)
    times = {name: [] for name in runtimes}
    for r in range(args.rounds):
        for name, predict in runtimes.items():
            times[name].append(p50_latency_ms(predict, image, runs=args.calls))
        print(
            f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n.split(' ')[0]} {t[-1]:.2f}" for n, t in times.items()),
            file=sys.stderr,
        )
    print_table(run, {name: float(np.median(t)) for name, t in times.items()}, args)


def print_table(run, p50: dict, args) -> None:
    """Markdown: p50 per runtime and its speed-up over both Keras references."""
    slow, fast = p50["keras model.predict (reference)"], p50["keras predict_on_batch (reference)"]
    print(
        f"{run.path.name} ({run.config.recipe}, {run.image_size} px): median of {args.rounds} rounds x {args.calls} "
        "single-image calls\n"
    )
    rows = []
    for name, ms in p50.items():
        target = f"< {TARGET_MS[name]:g} ms: {'met' if ms < TARGET_MS[name] else 'MISSED'}" if name in TARGET_MS else ""
        rows.append([name, f"{ms:.2f}", f"{slow / ms:.1f}", f"{fast / ms:.1f}", target])
    print(
        markdown_table(
            ["runtime", "p50 ms", "x faster than model.predict", "x faster than predict_on_batch", "target"], rows
        )
    )


if __name__ == "__main__":
    main()
