"""Seconds per epoch of the baseline CNN: the reference notebook's input pipeline vs ours, in one run.

The reference (as the notebook writes it): image_dataset_from_directory -> rescale map -> shuffle(1000)
-> prefetch, PNGs decoded every epoch, float32, Keras' RMSprop. Ours: what `horses_humans.training.loop.train`
does for `baseline`: pixels decoded once into a cache, rescaling inside the model, fused RMSprop,
mixed_bfloat16 where the CPU has bf16 units. Two intermediate variants show what each change gives.

These machines are noisy (neighbours on the host), so the variants take turns: each round trains every
variant for one epoch, and a disturbance hits all of them alike. Seconds per epoch include the validation
pass, as Keras reports them; round 1 (tracing, warm-up) is left out; the ratio uses medians. Beside the wall
seconds, the CPU seconds this process used per epoch (all threads): on a machine shared with other work, wall
time includes waiting for a core, CPU time does not.

--explore adds the candidates tried for the 3x target (none changes the recipe's math): ours fed from a tf.data
pipeline over tensors made once (gather a shuffled batch) instead of Keras' numpy adapter, and ours with
steps_per_execution=8. --inter-op / --intra-op set TensorFlow's thread pools for the whole run (every variant).

    python bench/bench_training.py --rounds 6            # HORSES_HUMANS_DATA or --data-dir
    python bench/bench_training.py --rounds 6 --explore --inter-op 1
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from horses_humans.core import backend  # noqa: E402

backend.configure()  # before keras is imported

import keras  # noqa: E402
from keras import layers  # noqa: E402

from horses_humans.config import TrainConfig, resolve_data_dir  # noqa: E402
from horses_humans.core.tables import markdown_table  # noqa: E402
from horses_humans.data.layouts import TRAIN, VALIDATION  # noqa: E402
from horses_humans.data.pixels import load_dataset  # noqa: E402
from horses_humans.models.recipes import build_model, resolve  # noqa: E402
from horses_humans.training import optimizer, stages  # noqa: E402


def reference_model() -> keras.Model:
    """The notebook's model: no rescaling inside (the dataset map does it)."""
    return keras.Sequential(
        [
            keras.Input((150, 150, 3)),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(512, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )


def reference_trainer(data_dir: Path, seed: int):
    """The notebook's tf.data pipeline, exactly: decoded from PNG every epoch. Returns fit-one-epoch."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    load = lambda split: keras.utils.image_dataset_from_directory(  # noqa: E731
        str(data_dir / split), image_size=(150, 150), batch_size=32, label_mode="binary", verbose=False
    )
    rescale = layers.Rescaling(1.0 / 255)
    train_ds = load(TRAIN).map(lambda x, y: (rescale(x), y)).shuffle(1000).prefetch(tf.data.AUTOTUNE)
    val_ds = load(VALIDATION).map(lambda x, y: (rescale(x), y)).prefetch(tf.data.AUTOTUNE)
    model = reference_model()
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    return lambda epoch: model.fit(train_ds, initial_epoch=epoch, epochs=epoch + 1, validation_data=val_ds, verbose=0)


def our_trainer(data_dir: Path, cache_dir: Path, seed: int, precision: str, fused: bool, feed: str = "numpy"):
    """training.train's own pieces for `baseline` (fused=False swaps in Keras' RMSprop). Returns fit-one-epoch.
    feed: numpy (as train does), tensors (a tf.data pipeline over tensors made once), or steps8 (numpy, with
    steps_per_execution=8)."""
    config = resolve(TrainConfig(recipe="baseline", seed=seed, precision=precision))
    train_split, val_split = load_dataset(data_dir, config.image_size, cache_dir, warn=lambda s: None)
    keras.utils.set_random_seed(seed)
    model = build_model(config, optimizer.resolve_precision(precision))
    if fused:
        optimizer.compile_model(model, config.learning_rate, stages.class_output(train_split))
    else:
        model.compile(
            optimizer=keras.optimizers.RMSprop(config.learning_rate), loss="binary_crossentropy", metrics=["accuracy"]
        )
    if feed == "steps8":  # the same optimizer, loss and metrics, 8 steps per call of the compiled train function
        model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"], steps_per_execution=8)
    train_xy, val_xy = stages.arrays(train_split), stages.arrays(val_split)
    if feed == "tensors":
        return tensor_trainer(model, config, train_xy, val_xy, seed)
    return lambda epoch: stages.fit_arrays(model, config, train_xy, val_xy, [], range(epoch, epoch + 1))


def tensor_trainer(model, config, train_xy, val_xy, seed: int):
    """Fit-one-epoch on a tf.data pipeline over tensors made once: a shuffled index per epoch, each batch gathered
    (what Keras' numpy adapter does, without converting the arrays again on every fit call)."""
    import tensorflow as tf

    x, y = tf.constant(train_xy[0]), tf.constant(train_xy[1])
    train = (
        tf.data.Dataset.range(len(train_xy[1]))
        .shuffle(len(train_xy[1]), seed=seed, reshuffle_each_iteration=True)
        .batch(config.batch_size)
        .map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
        .prefetch(2)
    )
    val = tf.data.Dataset.from_tensor_slices(val_xy).batch(config.batch_size).cache()
    # shuffle=False: the dataset shuffles itself (Keras would only warn that it cannot)
    fit = dict(validation_data=val, shuffle=False, verbose=0)
    return lambda epoch: model.fit(train, initial_epoch=epoch, epochs=epoch + 1, **fit)


def set_threads(inter_op: int | None, intra_op: int | None) -> None:
    """TensorFlow's thread pools, before anything runs (None: TensorFlow's default)."""
    import tensorflow as tf

    if inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    if intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)


def steady(seconds: list[float]) -> float:
    """Median seconds per epoch after the first (warm-up) round."""
    return statistics.median(seconds[1:] or seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="epochs per variant, taken in turns (default 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--explore", action="store_true", help="add the candidate variants (see the docstring)")
    parser.add_argument("--inter-op", type=int, help="TensorFlow inter-op threads (default: TensorFlow's)")
    parser.add_argument("--intra-op", type=int, help="TensorFlow intra-op threads (default: TensorFlow's)")
    args = parser.parse_args()
    set_threads(args.inter_op, args.intra_op)
    data_dir = resolve_data_dir(args.data_dir)
    cache_dir = Path(tempfile.mkdtemp(prefix="hh-bench-cache-"))
    bf16 = optimizer.resolve_precision("auto")
    variants = {
        "reference: tf.data from PNGs, float32, Keras RMSprop": reference_trainer(data_dir, args.seed),
        "decoded-pixel cache, float32, Keras RMSprop": our_trainer(data_dir, cache_dir, args.seed, "float32", False),
        "+ fused RMSprop, float32": our_trainer(data_dir, cache_dir, args.seed, "float32", True),
    }
    if args.explore:
        variants |= {
            f"ours ({bf16}), fed from tensors made once": our_trainer(
                data_dir, cache_dir, args.seed, bf16, True, "tensors"
            ),
            f"ours ({bf16}), steps_per_execution=8": our_trainer(data_dir, cache_dir, args.seed, bf16, True, "steps8"),
        }
    variants[f"+ {bf16} (ours, the default)"] = our_trainer(data_dir, cache_dir, args.seed, bf16, True)
    seconds, cpu, val_acc = {name: [] for name in variants}, {name: [] for name in variants}, {}
    threads = f", inter-op {args.inter_op or 'default'}, intra-op {args.intra_op or 'default'}"
    print(
        f"baseline CNN, 150x150, batch 32, {args.rounds} rounds, seed {args.seed}, {os.cpu_count()} CPU cores{threads}",
        flush=True,
    )
    for r in range(args.rounds):
        for name, fit_one in variants.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            history = fit_one(r)
            seconds[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
            val_acc[name] = history.history["val_accuracy"][-1]
        print(f"  round {r + 1}: " + "  ".join(f"{s[-1]:.2f}" for s in seconds.values()), flush=True)
    results = [
        {
            "name": name,
            "seconds": s,
            "median_seconds": steady(s),
            "min_seconds": min(s[1:] or s),
            "median_cpu_seconds": steady(cpu[name]),
            "val_accuracy": val_acc[name],
        }
        for name, s in seconds.items()
    ]
    ref = results[0]
    header = [
        "pipeline",
        "s/epoch, median (rounds 2..N)",
        "s/epoch, min",
        "speed-up (medians)",
        "speed-up (mins)",
        "CPU s/epoch, median",
        "CPU speed-up",
        "val acc after the last round",
    ]
    print(
        "\n"
        + markdown_table(
            header,
            [
                [
                    r["name"],
                    f"{r['median_seconds']:.2f}",
                    f"{r['min_seconds']:.2f}",
                    f"{ref['median_seconds'] / r['median_seconds']:.2f}x",
                    f"{ref['min_seconds'] / r['min_seconds']:.2f}x",
                    f"{r['median_cpu_seconds']:.2f}",
                    f"{ref['median_cpu_seconds'] / r['median_cpu_seconds']:.2f}x",
                    f"{r['val_accuracy']:.3f}",
                ]
                for r in results
            ],
        )
    )
    ours = results[-1]
    print(
        f"\nratio reference/ours: {ref['median_seconds'] / ours['median_seconds']:.2f}x by medians, "
        f"{ref['min_seconds'] / ours['min_seconds']:.2f}x by minima, "
        f"{ref['median_cpu_seconds'] / ours['median_cpu_seconds']:.2f}x by CPU seconds (target >= 3x)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
