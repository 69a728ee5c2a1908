"""The fit stages of a run: the head on cached features (a frozen transfer model) or the whole model on pixels,
then the optional fine-tuning; each resumes from its backup and backs itself up after every epoch."""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np

from ..config import HorsesHumansError, TrainConfig
from ..core.workspace import Workspace
from ..data.pixels import Split
from ..models.outputs import SIGMOID, ClassOutput
from ..models.recipes import get_recipe
from .callbacks import BestWeights, EpochRecorder, build_callbacks, with_extra
from .features import cached_features
from .optimizer import compile_model
from .plan import FINE_TUNE, HEAD, Stage, plan_stages
from .resume import Backup


@dataclasses.dataclass(frozen=True)
class Fitting:
    """What every stage of one run fits with: the model, its config, the epoch recorder, and (in a run) the resume
    backup and the best epoch's weights."""

    model: keras.Model
    config: TrainConfig
    recorder: EpochRecorder
    backup: Backup | None = None  # None: a bare fit that nothing resumes (the benchmarks')
    best: BestWeights | None = None


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


def fit_arrays(model, config: TrainConfig, train: tuple, val: tuple, callbacks: list, epochs: range):
    """Fit a compiled model on in-memory (inputs, labels) over epochs (range(initial epoch, last epoch)), reshuffled
    every epoch, validating every epoch."""
    return model.fit(
        *train,
        batch_size=config.batch_size,
        epochs=epochs.stop,
        initial_epoch=epochs.start,
        validation_data=val,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
        class_weight=class_weights(config.class_weight, train[1]),
    )


def stage_epochs(fitting: Fitting, stage: Stage) -> range:
    """The epochs a stage's fit runs now: on from those recorded, to its last (where it stopped, if its backup says
    it finished early)."""
    done = len(fitting.recorder.history)
    return range(done, fitting.backup.end(stage, done) if fitting.backup else stage.last_epoch)


def stage_callbacks(fitting: Fitting, stage: Stage) -> list:
    """The run's callbacks for a stage, then the stage's backup (restores it if the backup is of it)."""
    backup = [fitting.backup.callback(stage, len(fitting.recorder.history))] if fitting.backup else []
    return with_extra(build_callbacks(fitting.config, fitting.recorder), backup)


def learning_rate(config: TrainConfig, stage: Stage) -> float:
    """The stage's learning rate: fine-tuning's own, else a tenth of the head's; the config's for the others."""
    if stage.name == FINE_TUNE:
        return config.fine_tune_learning_rate or config.learning_rate / 10
    return config.learning_rate


def fit_pixels(fitting: Fitting, stage: Stage, train: Split, val: Split) -> None:
    """Compile and fit the whole model on pixels for a stage, continuing the epoch count of the stages before it."""
    compile_model(fitting.model, learning_rate(fitting.config, stage), class_output(train))
    callbacks = stage_callbacks(fitting, stage)
    fit_arrays(fitting.model, fitting.config, arrays(train), arrays(val), callbacks, stage_epochs(fitting, stage))


def fit_head(fitting: Fitting, stage: Stage, train: Split, val: Split, workspace: Workspace) -> None:
    """Train only the head of a frozen-backbone model for a stage, on backbone features cached in the workspace."""
    recipe, model = get_recipe(fitting.config.recipe), fitting.model
    head = recipe.head_layer(model)
    compile_model(head, learning_rate(fitting.config, stage), class_output(train))
    train_xy, val_xy = (
        arrays(s, cached_features(recipe, model, s, workspace.cache_dir, workspace.log)) for s in (train, val)
    )
    fit_arrays(head, fitting.config, train_xy, val_xy, stage_callbacks(fitting, stage), stage_epochs(fitting, stage))


def fit_stage(fitting: Fitting, stage: Stage, train: Split, val: Split, workspace: Workspace) -> None:
    """One stage: the head on cached features where the backbone is frozen and nothing is augmented, else the
    whole model on pixels (fine-tuning after unfreezing the top of the backbone)."""
    config = fitting.config
    if stage.name == FINE_TUNE:
        n = unfreeze(get_recipe(config.recipe).backbone_layer(fitting.model), config.fine_tune_from)
        rate = learning_rate(config, stage)
        workspace.log(f"fine-tuning {n} backbone layers from {config.fine_tune_from!r} at learning rate {rate:g}")
    if stage.name == HEAD and not config.augment:
        fit_head(fitting, stage, train, val, workspace)
    else:
        fit_pixels(fitting, stage, train, val)


def fit_stages(fitting: Fitting, train: Split, val: Split, workspace: Workspace) -> float:
    """Fit the config's stages in turn, each backed up after every epoch; a resumed run skips the stages that
    finished and continues the one that was running. Returns the seconds it took."""
    started, backup = time.perf_counter(), fitting.backup
    for planned in plan_stages(fitting.config, get_recipe(fitting.config.recipe).transfer):
        if backup and backup.superseded(planned):
            continue
        stage = planned.starting_at(len(fitting.recorder.history))  # where the stages before it ended
        fit_stage(fitting, backup.begin(stage) if backup else stage, train, val, workspace)
    return time.perf_counter() - started


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
