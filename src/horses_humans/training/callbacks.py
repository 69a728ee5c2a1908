"""Keras callbacks of a run: the epoch recorder (history.json, one line per epoch), the per-batch bar, the best
epoch's weights, and the optional early stopping and learning-rate schedule."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from ..config import TrainConfig
from ..core.progress import ProgressBar, draws
from ..runs.store import CHECKPOINT_MONITOR, HISTORY_FILE, save_json
from .tracking import tensorboard_callback


class EpochRecorder(keras.callbacks.Callback):
    """Times each epoch (training + validation), prints one line per epoch, saves history atomically and hands each
    epoch's row to the listeners (e.g. MLflow). It goes to every fit of a run, with the observers: Keras callbacks
    that watch training without changing it (the per-batch bar, TensorBoard)."""

    def __init__(
        self,
        run_dir: Path,
        epochs: int,
        log: Callable[[str], None],
        listeners: Sequence[Callable[[dict], None]] = (),
        observers: Sequence = (),
    ):
        super().__init__()
        self.run_dir, self.epochs, self.log = run_dir, epochs, log
        self.listeners, self.observers = list(listeners), list(observers)
        self.history: list[dict] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}, "seconds": round(seconds, 3)}
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.history.append(row)
        save_json(self.run_dir, HISTORY_FILE, self.history)
        for listener in self.listeners:
            listener(row)
        self.log(
            f"epoch {epoch + 1:>3}/{self.epochs}  loss {row.get('loss', 0):.4f}  acc {row.get('accuracy', 0):.4f}  "
            f"val_loss {row.get('val_loss', 0):.4f}  val_acc {row.get('val_accuracy', 0):.4f}  {seconds:.1f}s"
        )


class BatchProgress(keras.callbacks.Callback):
    """A per-batch bar for each epoch, erased when the epoch ends (its one summary line stays)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self.bar = ProgressBar("")

    def on_epoch_begin(self, epoch, logs=None):
        self.bar = ProgressBar(f"epoch {epoch + 1}/{self.epochs}", transient=True)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        note = f"  loss {float(loss):.4f}" if loss is not None else ""
        self.bar(batch + 1, self.params.get("steps"), f"{self.bar.description}{note}")

    def on_epoch_end(self, epoch, logs=None):
        self.bar.close()


class BestWeights(keras.callbacks.Callback):
    """Keeps in memory the whole model's weights at the epoch with the highest CHECKPOINT_MONITOR (ties keep the
    earlier epoch), across every fit of a run (head, then fine-tuning): finish_run saves them as model-best.keras.
    It watches the whole model even while only its head is fitted (the head's weights are the model's)."""

    def __init__(self, whole_model, monitor: str = CHECKPOINT_MONITOR):
        super().__init__()
        self.whole, self.monitor = whole_model, monitor
        self.best, self.epoch, self.weights = -np.inf, None, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and float(value) > self.best:  # strictly better: a tie keeps the earlier epoch
            self.best, self.epoch, self.weights = float(value), epoch + 1, self.whole.get_weights()


def observers(run_dir: Path, epochs: int, tensorboard: bool) -> list:
    """Keras callbacks that watch a run: per-batch progress on a terminal only, TensorBoard logs if asked."""
    found = [BatchProgress(epochs)] if draws() else []  # off a terminal, not even the per-batch hook
    return found + ([tensorboard_callback(run_dir)] if tensorboard else [])


def build_callbacks(config: TrainConfig, recorder: EpochRecorder) -> list:
    """The recorder and its observers, plus the optional reference 'future improvements' callbacks."""
    callbacks = [recorder, *recorder.observers]
    if config.early_stopping:
        # The final stage restores nothing, so model.keras is the last epoch (BestWeights keeps the best, same monitor);
        # a stage that fine-tuning follows (called before any epoch is recorded) still restores its best, as before.
        restore = bool(config.fine_tune_from) and not recorder.history
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor=CHECKPOINT_MONITOR, patience=3, restore_best_weights=restore)
        )
    if config.reduce_lr:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=2))
    return callbacks


def with_extra(callbacks: list, extra: Sequence) -> list:
    """callbacks, then the extra ones (the resume backup), each told the callbacks whose counters it backs up."""
    return [*callbacks, *(e.watch(callbacks) if hasattr(e, "watch") else e for e in extra)]
