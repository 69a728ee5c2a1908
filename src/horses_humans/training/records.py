"""What a run records of itself: environment.json, the metrics summary, the float32 checkpoints and which epoch
each holds."""

from __future__ import annotations

import hashlib
import platform
import shutil
import sys
from pathlib import Path

import keras
import numpy as np

from .. import __version__
from ..config import TrainConfig
from ..data.pixels import Split
from ..models.recipes import build_model
from ..runs.store import (
    BEST_MODEL_FILE,
    CHECKPOINT_FILES,
    CHECKPOINT_MONITOR,
    CHECKPOINT_RULE,
    DEFAULT_CHECKPOINT,
    MODEL_FILE,
    save_model,
)
from .callbacks import BestWeights
from .devices import DeviceSet, devices_record


def environment_record(
    train: Split, val: Split, precision: str, data_dir: Path, devices: DeviceSet | None = None
) -> dict:
    """Versions, precision, the devices trained on and a hash of the exact data the run saw."""
    import PIL

    digest = hashlib.sha256()
    for split in (train, val):
        digest.update("\n".join(split.files).encode())
    return {
        "horses_humans": __version__,
        "python": sys.version.split()[0],
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "backend_version": backend_version(),
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "platform": platform.platform(),
        "precision": precision,
        "data_dir": str(Path(data_dir).resolve()),
        "data_manifest_sha256": digest.hexdigest(),
        "train_images": len(train),
        "validation_images": len(val),
        **(devices_record(devices, keras.backend.backend()) if devices else {}),
    }


def backend_version() -> str:
    """The version of the backend library in use."""
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(keras.backend.backend())
    return getattr(sys.modules.get(module) or __import__(module), "__version__", "?") if module else "?"


def summarize(history: list[dict], skipped: list[dict], params: int) -> dict:
    """metrics.json: final and best accuracies, seconds per epoch, skipped files."""
    final = history[-1]
    return {
        "train_accuracy": final.get("accuracy"),
        "train_loss": final.get("loss"),
        "val_accuracy": final.get("val_accuracy"),
        "val_loss": final.get("val_loss"),
        "best_val_accuracy": max(h.get("val_accuracy", 0.0) for h in history),
        "best_epoch": 1 + int(np.argmax([h.get("val_accuracy", 0.0) for h in history])),
        "epochs_run": len(history),
        "epoch_seconds": [h["seconds"] for h in history],
        "mean_epoch_seconds": float(np.mean([h["seconds"] for h in history[1:] or history])),
        "parameters": params,
        "skipped_files": len(skipped),
        "skipped": skipped,
    }


def inference_copy(model, config: TrainConfig, weights: list | None = None):
    """The same network, freshly built in float32 and uncompiled, with the trained weights: what gets saved.

    Saving the trained object itself would carry its (bfloat16) dtype policies and its compiled
    optimizer, which `keras.saving.load_model` could not rebuild without importing this module.
    """
    import dataclasses

    classes = max(2, model.outputs[0].shape[-1])  # the same output layer: one sigmoid unit is two classes
    clean = build_model(dataclasses.replace(config, weights="none"), "float32", classes)  # every weight is overwritten
    clean.set_weights(model.get_weights() if weights is None else weights)
    return clean


def save_checkpoints(run_dir: Path, model, config: TrainConfig, best: BestWeights | None, last_epoch: int) -> int:
    """model.keras (the last epoch) and model-best.keras (the best epoch: a copy of the file when it is the last);
    returns the best epoch."""
    save_model(run_dir, inference_copy(model, config))
    if best is None or best.weights is None or best.epoch == last_epoch:
        shutil.copyfile(Path(run_dir) / MODEL_FILE, Path(run_dir) / BEST_MODEL_FILE)  # both files hold one epoch
        return last_epoch if best is None or best.epoch is None else best.epoch
    save_model(run_dir, inference_copy(model, config, best.weights), BEST_MODEL_FILE)
    return best.epoch


def checkpoints_record(history: list[dict], best_epoch: int) -> dict:
    """metrics.json's "checkpoints": which epoch each file holds, its validation numbers, and the selection rule."""

    def entry(name: str, epoch: int) -> dict:
        row = history[epoch - 1]
        return {
            "file": CHECKPOINT_FILES[name],
            "epoch": epoch,
            "val_accuracy": row.get("val_accuracy"),
            "val_loss": row.get("val_loss"),
        }

    return {
        "monitor": CHECKPOINT_MONITOR,
        "rule": CHECKPOINT_RULE,
        "default": DEFAULT_CHECKPOINT,
        "best": entry("best", best_epoch),
        "last": entry("last", len(history)),
    }
