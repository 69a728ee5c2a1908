"""Pretrained backbones as data: how to build each one and every fact the package asks about it (official weights
file, default input size, preprocessing, last conv layer), as timm's pretrained configs.

Imports nothing of the package but config, and Keras only inside the builders, so weights.py and the recipe
registry can read these facts without TensorFlow. It sits outside recipes/ because weights.py needs it and
recipes/transfer.py needs weights.py: inside the package, weights -> recipes -> transfer -> weights would be a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import HorsesHumansError, Registry

if TYPE_CHECKING:
    import keras

# the named parts of a transfer model: pixels -> PREPROCESS -> BACKBONE -> HEAD (recipes/transfer.py builds them)
PREPROCESS, BACKBONE, HEAD = "preprocess", "backbone", "head"
KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class WeightsFile:
    """An official Keras Applications weights file (no top)."""

    backbone: str
    file: str
    url: str
    file_hash: str | None = None  # as Keras' own source gives it (md5 for InceptionV3; none for MobileNetV2)
    size: str = ""


@dataclass(frozen=True)
class Backbone:
    """One pretrained network: its builder and its facts."""

    name: str
    build: Callable  # (image_size, weights_path | None, alpha) -> frozen keras.Model named BACKBONE
    weights_url: str  # the official no-top ImageNet file; "{alpha}" is filled in for width-scaled families
    image_size: int  # default input side (pixels)
    last_conv_layer: str  # inside the backbone: where Grad-CAM looks
    check_size: int  # input side `weights install` builds at to check a file loads (the weights fit any size)
    weights_hash: str | None = None
    weights_size: str = ""
    alphas: tuple[float, ...] = ()  # widths with official weights (empty: one width, alpha is ignored)
    scale: float = 1 / 127.5  # preprocessing: pixels * scale + offset (Keras' preprocess_input: [-1, 1])
    offset: float = -1.0

    def weights_file(self, alpha: float = 0.35) -> WeightsFile:
        """The official no-top ImageNet file for this width."""
        if self.alphas and alpha not in self.alphas:
            raise HorsesHumansError(
                f"--alpha {alpha}: {self.name} ImageNet weights exist only for {', '.join(map(str, self.alphas))}."
            )
        url = self.weights_url.format(alpha=float(alpha))
        return WeightsFile(self.name, url.rsplit("/", 1)[1], url, self.weights_hash, self.weights_size)


BACKBONES: Registry = Registry("backbone")
register_backbone = BACKBONES.register
get_backbone = BACKBONES.lookup


def build_inception_base(image_size: int, weights_path: str | None, alpha: float | None = None) -> keras.Model:
    """InceptionV3 without top, cut at `mixed7` (the reference's choice), frozen."""
    import keras

    full = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(image_size, image_size, 3))
    if weights_path:
        full.load_weights(weights_path)
    base = keras.Model(full.input, full.get_layer(INCEPTION_V3.last_conv_layer).output, name=BACKBONE)
    base.trainable = False
    return base


def build_mobilenet_base(image_size: int, weights_path: str | None, alpha: float = 0.35) -> keras.Model:
    """MobileNetV2 without top, frozen (the weights file does not depend on the input size)."""
    import keras

    base = keras.applications.MobileNetV2(
        include_top=False, weights=None, alpha=alpha, input_shape=(image_size, image_size, 3), name=BACKBONE
    )
    if weights_path:
        base.load_weights(weights_path)
    base.trainable = False
    return base


INCEPTION_V3 = register_backbone(
    Backbone(
        "inception_v3",
        build_inception_base,
        f"{KERAS_APPS}inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        image_size=150,
        last_conv_layer="mixed7",
        check_size=150,
        weights_hash="bcbd6486424b2319ff4ef7d526e38f63",
        weights_size="87.9 MB",
    )
)
MOBILENET_V2 = register_backbone(
    Backbone(
        "mobilenet_v2",
        build_mobilenet_base,
        f"{KERAS_APPS}mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{{alpha}}_224_no_top.h5",
        image_size=224,
        last_conv_layer="out_relu",
        check_size=160,
        alphas=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
    )
)
