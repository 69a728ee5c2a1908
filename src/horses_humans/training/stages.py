"""The fit stages of a run: the head on cached features or the whole model on pixels, then optional fine-tuning."""

from __future__ import annotations

import time
from collections.abc import Sequence

import keras
import numpy as np

from ..config import HorsesHumansError, TrainConfig
from ..data.datasets import Split
from ..models.outputs import SIGMOID, ClassOutput
from ..models.recipes import get_recipe
from .callbacks import build_callbacks, with_extra
from .features import cached_features
from .optimizer import compile_model
from .resume import Backup


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
