"""The public Python API: train a run or load one, then predict, evaluate and export with it.

    import horses_humans as hh
    run = hh.train("data/", epochs=2)  # recipe "recommended" unless told (recipe="baseline": no weights needed)
    run.predict(["horse.png", pixels])  # -> [Prediction, ...]

Every call is the same library code the `horses-humans` command runs; progress lines go to the `logging` module
(logger names under "horses_humans"), so a library user sees them only where they configure logging.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .config import DEFAULT_RESIZE, HorsesHumansError, TrainConfig, check_positive
from .data.images import ImageError, array_pixels
from .inference.predictor import Prediction, Predictor
from .runs import store
from .runs.names import find_run

logger = logging.getLogger(__name__)

TRAIN_OPTIONS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "recipe")


def train(
    data_dir: str | Path | None = None,
    recipe: str = TrainConfig.recipe,  # the train command's default: recommended
    *,
    name: str | None = None,
    runs_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    **options,
) -> Run:
    """Train `recipe` on the data set in `data_dir` (options: TrainConfig fields, e.g. epochs=3,
    reject_class="background") into RUNS_DIR/`name` (NAME-2, ... when taken; default RECIPE-SIZE-sSEED-TIMESTAMP) and
    return the finished Run."""
    from .core.workspace import Workspace
    from .training.loop import train as train_config

    config = train_config_of(recipe, options)
    return load_run(train_config(config, Workspace.from_env(data_dir, runs_dir, cache_dir, logger.info), name=name))


def train_config_of(recipe: str, options: dict) -> TrainConfig:
    """The TrainConfig of hh.train's arguments; an unknown option is one error naming it and the valid ones."""
    unknown = sorted(set(options) - set(TRAIN_OPTIONS))
    if unknown:
        raise HorsesHumansError(
            f"train: unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"the options are TrainConfig's fields: {', '.join(TRAIN_OPTIONS)}."
        )
    return TrainConfig(recipe=recipe, **options)


def load_run(path: str | Path, checkpoint: str | None = None, *, runs_dir: str | Path | None = None) -> Run:
    """The finished run `path` names: its folder, its name in `runs_dir` (default: $HORSES_HUMANS_RUNS, else ./runs),
    or "latest" (the newest finished run there); `checkpoint` ("best" or "last", default best) is the model it answers
    with."""
    return Run(store.load_run(find_run(path, runs_dir), checkpoint))


class Run:
    """A finished training run: its folder, config, classes and metrics, and the model it answers with."""

    def __init__(self, stored: store.Run):
        self.stored = stored  # the run-directory record (runs.store.Run) this object reads and answers from
        self._predictors: dict[str, Predictor] = {}  # loaded once per runtime: a model load takes seconds

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, recipe={self.config.recipe!r}, checkpoint={self.stored.checkpoint!r})"

    @property
    def path(self) -> Path:
        return self.stored.path

    @property
    def name(self) -> str:
        return self.stored.path.name

    @property
    def config(self) -> TrainConfig:
        return self.stored.config

    @property
    def class_names(self) -> list[str]:
        return list(self.stored.class_names)

    @property
    def metrics(self) -> dict:
        return self.stored.metrics

    @property
    def checkpoint(self) -> str:
        return self.stored.checkpoint

    def predictor(self, runtime: str = "auto") -> Predictor:
        """The run's Predictor on `runtime` (auto, keras, onnx, tflite), loaded on first use and kept."""
        if runtime not in self._predictors:
            self._predictors[runtime] = Predictor.from_run(self.stored, self.checkpoint, runtime)
        return self._predictors[runtime]

    def predict(
        self,
        paths_or_arrays: Iterable[str | Path | np.ndarray] | str | Path | np.ndarray,
        runtime: str = "auto",
        batch_size: int = 32,
    ) -> list[Prediction]:
        """One Prediction per image file (or per file under a folder) and per HxWx3 uint8 array, in order."""
        check_positive("batch_size", batch_size)
        predictor = self.predictor(runtime)
        names, decoded = decode_inputs(as_list(paths_or_arrays), predictor)
        rows = []
        for start in range(0, len(names), batch_size):
            rows += predictor.predict_decoded(names[start : start + batch_size], decoded[start : start + batch_size])
        return rows

    def evaluate(
        self,
        data_dir: str | Path | None = None,
        *,
        split: str = "validation",
        folder: str | Path | None = None,
        cache_dir: str | Path | None = None,
    ) -> dict:
        """Evaluate on the run's validation (or test) split, in `data_dir` if given, or on `folder` (class folders
        named after the run's classes); writes RUN/evaluation.json and returns its metrics."""
        from .analysis.evaluation import EvalSplit, evaluate_run

        images = EvalSplit(
            split, Path(data_dir).expanduser() if data_dir else None, Path(folder).expanduser() if folder else None
        )
        cache = Path(cache_dir).expanduser() if cache_dir else None
        return evaluate_run(self.path, images, self.checkpoint, cache, logger.info)

    def export(
        self,
        format: str,
        quantize: str = "none",
        *,
        data_dir: str | Path | None = None,
        cache_dir: str | Path | None = None,
        latency_runs: int = 50,
    ) -> Path:
        """Export the model as `format` (keras, savedmodel, tflite, web, onnx, tflite_labels, tfjs), check it against
        the Keras model on the validation images and return its published folder RUN/export/NAME/."""
        from .export.requests import export_run

        (result,) = export_run(
            self.path,
            [(format, quantize)],
            data_dir=Path(data_dir).expanduser() if data_dir else None,
            cache_dir=Path(cache_dir).expanduser() if cache_dir else None,
            checkpoint=self.checkpoint,
            latency_runs=latency_runs,
            log=logger.info,
        ).results
        if not result.shipped:
            raise HorsesHumansError(f"{self.path}: the {result.name} export was not published: {result.error}.")
        self._predictors.clear()  # runtime "auto" may now pick the new export
        return result.path


def as_list(images) -> list:
    """A single path or array as a one-item list; any other iterable as a list."""
    if isinstance(images, (str, Path)) or (isinstance(images, np.ndarray) and images.ndim == 3):
        return [images]
    return list(images)


def decode_inputs(images: Sequence, predictor: Predictor) -> tuple[list[str], list[np.ndarray | str]]:
    """(names, pixels or error text) for paths (folders walked) and arrays (named "<array N>", N their place)."""
    from .data.files import walk_inputs

    names, decoded = [], []
    for i, item in enumerate(images):
        if isinstance(item, np.ndarray):
            names.append(f"<array {i}>")
            decoded.append(decode_array(item, predictor.image_size, names[-1], predictor.resize))
            continue
        for path, reason in walk_inputs([Path(item)]):
            names.append(str(path))
            decoded.append(reason if reason is not None else predictor.decode(path))
    return names, decoded


def decode_array(array: np.ndarray, size: int, name: str, resize: str = DEFAULT_RESIZE) -> np.ndarray:
    """An HxWx3 uint8 array resized as a file's pixels are (by the run's resize); anything else is a HorsesHumansError
    naming it."""
    try:
        return array_pixels(array, size, name, resize)
    except ImageError as exc:
        raise HorsesHumansError(str(exc)) from None
