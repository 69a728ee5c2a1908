"""Pretrained backbone weights, offline first: --weights PATH -> the Keras cache -> the official download.

Offline with nothing found is a clear error naming the file, its expected hash and where to put it;
never silently random weights (`--weights none` asks for random weights explicitly, for tests).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .config import HorsesHumansError

KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class WeightsFile:
    """An official Keras Applications weights file (no top)."""

    backbone: str
    file: str
    url: str
    file_hash: str | None = None  # as Keras' own source gives it (md5 for InceptionV3; none for MobileNetV2)
    size: str = ""


def weights_file(backbone: str, alpha: float = 0.35) -> WeightsFile:
    """The official no-top ImageNet file of a backbone (MobileNetV2: one per alpha, the 224-pixel one)."""
    if backbone == "inception_v3":
        name = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
        return WeightsFile(backbone, name, f"{KERAS_APPS}inception_v3/{name}", "bcbd6486424b2319ff4ef7d526e38f63", "87.9 MB")
    if backbone == "mobilenet_v2":
        if alpha not in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4):
            raise HorsesHumansError(f"MobileNetV2 alpha {alpha}: ImageNet weights exist for 0.35, 0.5, 0.75, 1.0, 1.3, 1.4.")
        name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_224_no_top.h5"
        return WeightsFile(backbone, name, f"{KERAS_APPS}mobilenet_v2/{name}")
    raise HorsesHumansError(f"no pretrained weights known for {backbone!r}")


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
    official = weights_file(backbone, alpha)
    cached = keras_cache_dir() / official.file
    if cached.is_file():
        return str(cached)
    return download_weights(official)


def download_weights(official: WeightsFile) -> str:
    """The standard Keras download (official URL and hash); offline, an error saying what to do."""
    import keras

    try:
        return keras.utils.get_file(official.file, official.url, file_hash=official.file_hash, cache_subdir="models")
    except Exception as exc:  # get_file raises Exception("URL fetch failure ...") offline
        hash_text = f"md5 {official.file_hash}" if official.file_hash else "no published hash"
        raise HorsesHumansError(
            f"{official.backbone} ImageNet weights not found and could not be downloaded ({str(exc).splitlines()[0]}). "
            f"Expected file: {official.file} ({official.size or 'size unknown'}, {hash_text}) from {official.url}. "
            f"Put it in {keras_cache_dir()}/ (or run `horses-humans weights install FILE`), or pass --weights PATH; "
            f"--weights none trains from random weights."
        ) from None


def install_weights(source: Path, backbone: str, alpha: float = 0.35) -> Path:
    """Copy a weights file into the Keras cache under its official name, once it has loaded from there."""
    from .recipes.transfer import BACKBONES

    source = Path(source)
    if not source.is_file():
        raise HorsesHumansError(f"{source}: no such file.")
    official = weights_file(backbone, alpha)
    dest = keras_cache_dir() / official.file
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".tmp-{dest.name}")  # same suffix as the official name: Keras picks its loader by suffix
    shutil.copyfile(source, tmp)
    try:
        BACKBONES[backbone](150 if backbone == "inception_v3" else 160, str(tmp), alpha)
        os.replace(tmp, dest)
    except Exception as exc:  # h5py, Keras and OS errors all mean "not these weights"
        hint = " It is a Keras 3 .weights.h5 file: pass it with --weights PATH instead." if source.name.endswith(".weights.h5") else ""
        raise HorsesHumansError(f"{source}: does not load into {backbone} (alpha {alpha}) without top: "
                                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}.{hint}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest
