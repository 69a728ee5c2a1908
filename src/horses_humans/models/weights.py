"""Pretrained backbone weights, offline first: --weights PATH -> the Keras cache -> the official download.

Offline with nothing found is a clear error naming the file, its expected hash and where to put it;
never silently random weights (`--weights none` asks for random weights explicitly, for tests).
Which file a backbone needs is a fact of its registration (backbones.py).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
from pathlib import Path

from ..config import HorsesHumansError
from .backbones import WeightsFile, get_backbone

logger = logging.getLogger(__name__)


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded application weights: $KERAS_HOME/models or ~/.keras/models."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def resolve_weights(backbone: str, spec: str | None, alpha: float = 0.35) -> str | None:
    """A local weights path for `spec` (None/'imagenet' = official weights; 'none' = random; else a path)."""
    if spec is not None and spec.lower() == "none":
        return None
    if spec not in (None, "imagenet"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise HorsesHumansError(f"--weights {spec}: no such file.")
        return str(path)
    official = get_backbone(backbone).weights_file(alpha)
    cached = keras_cache_dir() / official.file
    if cached.is_file():
        return str(cached)
    return download_weights(official)


def download_weights(official: WeightsFile) -> str:
    """The standard Keras download (official URL and hash); offline, an error saying what to do."""
    import keras  # only when a download is needed: `weights install` and the CLI start without it

    chatter = io.StringIO()  # get_file prints "Downloading data from ..." and a bar on stdout, which holds results
    try:
        with contextlib.redirect_stdout(chatter):
            path = keras.utils.get_file(
                official.file, official.url, file_hash=official.file_hash, cache_subdir="models"
            )
        logger.info(f"downloaded {official.file} into {keras_cache_dir()}/")
        return path
    except Exception as exc:  # get_file raises Exception("URL fetch failure ...") offline
        hash_text = f"md5 {official.file_hash}" if official.file_hash else "no published hash"
        raise HorsesHumansError(
            f"{official.backbone} ImageNet weights not found and could not be downloaded ({str(exc).splitlines()[0]}). "
            f"Expected file: {official.file} ({official.size or 'size unknown'}, {hash_text}) from {official.url}. "
            f"Install a copy with `horses-humans weights install FILE --backbone {official.backbone}` (it goes to "
            f"{keras_cache_dir()}/) or pass --weights PATH; or train the from-scratch CNN, which needs no weights, "
            "with --recipe baseline (--weights none: a backbone with random weights)."
        ) from None


def install_weights(source: Path, backbone: str, alpha: float = 0.35) -> Path:
    """Copy a weights file into the Keras cache under its official name, once it has loaded from there."""
    source, registered = Path(source), get_backbone(backbone)
    if not source.is_file():
        raise HorsesHumansError(f"{source}: no such file.")
    dest = keras_cache_dir() / registered.weights_file(alpha).file
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".tmp-{dest.name}")  # same suffix as the official name: Keras picks its loader by suffix
    shutil.copyfile(source, tmp)
    try:
        registered.build(registered.check_size, str(tmp), alpha)
        os.replace(tmp, dest)
    except Exception as exc:  # h5py, Keras and OS errors all mean "not these weights"
        hint = (
            " It is a Keras 3 .weights.h5 file: pass it with --weights PATH instead."
            if source.name.endswith(".weights.h5")
            else ""
        )
        raise HorsesHumansError(
            f"{source}: does not load into {backbone} (alpha {alpha}) without top: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}.{hint}"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest
