"""What the per-epoch resume backup costs training: the copy it waits for vs the write a thread does meanwhile, and
Keras' own save_weights (what BackupAndRestore does each epoch, synchronously), for one recipe's compiled model.

    python bench/bench_backup.py --recipe baseline --image-size 150 --rounds 5
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from horses_humans.core import backend

backend.configure()  # before keras is imported

from timing import best_of  # noqa: E402

from horses_humans.config import TrainConfig  # noqa: E402
from horses_humans.models.outputs import ClassOutput  # noqa: E402
from horses_humans.models.recipes import build_model, resolve  # noqa: E402
from horses_humans.training.optimizer import compile_model  # noqa: E402
from horses_humans.training.resume import save_arrays, snapshot  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="baseline", help="a CNN recipe, or a transfer one with --weights none")
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    config = resolve(TrainConfig(recipe=args.recipe, image_size=args.image_size, weights="none"))
    output = ClassOutput.for_classes(["horses", "humans"])
    model = build_model(config, "float32", output)
    compile_model(model, 1e-3, output)
    model.optimizer.build(model.trainable_variables)
    arrays = snapshot(model)
    with tempfile.TemporaryDirectory() as folder:
        copy = best_of(args.rounds, lambda: snapshot(model))
        write = best_of(args.rounds, lambda: save_arrays(Path(folder) / "backup.npz", arrays))
        keras_save = best_of(args.rounds, lambda: model.save_weights(Path(folder) / "keras.weights.h5"))
    print(
        f"{args.recipe} at {args.image_size} px: {sum(a.nbytes for a in arrays) / 1e6:.0f} MB of weights and "
        f"optimizer state, best of {args.rounds}:"
    )
    print(f"  copy (training waits)       {copy:.3f} s")
    print(f"  write (a thread, meanwhile) {write:.3f} s")
    print(f"  Keras save_weights          {keras_save:.3f} s  ({keras_save / copy:.1f}x the copy)")


if __name__ == "__main__":
    main()
