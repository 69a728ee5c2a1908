"""Fit a recipe on the data set and write a run directory (model, config, history, metrics, labels)."""

from __future__ import annotations

import functools
import hashlib
import logging
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

import keras
import numpy as np

from .. import __version__
from ..config import HorsesHumansError, TrainConfig, resolve_data_dir
from ..core.progress import ProgressBar, draws
from ..data.datasets import CLASS_FOLDERS, DataSet, Split, find_dataset, joined, load_extra, load_files
from ..inference.calibration import calibrate_run
from ..inference.predictor import refit_unsure, score_checkpoints
from ..inference.unsure import NEITHER
from ..models.outputs import SIGMOID, SOFTMAX, ClassOutput
from ..models.recipes import build_model, get_recipe, resolve
from ..runs import schema as runschema
from ..runs.record import data_record
from ..runs.store import (
    BEST_MODEL_FILE,
    CHECKPOINT_FILES,
    CHECKPOINT_MONITOR,
    CHECKPOINT_RULE,
    CONFIG_FILE,
    DATA_FILE,
    DEFAULT_CHECKPOINT,
    ENVIRONMENT_FILE,
    HISTORY_FILE,
    LABELS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    labels_record,
    new_run_dir,
    read_data_record,
    read_json,
    save_json,
    save_model,
)
from .devices import DeviceSet, auto_precision, compile_scope, describe, devices_record, distribution, select_devices
from .features import cached_features
from .resume import Backup, clean_run_dir, resumable_config
from .tracking import MlflowTracker, require, tensorboard_callback

logger = logging.getLogger(__name__)


def cpu_has_bf16() -> bool:
    """True where the CPU has bfloat16 units (AVX512-BF16 or AMX), which make mixed_bfloat16 pay off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, devices: DeviceSet | None = None) -> str:
    """auto -> devices.auto_precision's pick for the devices (default: the first GPU, else the CPU): mixed precision
    on GPUs by compute capability; on CPUs mixed_bfloat16 with bf16 units, else float32."""
    if precision != "auto":
        return precision
    devices = devices or select_devices(None)
    return auto_precision(devices, devices.kind == "CPU" and cpu_has_bf16())


class FusedRMSprop(keras.optimizers.RMSprop):
    """RMSprop whose update is TensorFlow's fused ResourceApplyRMSProp kernel.

    Keras' generic RMSprop makes about ten passes over each variable per step; for the baseline's
    9.5M-weight dense layer that memory traffic is a large share of a CPU training step. The fused
    kernel computes the same update (ms = rho*ms + (1-rho)*g^2; var -= lr*g/sqrt(ms+eps)) in one pass.
    Used only on the TensorFlow backend without momentum/centering; elsewhere plain RMSprop is used.
    It reads Keras internals (FUSED_RMSPROP_NEEDS), so make_optimizer checks them before each use.
    """

    def build(self, var_list):
        super().build(var_list)
        self._steps = [self.add_variable_from_reference(v, "step") for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        i = self._get_variable_index(variable)
        handle = lambda v: v.handle if isinstance(v, tf.Variable) else v.value.handle  # noqa: E731
        dtype = variable.dtype
        tf.raw_ops.ResourceApplyRMSProp(
            var=handle(variable),
            ms=handle(self._velocities[i]),
            mom=handle(self._steps[i]),
            lr=tf.cast(learning_rate, dtype),
            rho=tf.cast(self.rho, dtype),
            momentum=tf.constant(0.0, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


# What FusedRMSprop reads of Keras' RMSprop beyond its public API; a Keras release may rename any of them.
FUSED_RMSPROP_NEEDS = ("add_variable_from_reference", "_get_variable_index", "_velocities")


def missing_internals(optimizer_class) -> list[str]:
    """The FUSED_RMSPROP_NEEDS this Keras lacks, found on an instance built for one 1-element variable."""
    probe = optimizer_class()
    try:
        probe.build([keras.Variable(np.zeros(1, "float32"))])
    except AttributeError as error:  # build() itself calls add_variable_from_reference
        return [error.name or str(error)]
    return [name for name in FUSED_RMSPROP_NEEDS if not hasattr(probe, name)]


@functools.cache
def fused_supported(optimizer_class) -> bool:
    """True when optimizer_class can run on this Keras; else logs one warning (cached: once per process)."""
    missing = missing_internals(optimizer_class)
    if missing:
        logger.warning(
            "keras %s lacks %s, which the fused RMSprop reads: training with Keras' RMSprop (same update, "
            "slower); scripts/setup.sh installs the tested keras (constraints.txt)",
            keras.__version__,
            ", ".join(missing),
        )
    return not missing


def make_optimizer(learning_rate, fused=FusedRMSprop):
    """RMSprop, the reference's optimizer for every model: the fused kernel where the backend and Keras allow it."""
    if keras.backend.backend() == "tensorflow" and fused_supported(fused):
        return fused(learning_rate)
    return keras.optimizers.RMSprop(learning_rate)


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


