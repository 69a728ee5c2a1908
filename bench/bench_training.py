"""Seconds per epoch of the baseline CNN: the reference notebook's input pipeline vs ours, in one run.

The reference (as the notebook writes it): image_dataset_from_directory -> rescale map -> shuffle(1000)
-> prefetch, PNGs decoded every epoch, float32, Keras' RMSprop. Ours: `horses_humans.training.train`,
i.e. pixels decoded once into a cache, rescaling inside the model, fused RMSprop, mixed_bfloat16 where
the CPU has bf16 units. Intermediate variants show what each change gives. Seconds per epoch include
the validation pass (as Keras reports them); the first epoch (tracing, warm-up) is left out of the mean.

    python bench/bench_training.py --epochs 5            # HORSES_HUMANS_DATA or --data-dir
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import keras  # noqa: E402
from keras import layers  # noqa: E402

from horses_humans import training  # noqa: E402
from horses_humans.config import TrainConfig, resolve_data_dir  # noqa: E402
from horses_humans.data import TRAIN, VALIDATION  # noqa: E402


class Timer(keras.callbacks.Callback):
    """Seconds per epoch and the last logs."""

    def on_train_begin(self, logs=None):
        self.seconds, self.logs = [], {}

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)
        self.logs = dict(logs or {})


def reference_model() -> keras.Model:
    """The notebook's model: no rescaling inside (the dataset map does it)."""
    return keras.Sequential([
        keras.Input((150, 150, 3)),
        layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(512, activation="relu"), layers.Dense(1, activation="sigmoid"),
    ])


def run_reference(data_dir: Path, epochs: int, seed: int) -> dict:
    """The notebook's tf.data pipeline, exactly: decoded from PNG every epoch."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    load = lambda split: keras.utils.image_dataset_from_directory(  # noqa: E731
        str(data_dir / split), image_size=(150, 150), batch_size=32, label_mode="binary", verbose=False)
    rescale = layers.Rescaling(1.0 / 255)
    train_ds = load(TRAIN).map(lambda x, y: (rescale(x), y)).shuffle(1000).prefetch(tf.data.AUTOTUNE)
    val_ds = load(VALIDATION).map(lambda x, y: (rescale(x), y)).prefetch(tf.data.AUTOTUNE)
    model = reference_model()
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    timer = Timer()
    model.fit(train_ds, epochs=epochs, validation_data=val_ds, verbose=0, callbacks=[timer])
    return {"seconds": timer.seconds, "val_accuracy": timer.logs.get("val_accuracy")}


def run_ours(data_dir: Path, cache_dir: Path, epochs: int, seed: int, precision: str, fused: bool) -> dict:
    """`training.train` itself, optionally with Keras' own RMSprop to show what the fused kernel gives."""
    original = training.make_optimizer
    if not fused:
        training.make_optimizer = lambda name, lr: keras.optimizers.RMSprop(lr)
    try:
        with tempfile.TemporaryDirectory() as runs:
            config = TrainConfig(recipe="baseline", epochs=epochs, seed=seed, precision=precision)
            run = training.train(config, data_dir, Path(runs), cache_dir, log=lambda s: None)
            metrics = json.loads((run / "metrics.json").read_text())
    finally:
        training.make_optimizer = original
    return {"seconds": metrics["epoch_seconds"], "val_accuracy": metrics["val_accuracy"]}


def steady(seconds: list[float]) -> float:
    """Median seconds per epoch after the first (warm-up) epoch."""
    return statistics.median(seconds[1:] or seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    cache_dir = Path(tempfile.mkdtemp(prefix="hh-bench-cache-"))
    bf16 = training.resolve_precision("auto")
    variants = [
        ("reference: tf.data from PNGs, float32", lambda: run_reference(data_dir, args.epochs, args.seed)),
        ("decoded-pixel cache, float32, Keras RMSprop", lambda: run_ours(data_dir, cache_dir, args.epochs, args.seed, "float32", False)),
        ("+ fused RMSprop, float32", lambda: run_ours(data_dir, cache_dir, args.epochs, args.seed, "float32", True)),
        (f"+ {bf16} (ours, default)", lambda: run_ours(data_dir, cache_dir, args.epochs, args.seed, bf16, True)),
    ]
    results = []
    print(f"baseline CNN, 150x150, batch 32, {args.epochs} epochs, seed {args.seed}, {os.cpu_count()} CPU cores", flush=True)
    for name, fn in variants:
        r = fn()
        r.update(name=name, median_seconds=steady(r["seconds"]))
        results.append(r)
        print(f"  {name:<46} {r['median_seconds']:6.2f} s/epoch  val_acc {r['val_accuracy']:.3f}  "
              f"(epochs: {', '.join(f'{s:.2f}' for s in r['seconds'])})", flush=True)
    ref = results[0]["median_seconds"]
    print("\n| pipeline | s/epoch (median, epochs 2..N) | speed-up vs reference | final val acc |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['name']} | {r['median_seconds']:.2f} | {ref / r['median_seconds']:.2f}x | {r['val_accuracy']:.3f} |")
    print(f"\nratio reference/ours: {ref / results[-1]['median_seconds']:.2f}x (target >= 3x)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
