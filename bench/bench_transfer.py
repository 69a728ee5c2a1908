"""Head training of a frozen backbone: with the feature cache vs running the backbone every batch, in one run.

Three ways to train the same `mobilenet_v2` head (same seed, epochs, learning rate):
  - per batch: the frozen backbone runs on every training and validation batch of every epoch
    (what `model.fit` on pixels does, and what the Keras transfer-learning guide does);
  - feature cache, cold: backbone features computed once (included in the time), then the head alone;
  - feature cache, warm: a later run of the same data and backbone reads the features from the cache.
Prints seconds of training (the whole `train` call after the data is loaded), validation accuracy per
epoch, and the ratios. The target is 100% validation accuracy within 30 s of training on the 2-core CPU.

    python bench/bench_transfer.py --weights ../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from horses_humans import backend  # noqa: E402

backend.configure()  # before keras is imported

from horses_humans import training  # noqa: E402
from horses_humans.config import TrainConfig, resolve_data_dir  # noqa: E402


def per_batch_head(model, config, train, val, recorder, cache_dir, log):
    """The same head training, but through the whole model on pixels (backbone every batch)."""
    training.fit_pixels(model, config, config.learning_rate, train, val, recorder, config.epochs)


def timed_run(config: TrainConfig, data_dir: Path, cache_dir: Path, per_batch: bool) -> dict:
    """One `train` call; returns its train_seconds and validation accuracy per epoch."""
    original = training.fit_head
    if per_batch:
        training.fit_head = per_batch_head
    try:
        with tempfile.TemporaryDirectory() as runs:
            run = training.train(config, data_dir, Path(runs), cache_dir, log=lambda s: None)
            metrics = json.loads((run / "metrics.json").read_text())
            history = json.loads((run / "history.json").read_text())
    finally:
        training.fit_head = original
    return {"seconds": metrics["train_seconds"], "val": [h["val_accuracy"] for h in history]}


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
    config = TrainConfig(recipe=args.recipe, weights=args.weights, epochs=args.epochs, seed=args.seed)
    # decode the pixels once up front, so no variant pays for PNG decoding
    training.load_dataset(data_dir, training.resolve(config).image_size, cache_dir, warn=lambda s: None)
    rows = [
        ("per batch: backbone runs every batch", timed_run(config, data_dir, cache_dir, per_batch=True)),
        ("feature cache, cold (features computed once)", timed_run(config, data_dir, cache_dir, per_batch=False)),
        ("feature cache, warm (features read from cache)", timed_run(config, data_dir, cache_dir, per_batch=False)),
    ]
    print(f"{args.recipe}, {args.epochs} epochs, seed {args.seed}, {os.cpu_count()} CPU cores\n")
    print("| head training | seconds | speed-up | val acc per epoch % | first epoch at 100% |\n|---|---|---|---|---|")
    base = rows[0][1]["seconds"]
    for name, r in rows:
        first = next((i + 1 for i, v in enumerate(r["val"]) if v >= 1.0), None)
        print(f"| {name} | {r['seconds']:.1f} | {base / r['seconds']:.1f}x | {' '.join(f'{100 * v:.1f}' for v in r['val'])} | {first or 'never'} |")


if __name__ == "__main__":
    sys.exit(main())