def training_precision(config: TrainConfig, transfer: bool, devices: DeviceSet | None = None) -> str:
    """The dtype policy to train in: transfer models default to float32 (their heads train on cached
    float32 features; bfloat16 would only blur those features); CNNs use resolve_precision."""
    if config.precision == "auto" and transfer:
        return "float32"
    return resolve_precision(config.precision, devices)


LOSSES = {SIGMOID: "binary_crossentropy", SOFTMAX: "sparse_categorical_crossentropy"}  # by output kind


def compile_model(model, learning_rate: float, output: ClassOutput) -> None:
    """RMSprop (fused where possible), cross-entropy for the output kind, accuracy: every recipe trains this way.
    Keras resolves "accuracy" from the shapes: BinaryAccuracy for one sigmoid unit, SparseCategoricalAccuracy for
    a softmax with integer labels."""
    with compile_scope(model):  # a model built under a MirroredStrategy gets mirrored optimizer variables
        model.compile(optimizer=make_optimizer(learning_rate), loss=LOSSES[output.kind], metrics=["accuracy"])


def arrays(split: Split, x=None) -> tuple:
    """(inputs, labels) of a split: float32 labels for a sigmoid (as the reference), int32 class indices for a
    softmax; inputs are its pixels unless given (e.g. backbone features)."""
    labels = split.y.astype("float32" if class_output(split).kind == SIGMOID else "int32")
    return np.asarray(split.x if x is None else x), labels


def class_output(split: Split) -> ClassOutput:
    """How a model trained on this split's classes reads its output."""
    return ClassOutput.for_classes(split.class_names)


def class_weights(mode: str, labels) -> dict[int, float] | None:
    """{class index: weight} for --class-weight: balanced gives each class the same total weight
    (images / (classes * images of the class)); none gives None (every image weighs 1)."""
    if mode != "balanced":
        return None
    classes, counts = np.unique(np.asarray(labels).astype(int), return_counts=True)
    return {int(c): float(len(labels) / (len(classes) * n)) for c, n in zip(classes, counts)}


def fit_arrays(model, config: TrainConfig, train: tuple, val: tuple, callbacks: list, initial_epoch: int, epochs: int):
    """Fit a compiled model on in-memory (inputs, labels), reshuffled every epoch, validating every epoch."""
    return model.fit(
        *train,
        batch_size=config.batch_size,
        epochs=epochs,
        initial_epoch=initial_epoch,
        validation_data=val,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
        class_weight=class_weights(config.class_weight, train[1]),
    )


def fit_pixels(
    model,
    config: TrainConfig,
    learning_rate: float,
    train: Split,
    val: Split,
    recorder,
    epochs: int,
    extra: Sequence = (),
) -> None:
    """Compile and fit a whole model on pixels up to epoch `epochs`, continuing the epoch count of earlier stages
    (extra: callbacks that run last, e.g. the resume backup)."""
    compile_model(model, learning_rate, class_output(train))
    fit_arrays(
        model,
        config,
        arrays(train),
        arrays(val),
        with_extra(build_callbacks(config, recorder), extra),
        len(recorder.history),
        epochs,
    )


