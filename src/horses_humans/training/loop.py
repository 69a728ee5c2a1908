"""Fit a recipe on the data set and write a run directory (model, config, history, metrics, labels)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import keras
import numpy as np

from ..config import HorsesHumansError, TrainConfig, resolve_data_dir
from ..data.datasets import CLASS_FOLDERS, DataSet, Split, find_dataset, joined, load_extra, load_files
from ..inference.calibration import calibrate_run
from ..inference.predictor import refit_unsure
from ..inference.unsure import NEITHER
from ..models.outputs import ClassOutput
from ..models.recipes import build_model, get_recipe, resolve
from ..runs import schema as runschema
from ..runs.record import data_record
from ..runs.store import (
    BEST_MODEL_FILE,
    CONFIG_FILE,
    DATA_FILE,
    ENVIRONMENT_FILE,
    LABELS_FILE,
    METRICS_FILE,
    labels_record,
    new_run_dir,
    read_data_record,
    read_json,
    save_json,
)
from .callbacks import BestWeights, EpochRecorder, observers
from .devices import DeviceSet, describe, distribution, select_devices
from .optimizer import training_precision
from .records import checkpoints_record, environment_record, save_checkpoints, summarize
from .resume import Backup, clean_run_dir, resumable_config
from .stages import class_output, class_weights, fit_stages
from .tracking import MlflowTracker, require


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


def build_on(devices: DeviceSet, config: TrainConfig, precision: str, output: ClassOutput):
    """The recipe's model, built in the distribution that trains it on all of `devices` (see devices.distribution)."""
    with distribution(devices):
        return build_model(config, precision, output)


def log_devices(devices: DeviceSet, log) -> None:
    """One line on the devices, where it says more than 'the CPU' (GPUs, or several devices)."""
    if devices.kind != "CPU" or devices.replicas > 1:
        log(f"devices {describe(devices, keras.backend.backend())}")


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
        checkpoints=checkpoints_record(recorder.history, best_epoch),
    )
    save_json(run_dir, METRICS_FILE, metrics)
    calibrate_run(run_dir, log=lambda line: None)  # the saved model's validation probabilities -> calibration.json
    return metrics
