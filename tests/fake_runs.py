"""Finished run directories written without training (JSON files and an empty model.keras): fast table tests."""

from pathlib import Path

from horses_humans.config import TrainConfig
from horses_humans.models.recipes import resolve
from horses_humans.runs.store import (
    CONFIG_FILE,
    ENVIRONMENT_FILE,
    HISTORY_FILE,
    LABELS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    labels_record,
    new_run_dir,
    save_json,
)


def history_of(train: float, val: float, epochs: int = 3) -> list[dict]:
    """A rising history that ends at (train, val) accuracy."""
    return [
        {
            "epoch": e,
            "accuracy": train * e / epochs,
            "val_accuracy": val * e / epochs,
            "loss": 1 / e,
            "val_loss": 1.5 / e,
            "seconds": 2.0,
        }
        for e in range(1, epochs + 1)
    ]


def write_run(runs_dir: Path, config: TrainConfig, metrics: dict | None = None, finished: bool = True) -> Path:
    """A run directory as training.train leaves it (finished=False: as an interrupted one leaves it)."""
    config = resolve(config)
    path = new_run_dir(Path(runs_dir), config)
    save_json(path, CONFIG_FILE, config.to_dict())
    save_json(path, LABELS_FILE, labels_record(["horses", "humans"], config.image_size))
    save_json(path, ENVIRONMENT_FILE, {"precision": "float32", "platform": "test-platform", "keras": "3.x"})
    if finished:
        metrics = (
            {
                "train_accuracy": 1.0,
                "val_accuracy": 0.85,
                "best_val_accuracy": 0.9,
                "mean_epoch_seconds": 2.0,
                "parameters": 1000,
            }
            if metrics is None
            else metrics
        )
        save_json(path, HISTORY_FILE, history_of(metrics.get("train_accuracy", 1.0), metrics.get("val_accuracy", 0.5)))
        save_json(path, METRICS_FILE, metrics)
        (path / MODEL_FILE).write_bytes(b"")
    return path