def fit_head(
    model,
    config: TrainConfig,
    train: Split,
    val: Split,
    recorder,
    cache_dir,
    log,
    epochs: int | None = None,
    extra: Sequence = (),
) -> None:
    """Train only the head of a frozen-backbone model on cached backbone features, up to epoch `epochs` (default
    config.epochs)."""
    recipe = get_recipe(config.recipe)
    head = recipe.head_layer(model)
    compile_model(head, config.learning_rate, class_output(train))
    fit_arrays(
        head,
        config,
        arrays(train, cached_features(recipe, model, train, cache_dir, log)),
        arrays(val, cached_features(recipe, model, val, cache_dir, log)),
        with_extra(build_callbacks(config, recorder), extra),
        len(recorder.history),
        config.epochs if epochs is None else epochs,
    )


def with_extra(callbacks: list, extra: Sequence) -> list:
    """callbacks, then the extra ones (the resume backup), each told the callbacks whose counters it backs up."""
    return [*callbacks, *(e.watch(callbacks) if hasattr(e, "watch") else e for e in extra)]


def unfreeze(backbone, start: str) -> int:
    """Make the backbone trainable from layer `start` (a name, or the top N layers if a number) up;
    BatchNormalization layers stay frozen (and in inference mode). Returns the number unfrozen."""
    names = [layer.name for layer in backbone.layers]
    if start.isdigit():
        first = max(0, len(names) - int(start))
    elif start in names:
        first = names.index(start)
    else:
        raise HorsesHumansError(
            f"--fine-tune-from {start!r}: no such layer in the backbone "
            f"(e.g. {', '.join(names[-40::8])}), or give a number of top layers."
        )
    backbone.trainable = True
    for i, layer in enumerate(backbone.layers):
        layer.trainable = i >= first and not isinstance(layer, keras.layers.BatchNormalization)
    return sum(1 for layer in backbone.layers if layer.trainable and layer.weights)


def train(
    config: TrainConfig,
    data_dir: Path,
    runs_dir: Path,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
    tensorboard: bool = False,
    mlflow: bool = False,
    resume: Path | None = None,
) -> Path:
    """Train one recipe and return its run directory (with TensorBoard logs in it, and an MLflow run, if asked);
    resume: an interrupted run directory of this config to continue from its last completed epoch."""
    config = resolve(config)
    recipe = get_recipe(config.recipe)
    if config.fine_tune_from and not recipe.transfer:
        raise HorsesHumansError(f"--fine-tune-from applies to transfer recipes, not {config.recipe!r}.")
    if tensorboard:
        require("tensorboard", "tensorboard", "--tensorboard")  # a missing extra fails before the data loads
    tracker = MlflowTracker(runs_dir) if mlflow else None
    devices = select_devices(config.devices)  # a bad --devices fails before the data loads
    dataset = find_dataset(Path(data_dir), config.val_split, config.seed)
    # --extra-data folders join the training side; a `neither` folder among them adds that class (the unsure answer)
    names, extra = load_extra(config.extra_data, dataset.class_names, config.image_size, cache_dir, log, (NEITHER,))
    train_split, val_split = (
        load_files(dataset.sides[side], names, config.image_size, cache_dir, log) for side in ("train", "validation")
    )
    fit_split = joined("train", [train_split, *extra])
    keras.utils.set_random_seed(config.seed)
    precision = training_precision(config, recipe.transfer, devices)
    model = build_on(devices, config, precision, class_output(train_split))
    run_dir = (
        reopen_run_dir(Path(resume), config, dataset, train_split, val_split, precision, devices, extra)
        if resume
        else start_run_dir(config, runs_dir, dataset, train_split, val_split, precision, devices, extra)
    )
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    log(
        f"run {run_dir}: {config.recipe}, {model.count_params():,} parameters ({trainable:,} trainable), "
        f"{len(fit_split)} train / {len(val_split)} validation images at {config.image_size}px, {precision}, seed "
        f"{config.seed}"
    )
    log_data(dataset, fit_split, config, log)
    log_devices(devices, log)
    total = config.epochs + (config.fine_tune_epochs if config.fine_tune_from else 0)
    with tracker.run(run_dir, config) if tracker else nullcontext() as listener:
        listeners = [listener] if listener else []
        best = BestWeights(model)
        recorder = EpochRecorder(run_dir, total, log, listeners, [*observers(run_dir, total, tensorboard), best])
        backup = Backup(run_dir, best)
        backup.restore(recorder, best)
        if backup.epochs:
            log(f"resuming after epoch {backup.epochs} of {total} (backed up in {backup.folder})")
        seconds = fit_stages(model, config, recipe.transfer, fit_split, val_split, recorder, cache_dir, log, backup)
        metrics = finish_run(
            run_dir, model, config, recorder, fit_split.skipped + val_split.skipped, trainable, seconds, best
        )
        clean_run_dir(run_dir)  # finished: the backup and any temporary file a killed attempt left
    log(refit_unsure(run_dir, cache_dir=cache_dir, log=log))  # on the served checkpoint's calibrated probabilities
    log(
        f"done: val_accuracy {metrics['val_accuracy']:.4f} (best {metrics['best_val_accuracy']:.4f} at epoch "
        f"{metrics['best_epoch']}, saved as {BEST_MODEL_FILE}), {metrics['mean_epoch_seconds']:.2f} s/epoch, "
        f"{seconds:.1f} s in all -> {run_dir}"
    )
    write_card(run_dir, log)
    return run_dir


def build_on(devices: DeviceSet, config: TrainConfig, precision: str, output: ClassOutput):
    """The recipe's model, built in the distribution that trains it on all of `devices` (see devices.distribution)."""
    with distribution(devices):
        return build_model(config, precision, output)


def log_devices(devices: DeviceSet, log) -> None:
    """One line on the devices, where it says more than 'the CPU' (GPUs, or several devices)."""
    if devices.kind != "CPU" or devices.replicas > 1:
        log(f"devices {describe(devices, keras.backend.backend())}")


def write_card(run_dir: Path, log) -> None:
    """RUN/MODEL_CARD.md from what the run wrote."""
    from ..runs.modelcard import write_model_card

    log(f"wrote {write_model_card(run_dir)}")


def start_run_dir(
    config: TrainConfig,
    runs_dir: Path,
    dataset: DataSet,
    train: Split,
    val: Split,
    precision: str,
    devices: DeviceSet | None = None,
    extra: list[Split] = (),
) -> Path:
    """A new run directory with what is known before training: config, labels, environment and the data it uses."""
    run_dir = new_run_dir(runs_dir, config)
    save_json(run_dir, CONFIG_FILE, config.to_dict())
    save_json(run_dir, LABELS_FILE, labels_record(train.class_names, config.image_size))
    save_json(run_dir, ENVIRONMENT_FILE, environment_record(train, val, precision, dataset.root, devices))
    save_json(run_dir, DATA_FILE, data_record(dataset, {"train": train, "validation": val}, config, extra))
    return run_dir


def log_data(dataset: DataSet, train: Split, config: TrainConfig, log) -> None:
    """One line on the data: layout, classes, how the validation split was made; the class weights if any."""
    made = (
        f", validation: {config.val_split:g} of each class (seed {config.seed})"
        if dataset.layout == CLASS_FOLDERS
        else ""
    )
    log(
        f"data {dataset.root}: {dataset.layout} layout, {len(train.class_names)} classes "
        f"({', '.join(train.class_names)}){made}"
    )
    for folder in config.extra_data:
        log(f"extra training data: {folder}")
    weights = class_weights(config.class_weight, train.y)
    if weights:
        log("class weights: " + ", ".join(f"{train.class_names[c]} {w:.3f}" for c, w in weights.items()))


