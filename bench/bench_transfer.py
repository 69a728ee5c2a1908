"""Head training of a frozen backbone: with the feature cache vs running the backbone every batch, in one run.

Three ways to train the same `mobilenet_v2` head (same seed, epochs, learning rate):
  - per batch: the frozen backbone runs on every training and validation batch of every epoch
    (what `model.fit` on pixels does, and what the Keras transfer-learning guide does);
  - feature cache, cold: backbone features computed once (included in the time), then the head alone;
  - feature cache, warm: a later run of the same data and backbone reads the features from the cache.
Each variant builds the same model and calls the package's own fitting function for it (stages.fit_pixels or
stages.fit_head, as `training.loop.train` would), so nothing in the package is patched. Prints seconds of training
(the fit, as `train` records it in train_seconds), validation accuracy per epoch, and the ratios. The target is
100% validation accuracy within 30 s of training on the 2-core CPU.

    python bench/bench_transfer.py --weights
    ../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from horses_humans.core import backend  # noqa: E402

backend.configure()  # before keras is imported

import keras  # noqa: E402

from horses_humans.config import TrainConfig, resolve_data_dir  # noqa: E402
from horses_humans.core.tables import markdown_table  # noqa: E402
from horses_humans.core.workspace import Workspace, quiet  # noqa: E402
from horses_humans.data.pixels import load_dataset  # noqa: E402
from horses_humans.models.recipes import build_model, resolve  # noqa: E402
from horses_humans.training import callbacks, optimizer, stages  # noqa: E402
from horses_humans.training.plan import plan_stages  # noqa: E402


def timed_fit(config: TrainConfig, data_dir: Path, cache_dir: Path, per_batch: bool) -> dict:
    """Build the model as `train` does and fit its head (per_batch: the whole model on pixels, the backbone running
    every batch; else the head alone on cached features) -> seconds of fitting and validation accuracy per epoch."""
    train, val = load_dataset(data_dir, config.image_size, cache_dir, warn=lambda s: None)
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, optimizer.training_precision(config, transfer=True))
    with tempfile.TemporaryDirectory() as run_dir:  # the recorder saves history.json there
        recorder = callbacks.EpochRecorder(Path(run_dir), config.epochs, log=quiet)
        fitting, head = stages.Fitting(model, config, recorder), plan_stages(config, transfer=True)[0]
        start = time.perf_counter()
        if per_batch:
            stages.fit_pixels(fitting, head, train, val)
        else:
            stages.fit_head(fitting, head, train, val, Workspace(data_dir, Path(run_dir), cache_dir, quiet))
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "val": [h["val_accuracy"] for h in recorder.history]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="mobilenet_v2")
    parser.add_argument("--weights", help="backbone weights file (default: the Keras cache / download)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    cache_dir = Path(tempfile.mkdtemp(prefix="hh-bench-transfer-"))
    config = resolve(TrainConfig(recipe=args.recipe, weights=args.weights, epochs=args.epochs, seed=args.seed))
    # decode the pixels once up front, so no variant pays for PNG decoding
    load_dataset(data_dir, config.image_size, cache_dir, warn=lambda s: None)
    rows = [
        ("per batch: backbone runs every batch", timed_fit(config, data_dir, cache_dir, per_batch=True)),
        ("feature cache, cold (features computed once)", timed_fit(config, data_dir, cache_dir, per_batch=False)),
        ("feature cache, warm (features read from cache)", timed_fit(config, data_dir, cache_dir, per_batch=False)),
    ]
    print(f"{args.recipe}, {args.epochs} epochs, seed {args.seed}, {os.cpu_count()} CPU cores\n")
    base = rows[0][1]["seconds"]
    print(
        markdown_table(
            ["head training", "seconds", "speed-up", "val acc per epoch %", "first epoch at 100%"],
            [result_row(name, r, base) for name, r in rows],
        )
    )


def result_row(name: str, r: dict, base: float) -> list[str]:
    """One variant's cells: seconds, speed-up over the per-batch variant, accuracy per epoch, first perfect epoch."""
    first = next((i + 1 for i, v in enumerate(r["val"]) if v >= 1.0), None)
    return [
        name,
        f"{r['seconds']:.1f}",
        f"{base / r['seconds']:.1f}x",
        " ".join(f"{100 * v:.1f}" for v in r["val"]),
        str(first or "never"),
    ]


if __name__ == "__main__":
    sys.exit(main())
