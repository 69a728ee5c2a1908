"""Precision and optimizer: the dtype policy a run trains in, RMSprop (fused on TensorFlow) and how every model
compiles."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import keras
import numpy as np

from ..config import TrainConfig
from ..models.outputs import SIGMOID, SOFTMAX, ClassOutput
from .devices import DeviceSet, auto_precision, compile_scope, select_devices

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


def training_precision(config: TrainConfig, transfer: bool, devices: DeviceSet | None = None) -> str:
    """The dtype policy to train in: transfer models default to float32 (their heads train on cached
    float32 features; bfloat16 would only blur those features); CNNs use resolve_precision."""
    if config.precision == "auto" and transfer:
        return "float32"
    return resolve_precision(config.precision, devices)


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


LOSSES = {SIGMOID: "binary_crossentropy", SOFTMAX: "sparse_categorical_crossentropy"}  # by output kind


def compile_model(model, learning_rate: float, output: ClassOutput) -> None:
    """RMSprop (fused where possible), cross-entropy for the output kind, accuracy: every recipe trains this way.
    Keras resolves "accuracy" from the shapes: BinaryAccuracy for one sigmoid unit, SparseCategoricalAccuracy for
    a softmax with integer labels."""
    with compile_scope(model):  # a model built under a MirroredStrategy gets mirrored optimizer variables
        model.compile(optimizer=make_optimizer(learning_rate), loss=LOSSES[output.kind], metrics=["accuracy"])