def fit_stages(
    model,
    config: TrainConfig,
    transfer: bool,
    train_split: Split,
    val_split: Split,
    recorder,
    cache_dir,
    log,
    backup: Backup,
) -> float:
    """The head on cached features (frozen transfer models) or the whole model on pixels, then the optional
    fine-tuning, each backed up after every epoch; a resumed run skips the stages that finished and continues the
    one that was running. Returns the seconds it took."""
    started = time.perf_counter()
    done = len(recorder.history)
    if not backup.superseded(1):
        end, extra = backup.end(1, 0, config.epochs, done), [backup.callback(1, 0, done)]
        if transfer and not config.augment:
            fit_head(model, config, train_split, val_split, recorder, cache_dir, log, end, extra)
        else:
            fit_pixels(model, config, config.learning_rate, train_split, val_split, recorder, end, extra)
    if config.fine_tune_from:
        n = unfreeze(get_recipe(config.recipe).backbone_layer(model), config.fine_tune_from)
        rate = config.fine_tune_learning_rate or config.learning_rate / 10
        log(f"fine-tuning {n} backbone layers from {config.fine_tune_from!r} at learning rate {rate:g}")
        done = len(recorder.history)
        start = backup.stage_start(2, done)
        fit_pixels(
            model,
            config,
            rate,
            train_split,
            val_split,
            recorder,
            backup.end(2, start, config.fine_tune_epochs, done),
            [backup.callback(2, start, done)],
        )
    return time.perf_counter() - started


def resume_run(
    run_dir: Path,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
    tensorboard: bool = False,
    mlflow: bool = False,
) -> Path:
    """Continue an interrupted run from its last completed epoch, with its recorded config, in its recorded data
    folder unless data_dir is given; returns the run directory, then finished."""
    run_dir = Path(run_dir)
    config = resumable_config(run_dir)
    data_dir = data_dir or read_data_record(run_dir).get("data_dir") or resolve_data_dir(None)
    return train(config, Path(data_dir), run_dir.parent, cache_dir, log, tensorboard, mlflow, resume=run_dir)


def reopen_run_dir(
    run_dir: Path,
    config: TrainConfig,
    dataset: DataSet,
    train: Split,
    val: Split,
    precision: str,
    devices: DeviceSet | None = None,
    extra: list[Split] = (),
) -> Path:
    """An interrupted run directory, checked to be training on the same files; what start_run_dir had not written
    yet is written now."""
    environment = environment_record(train, val, precision, dataset.root, devices)
    recorded = read_json(run_dir, ENVIRONMENT_FILE, runschema.ENVIRONMENT, {}).get("data_manifest_sha256")
    if recorded and recorded != environment["data_manifest_sha256"]:
        raise HorsesHumansError(
            f"{run_dir / ENVIRONMENT_FILE}: the images in {dataset.root} are not the ones this run "
            "started on; resume it on its own data (--data-dir), or start a new run."
        )
    records = {
        LABELS_FILE: lambda: labels_record(train.class_names, config.image_size),
        ENVIRONMENT_FILE: lambda: environment,
        DATA_FILE: lambda: data_record(dataset, {"train": train, "validation": val}, config, extra),
    }
    for name, record in records.items():
        if not (run_dir / name).exists():
            save_json(run_dir, name, record())
    return run_dir


def finish_run(
    run_dir: Path,
    model,
    config: TrainConfig,
    recorder,
    skipped: list[dict],
    trainable: int,
    seconds: float,
    best: BestWeights | None = None,
) -> dict:
    """Save the float32 last and best checkpoints, then metrics.json, which makes the run directory a finished run;
    returns the metrics."""
    last_epoch = len(recorder.history)
    best_epoch = save_checkpoints(run_dir, model, config, best, last_epoch)
    metrics = summarize(recorder.history, skipped, model.count_params())
    metrics.update(
        trainable_parameters=trainable,
        train_seconds=round(seconds, 2),
        checkpoints=score_checkpoints(run_dir, checkpoints_record(recorder.history, best_epoch), lambda line: None),
    )
    save_json(run_dir, METRICS_FILE, metrics)
    calibrate_run(run_dir, log=lambda line: None)  # the saved model's validation probabilities -> calibration.json
    return metrics


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
