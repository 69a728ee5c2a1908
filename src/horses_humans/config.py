"""Configuration: frozen dataclasses with defaults; the resolved config is saved with every run."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

ENV_DATA = "HORSES_HUMANS_DATA"
ENV_CACHE = "HORSES_HUMANS_CACHE"
ENV_RUNS = "HORSES_HUMANS_RUNS"
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
AUGMENTATIONS = ("reference", "mild", "flip")  # presets of recipes.cnn.build_augmentation
CLASS_WEIGHTS = ("none", "balanced")
# How an image of any shape becomes the model's square (data/images.py fit_square); runs made before --resize squash
RESIZE_MODES = ("squash", "crop", "pad")
DEFAULT_RESIZE = "squash"
# A two-class model's output is the probability of class 1 (one sigmoid unit); at or above this it predicts class 1.
# Runs record their own
# threshold in labels.json; this is the default for new runs and for runs saved without one.
DEFAULT_THRESHOLD = 0.5
# width x height of one image, checked from its header before decoding, by `predict` (--max-pixels) and the server
# (max_pixels): a decode holds up to ~9 bytes per pixel (bench/bench_decode_memory.py), ~360 MB at 40M pixels
DEFAULT_MAX_PIXELS = 40_000_000
# the class folder whose images teach the unsure answer ("none of these"; never a label) unless --reject-class names
# another; a data set without a folder of this name simply has no such class
DEFAULT_REJECT_CLASS = "neither"
# the unsure rule's confidence threshold: auto (calibrated on validation), off, or a probability (--min-confidence)
MIN_CONFIDENCE_CHOICES = ("auto", "off")


class HorsesHumansError(Exception):
    """An error the user can fix; the CLI prints its message without a traceback."""


def describe_error(exc: Exception) -> str:
    """`Type: first line of the message` (library errors, converters' above all, run to pages)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__


CNN_OPTIONS = "CNN recipes (baseline, augmented)"  # help groups of the train command's options
TRANSFER_OPTIONS = "transfer recipes (inception_v3, mobilenet_v2)"
KERNEL_SIZES = (1, 3, 5, 7)


def option(default, help: str, **metadata):
    """A config field that is also a `train` option: its help (and optional choices, group, metavar) as metadata."""
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


class Registry(dict):
    """Named things of one kind (recipes, backbones), by name: `register` adds one, `lookup` finds one or says
    which names exist."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, item):
        """Add an item (anything with a .name) and return it."""
        self[item.name] = item
        return item

    def lookup(self, name: str):
        """The item called `name`, or a clear error listing the known ones."""
        if name not in self:
            raise HorsesHumansError(f"unknown {self.kind} {name!r}: choose one of {', '.join(sorted(self))}.")
        return self[name]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run does (saved as the run's config.json).

    Every field is a `horses-humans train` option (--field-name), built from its type, default and metadata
    by options.add_config_options: a new field needs no other edit to reach the command line.
    """

    # recommended (MobileNetV2 on ImageNet weights) by default, as pretrained-first tools start; the reference's
    # from-scratch CNN is --recipe baseline (scripts/main.sh passes it)
    recipe: str = option(
        "recommended",
        "model family (choices from the recipe registry); recommended: the best measured on real photos "
        "(docs/real-photos.md), needs the ImageNet weights; baseline: the reference's CNN from scratch, needs none",
    )
    recipe_alias: str | None = option(
        None,
        "set by an alias recipe (e.g. recommended) to the name asked for; the "
        "run records it beside the recipe it resolved to",
        hidden=True,  # internal: a resolved config records it; not an option a user types
    )
    epochs: int | None = option(None, "training epochs (default: the recipe's, 15 for the reference CNNs)")
    image_size: int | None = option(None, "square input size in pixels (default: the recipe's, 150)")
    resize: str | None = option(
        None,
        "how an image of any shape becomes the square input, recorded in the run and used wherever it reads an image: "
        "squash (the whole image, stretched), crop (the centred square), pad (the whole image on black bars) "
        "(default: the recipe's: crop for recommended, squash for the others)",
        choices=RESIZE_MODES,
    )
    batch_size: int = option(32, "images per training step")
    seed: int = option(0, "seeds weight initialisation, shuffling, augmentation and the --val-split split")
    val_split: float = option(
        0.2,
        "share of each class held out for validation when the data folder holds class "
        "folders alone (layout 3); the run records which files",
    )
    class_weight: str = option(
        "none",
        "balanced: weigh each class's loss by its inverse frequency in the training images (for imbalanced classes)",
        choices=CLASS_WEIGHTS,
    )
    learning_rate: float | None = option(None, "RMSprop learning rate (default: the recipe's, 1e-3)")
    dropout: float = option(0.0, "dropout before the Dense(512) layer; 0 reproduces the reference")
    l2: float = option(0.0, "L2 penalty on the Dense(512) kernel; 0 is off")
    early_stopping: bool = option(False, "stop when val_accuracy has not improved for 3 epochs; keep the best weights")
    reduce_lr: bool = option(False, "divide the learning rate by 10 when val_loss stalls for 2 epochs")
    precision: str = option(
        "auto",
        "training arithmetic (auto: on GPUs mixed_bfloat16, mixed_float16 before Ampere; on "
        "CPUs bfloat16 where they have bf16 units); saved models are float32",
        choices=PRECISIONS,
    )
    augmentation: str = option(
        "reference",
        "augmentation preset for `augmented` and --augment: reference (flip, "
        "rotate +-72 deg, zoom, stretch), mild (rotate +-15 deg), flip",
        choices=AUGMENTATIONS,
    )
    conv_filters: tuple[int, ...] = option(
        (16, 32, 64), "filters of each Conv2D+MaxPool block (1 to 5 blocks)", group=CNN_OPTIONS, metavar="N,N,..."
    )
    kernel_size: int = option(3, "convolution kernel size", group=CNN_OPTIONS, choices=KERNEL_SIZES)
    weights: str | None = option(
        None,
        "backbone weights: imagenet (default: Keras cache, else download), a file path, or none (random)",
        group=TRANSFER_OPTIONS,
    )
    alpha: float = option(
        0.35, "MobileNetV2 width; 0.35 is the ImageNet file in ../shared/weights", group=TRANSFER_OPTIONS
    )
    augment: bool = option(
        False,
        "augmentation layers in front of the backbone (trains on pixels, no feature cache)",
        group=TRANSFER_OPTIONS,
    )
    fine_tune_from: str | None = option(
        None,
        "after the head, unfreeze the backbone from this layer name (or its top N layers)",
        group=TRANSFER_OPTIONS,
        metavar="LAYER_OR_N",
    )
    fine_tune_epochs: int = option(5, "epochs of fine-tuning", group=TRANSFER_OPTIONS)
    distance_unsure: bool = option(
        False,
        "answer unsure on images unlike every training image (a 5-nearest-neighbour distance on the backbone's "
        "features, past what 98% of training images reach): for runs with no 'none of these' folder",
        group=TRANSFER_OPTIONS,
    )
    fine_tune_learning_rate: float | None = option(
        None, "fine-tuning learning rate (default: a tenth of the head's)", group=TRANSFER_OPTIONS
    )
    tta: bool = option(
        False,
        "test-time flips: predictions average each image's probabilities with its mirror's "
        "(evaluate, predict and serve read it from the run)",
    )
    extra_data: tuple[str, ...] = option(
        (),
        "a folder of class folders added to the training side (repeatable): "
        "folders named after the data set's classes, or the --reject-class one (images of "
        "none of them: they teach the unsure answer)",
        metavar="DIR",
        repeatable=True,
    )
    reject_class: str = option(
        DEFAULT_REJECT_CLASS,
        "the class folder whose images teach the unsure answer ('none of these', never a label), e.g. background; "
        "a folder of the data or of --extra-data; with the default and no such folder the run has none",
        metavar="NAME",
    )
    min_confidence: str = option(
        "auto",
        "the unsure rule's confidence threshold tau: auto (the largest that leaves at most 2% of the validation "
        "images unsure), off (unsure only by the 'none of these' class and the distance check), or a probability "
        "in (0, 1) (recorded; `horses-humans unsure RUN --min-confidence` changes it later)",
        metavar="auto|off|TAU",
    )
    devices: str | None = option(
        None,
        "devices to train on: a number or all (default 1: the first GPU, else the CPU); "
        "several train data-parallel (MirroredStrategy on TensorFlow, DataParallel on "
        "JAX), each on a share of --batch-size",
        metavar="N|all",
    )

    def __post_init__(self) -> None:
        check_positive("epochs", self.epochs)
        check_positive("image_size", self.image_size)
        check_positive("batch_size", self.batch_size)
        check_positive("fine_tune_epochs", self.fine_tune_epochs)
        if self.image_size is not None and self.image_size < 32:
            raise HorsesHumansError(f"--image-size {self.image_size} is too small: use at least 32.")
        if not 0.0 <= self.dropout < 1.0:
            raise HorsesHumansError(f"--dropout {self.dropout} must be in [0, 1).")
        if not 0.0 < self.val_split < 1.0:
            raise HorsesHumansError(f"--val-split {self.val_split} must be between 0 and 1, e.g. 0.2.")
        if self.class_weight not in CLASS_WEIGHTS:
            raise HorsesHumansError(f"--class-weight {self.class_weight!r}: choose one of {', '.join(CLASS_WEIGHTS)}.")
        if not self.reject_class.strip():
            raise HorsesHumansError("--reject-class is empty: name a class folder, e.g. --reject-class background.")
        object.__setattr__(self, "min_confidence", str(parse_min_confidence(self.min_confidence)))
        if self.l2 < 0:
            raise HorsesHumansError(f"--l2 {self.l2} must be >= 0.")
        object.__setattr__(self, "conv_filters", tuple(int(f) for f in self.conv_filters))  # JSON gives a list
        object.__setattr__(self, "extra_data", tuple(str(d) for d in self.extra_data or ()))  # argparse: None or a list
        if not 1 <= len(self.conv_filters) <= 5 or not all(1 <= f <= 1024 for f in self.conv_filters):
            raise HorsesHumansError(
                f"--conv-filters {','.join(map(str, self.conv_filters))}: give 1 to 5 layers of 1-1024 filters."
            )
        if self.kernel_size not in KERNEL_SIZES:
            raise HorsesHumansError(f"--kernel-size {self.kernel_size}: choose 1, 3, 5 or 7.")
        if self.augmentation not in AUGMENTATIONS:
            raise HorsesHumansError(f"--augmentation {self.augmentation!r}: choose one of {', '.join(AUGMENTATIONS)}.")
        if self.resize is not None and self.resize not in RESIZE_MODES:
            raise HorsesHumansError(f"--resize {self.resize!r}: choose one of {', '.join(RESIZE_MODES)}.")
        if self.precision not in PRECISIONS:
            raise HorsesHumansError(f"--precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}.")

    def to_dict(self) -> dict:
        """Plain dict for JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Inverse of to_dict; unknown keys (from newer versions) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def parse_min_confidence(value) -> str | float:
    """--min-confidence as the unsure rule takes it: "auto", "off", or a probability strictly between 0 and 1."""
    text = str(value).strip().lower()
    if text in MIN_CONFIDENCE_CHOICES:
        return text
    try:
        tau = float(text)
    except ValueError:
        tau = float("nan")
    if not 0.0 < tau < 1.0:
        raise HorsesHumansError(
            f"--min-confidence {value!r}: give auto, off or a probability between 0 and 1 (e.g. 0.8)."
        )
    return tau


def check_positive(name: str, value: int | None) -> None:
    """Raise a clear error for a non-positive integer option."""
    if value is not None and value <= 0:
        raise HorsesHumansError(f"--{name.replace('_', '-')} must be a positive integer, got {value}.")


def user_cache_dir() -> Path:
    """Per-user cache root: $HORSES_HUMANS_CACHE, else $XDG_CACHE_HOME/horses-humans, else ~/.cache/horses-humans."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "horses-humans"


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """Where the data set lives: --data-dir, else $HORSES_HUMANS_DATA, else the per-user cache."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(ENV_DATA):
        return Path(os.environ[ENV_DATA]).expanduser()
    return user_cache_dir() / "data"


def resolve_runs_dir(runs_dir: str | Path | None = None) -> Path:
    """Where runs are written: --runs-dir, else $HORSES_HUMANS_RUNS, else ./runs."""
    if runs_dir:
        return Path(runs_dir).expanduser()
    return Path(os.environ.get(ENV_RUNS) or "runs")
