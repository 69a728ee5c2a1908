"""Fit a recipe on the data set and write a run directory (model, config, history, metrics, labels)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import keras
import numpy as np

from ..config import HorsesHumansError, TrainConfig
from ..core.workspace import Workspace, quiet
from ..data.files import unrecordable_folder
from ..data.layouts import CLASS_FOLDERS, DataSet, find_dataset
from ..data.pixels import Split, find_extra, joined, load_files
from ..data.reject import reject_class_of
from ..inference.calibration import calibrate_run
from ..inference.predictor import refit_unsure, score_checkpoints
from ..models.outputs import ClassOutput
from ..models.recipes import Recipe, build_model, get_recipe, resolve
from ..models.weights import resolve_weights
from ..runs import schema as runschema
from ..runs.names import check_run_name, named_run_dir
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
from .distance import fit_distance_gate
from .optimizer import training_precision
from .plan import plan_stages, total_epochs
from .records import checkpoints_record, environment_record, save_checkpoints, summarize
from .resume import Backup, clean_run_dir, resumable_config
from .stages import Fitting, class_output, class_weights, fit_stages
from .tracking import MlflowTracker, require


@dataclasses.dataclass(frozen=True)
class RunData:
    """The images a run trains on, loaded: the data set, its training and validation splits, the --extra-data
    splits, and what the model is fitted on (the training split joined with the extra ones)."""

    dataset: DataSet
    train: Split
    val: Split
    extra: tuple[Split, ...]
    fit: Split

    @property
    def skipped(self) -> list[dict]:
        """The files of the fit and validation splits that could not be decoded."""
        return self.fit.skipped + self.val.skipped


def train(
    config: TrainConfig,
    workspace: Workspace,
    tensorboard: bool = False,
    mlflow: bool = False,
    resume: Path | None = None,
    name: str | None = None,
) -> Path:
    """Train one recipe on the workspace's data and return its run directory under the workspace's runs folder (with
    TensorBoard logs in it, and an MLflow run, if asked); resume: an interrupted run directory of this config to
    continue from its last completed epoch; name: the run folder's name (NAME-2, ... when taken; default
    RECIPE-SIZE-sSEED-TIMESTAMP)."""
    config, log = resolve(config), workspace.log
    if name is not None:
        check_run_name(name)  # a bad name fails before the data loads
    recipe = checked_recipe(config, tensorboard)
    tracker = MlflowTracker(workspace.runs_dir) if mlflow else None
    devices = select_devices(config.devices)  # a bad --devices fails before the data loads
    data = load_data(config, workspace)
    keras.utils.set_random_seed(config.seed)
    precision = training_precision(config, recipe.transfer, devices)
    model = build_on(devices, config, precision, class_output(data.train))
    run_dir = (
        reopen_run_dir(Path(resume), config, data, precision, devices)
        if resume
        else start_run_dir(config, workspace.runs_dir, data, precision, devices, name)
    )
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)  # before fine-tuning unfreezes any
    log(
        f"run {run_dir}: {config.recipe}, {model.count_params():,} parameters ({trainable:,} trainable), "
        f"{len(data.fit)} train / {len(data.val)} validation images at {config.image_size}px ({config.resize}), "
        f"{precision}, seed {config.seed}"
    )
    log_data(data, config, log)
    log_devices(devices, log)
    total = total_epochs(plan_stages(config, recipe.transfer))
    with tracker.run(run_dir, config) if tracker else nullcontext() as listener:
        best = BestWeights(model)
        recorder = EpochRecorder(
            run_dir, total, log, [listener] if listener else [], [*observers(run_dir, total, tensorboard), best]
        )
        fitting = Fitting(model, config, recorder, Backup(run_dir, best), best)
        restore_backup(fitting, total, log)
        seconds = fit_stages(fitting, data.fit, data.val, workspace)
        metrics = finish_run(fitting, data, trainable, seconds, workspace)
        clean_run_dir(run_dir)  # finished: the backup and any temporary file a killed attempt left
    # the unsure rule, on the served checkpoint's calibrated probabilities of the validation split
    log(refit_unsure(run_dir, cache_dir=workspace.cache_dir, log=log))
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
    data_dir = data_dir or read_data_record(run_dir).get("data_dir")
    workspace = Workspace.from_env(data_dir, run_dir.parent, cache_dir, log)
    return train(config, workspace, tensorboard, mlflow, resume=run_dir)


def checked_recipe(config: TrainConfig, tensorboard: bool) -> Recipe:
    """The config's recipe, once the options that need something it or this install lacks have been checked."""
    recipe = get_recipe(config.recipe)
    if config.distance_unsure and not recipe.transfer:
        raise HorsesHumansError(
            f"--distance-unsure measures distances on a pretrained backbone's features: use a transfer recipe "
            f"(recommended, mobilenet_v2, inception_v3), not {config.recipe!r}."
        )
    if config.fine_tune_from and not recipe.transfer:
        raise HorsesHumansError(f"--fine-tune-from applies to transfer recipes, not {config.recipe!r}.")
    if tensorboard:
        require("tensorboard", "tensorboard", "--tensorboard")  # a missing extra fails before the data loads
    if recipe.transfer:  # missing ImageNet weights (offline, not installed) fail before the data loads too
        resolve_weights(recipe.backbone.name, config.weights, config.alpha)
    return recipe


SIDES = ("train", "validation")


def load_data(config: TrainConfig, workspace: Workspace) -> RunData:
    """The workspace's data set, split and decoded (through its cache) at the config's image size and resize, with the
    --extra-data folders; a --reject-class folder among them adds that class (the unsure answer). A --reject-class
    that names no class folder fails here, before any image is decoded."""
    check_recordable(workspace.data_dir, config.extra_data)
    dataset = find_dataset(Path(workspace.data_dir), config.val_split, config.seed)
    size, cache, log = config.image_size, workspace.cache_dir, workspace.log
    names, extra_files = find_extra(config.extra_data, dataset.class_names, (config.reject_class,))
    reject_class_of(config.reject_class, names, dataset.root)
    extra = [load_files(files, names, size, cache, log, config.resize) for files in extra_files]
    train, val = (load_files(dataset.sides[side], names, size, cache, log, config.resize) for side in SIDES)
    return RunData(dataset, train, val, tuple(extra), joined("train", [train, *extra]))


def check_recordable(data_dir: Path, extra_folders) -> None:
    """A data or --extra-data folder whose path the run's records cannot hold (not valid UTF-8) fails here, before
    any image is decoded or the run folder is made (else the run would be found damaged once trained)."""
    roles = [(data_dir, "data folder"), *((folder, "--extra-data folder") for folder in extra_folders)]
    for folder, role in roles:
        problem = unrecordable_folder(folder, role)
        if problem:
            raise HorsesHumansError(f"{problem}.")


def restore_backup(fitting: Fitting, total: int, log) -> None:
    """Put an interrupted run's backed-up epochs back into the recorder and best weights, saying so."""
    backup = fitting.backup
    backup.restore(fitting.recorder, fitting.best)
    if backup.epochs:
        log(f"resuming after epoch {backup.epochs} of {total} (backed up in {backup.folder})")


def build_on(devices: DeviceSet, config: TrainConfig, precision: str, output: ClassOutput):
    """The recipe's model, built in the distribution that trains it on all of `devices` (see devices.distribution)."""
    with distribution(devices):
        return build_model(config, precision, output)


def log_devices(devices: DeviceSet, log) -> None:
    """One line on the devices, where it says more than 'the CPU' (GPUs, or several devices)."""
    if devices.kind != "CPU" or devices.replicas > 1:
        log(f"devices {describe(devices, keras.backend.backend())}")


def log_data(data: RunData, config: TrainConfig, log) -> None:
    """One line on the data: layout, classes, how the validation split was made; the class weights if any."""
    dataset, train = data.dataset, data.fit
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
    if config.reject_class in train.class_names:
        log(f"none of these: the {config.reject_class!r} images teach the unsure answer (never a label)")
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
    data: RunData,
    precision: str,
    devices: DeviceSet | None = None,
    name: str | None = None,
) -> Path:
    """A new run directory (named `name`, else after the config) with what is known before training: config, labels,
    environment and the data it uses."""
    run_dir = named_run_dir(runs_dir, name) if name else new_run_dir(runs_dir, config)
    save_json(run_dir, CONFIG_FILE, config.to_dict())
    for name, record in run_records(config, data, precision, devices).items():
        save_json(run_dir, name, record())
    return run_dir


def run_records(config: TrainConfig, data: RunData, precision: str, devices: DeviceSet | None) -> dict:
    """{file name: a function that makes its record} for what a run writes before training beside its config."""
    splits = {"train": data.train, "validation": data.val}
    return {
        LABELS_FILE: lambda: labels_record(data.train.class_names, config.image_size, config.resize),
        ENVIRONMENT_FILE: lambda: environment_record(data.train, data.val, precision, data.dataset.root, devices),
        DATA_FILE: lambda: data_record(data.dataset, splits, config, list(data.extra)),
    }


def reopen_run_dir(
    run_dir: Path, config: TrainConfig, data: RunData, precision: str, devices: DeviceSet | None = None
) -> Path:
    """An interrupted run directory, checked to be training on the same files; what start_run_dir had not written
    yet is written now."""
    records = run_records(config, data, precision, devices)
    manifest = records[ENVIRONMENT_FILE]()["data_manifest_sha256"]
    recorded = read_json(run_dir, ENVIRONMENT_FILE, runschema.ENVIRONMENT, {}).get("data_manifest_sha256")
    if recorded and recorded != manifest:
        raise HorsesHumansError(
            f"{run_dir / ENVIRONMENT_FILE}: the images in {data.dataset.root} are not the ones this run "
            "started on; resume it on its own data (--data-dir), or start a new run."
        )
    for name, record in records.items():
        if not (run_dir / name).exists():
            save_json(run_dir, name, record())
    return run_dir


def finish_run(fitting: Fitting, data: RunData, trainable: int, seconds: float, workspace: Workspace) -> dict:
    """Save the float32 last and best checkpoints, fit the distance check (--distance-unsure) on the run's images, then
    write metrics.json, which makes the run directory a finished run, then calibrate it on its validation split (read
    through the workspace's cache); returns the metrics."""
    run_dir, history, model = fitting.recorder.run_dir, fitting.recorder.history, fitting.model
    best_epoch = save_checkpoints(run_dir, model, fitting.config, fitting.best, len(history))
    metrics = summarize(history, data.skipped, model.count_params())
    metrics.update(
        trainable_parameters=trainable,
        train_seconds=round(seconds, 2),
        checkpoints=score_checkpoints(run_dir, checkpoints_record(history, best_epoch), workspace.cache_dir, quiet),
    )
    if fitting.config.distance_unsure:  # before metrics.json: a run that looks finished has its check
        recipe = get_recipe(fitting.config.recipe)
        fit_distance_gate(run_dir, recipe, [data.fit, data.val], fitting.config.seed, workspace.log)
    save_json(run_dir, METRICS_FILE, metrics)
    calibrate_run(run_dir, cache_dir=workspace.cache_dir, log=quiet)  # validation probabilities -> calibration.json
    return metrics
