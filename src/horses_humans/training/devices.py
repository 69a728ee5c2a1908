"""Where `train` runs: the devices it uses (the GPUs the backend sees, else the CPU), the precision `auto` picks for
them, and the framework's own data-parallel distribution over several (tf.distribute.MirroredStrategy on TensorFlow,
keras.distribution.DataParallel on JAX)."""

from __future__ import annotations

import dataclasses
import platform
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from ..config import HorsesHumansError

ALL = "all"
STRATEGIES = {"tensorflow": "MirroredStrategy", "jax": "DataParallel"}  # the data-parallel API of each backend


@dataclass(frozen=True)
class DeviceSet:
    """Devices of one kind ("GPU" or "CPU"): logical names (/device:GPU:0 ...), hardware names, and the lowest
    compute capability among the GPUs ((major, minor); None on CPUs)."""

    kind: str
    names: tuple[str, ...]
    hardware: tuple[str, ...]
    capability: tuple[int, int] | None = None

    @property
    def replicas(self) -> int:
        """How many copies of the model train side by side."""
        return len(self.names)

    def first(self, count: int) -> DeviceSet:
        """The first `count` devices."""
        return dataclasses.replace(self, names=self.names[:count], hardware=self.hardware[:count])


def requested_count(devices: str | None) -> int | None:
    """--devices as a number of devices (None: 1), or None for all; a one-line error for anything else."""
    text = "1" if devices is None else str(devices).strip().lower()
    if text == ALL:
        return None
    if not text.isdigit() or int(text) < 1:
        raise HorsesHumansError(f"--devices {devices!r}: give a positive number of devices, e.g. 2, or all.")
    return int(text)


def select_devices(devices: str | None, found: DeviceSet | None = None) -> DeviceSet:
    """The devices --devices asks for among those found (default: what the backend sees), or a clear error."""
    count = requested_count(devices)
    found = found or visible_devices()
    if count is None:
        return found
    if count > found.replicas:
        raise HorsesHumansError(
            f"--devices {count}: the {found.kind} devices found are {', '.join(found.names)} "
            f"({found.replicas}); use --devices all or at most {found.replicas} "
            "(scripts/setup-gpu.sh installs the GPU build)."
        )
    return found.first(count)


def visible_devices() -> DeviceSet:
    """Every device of the best kind the Keras backend sees: its GPUs, else its CPU(s)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return tensorflow_devices()
    if backend == "jax":
        return jax_devices()
    return cpu_devices(("cpu:0",))


def cpu_devices(names: tuple[str, ...]) -> DeviceSet:
    """CPU devices by logical name (several where the CPU is split into logical devices, as the tests do)."""
    return DeviceSet("CPU", names, (cpu_name(),) * len(names))


def tensorflow_devices() -> DeviceSet:
    """TensorFlow's logical GPUs (hardware name and compute capability from the physical ones), else its CPUs."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if not gpus:
        return cpu_devices(tuple(d.name for d in tf.config.list_logical_devices("CPU")))
    details = [tf.config.experimental.get_device_details(d) for d in tf.config.list_physical_devices("GPU")]
    hardware = [d.get("device_name", "GPU") for d in details] or ["GPU"]
    capabilities = [tuple(d["compute_capability"]) for d in details if d.get("compute_capability")]
    return DeviceSet(
        "GPU",
        tuple(d.name for d in gpus),
        tuple(hardware[min(i, len(hardware) - 1)] for i in range(len(gpus))),
        min(capabilities) if capabilities else None,
    )


def jax_devices() -> DeviceSet:
    """JAX's GPUs (their device_kind and compute capability), else its CPUs; names as keras.distribution lists them."""
    import jax

    gpus = jax.devices("gpu") if jax.default_backend() == "gpu" else []
    if not gpus:
        return cpu_devices(tuple(f"cpu:{d.id}" for d in jax.devices("cpu")))
    capabilities = [
        tuple(int(p) for p in str(d.compute_capability).split("."))
        for d in gpus
        if getattr(d, "compute_capability", None)
    ]
    return DeviceSet(
        "GPU",
        tuple(f"gpu:{i}" for i in range(len(gpus))),
        tuple(d.device_kind for d in gpus),
        min(capabilities) if capabilities else None,
    )


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def auto_precision(devices: DeviceSet, cpu_bf16: bool) -> str:
    """--precision auto: on GPUs mixed_bfloat16 from compute capability 8.0 (Ampere: bf16 tensor cores, no loss
    scaling), mixed_float16 on 7.x (Volta, Turing: fp16 tensor cores), float32 below; on CPUs mixed_bfloat16 where
    they have bf16 units (cpu_bf16), else float32."""
    if devices.kind == "GPU":
        capability = devices.capability or (0, 0)
        return "mixed_bfloat16" if capability >= (8, 0) else "mixed_float16" if capability >= (7, 0) else "float32"
    return "mixed_bfloat16" if cpu_bf16 else "float32"


def distribution(devices: DeviceSet):
    """The context to build a model in so that it trains on all of `devices`: nothing for one device; on TensorFlow
    a MirroredStrategy scope (compile and fit then use the strategy the model keeps, see compile_scope); on JAX a
    process-wide keras.distribution.DataParallel (Keras reads it when variables are made and at each fit)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":  # set for one device too: an earlier run in this process may have set several
        several = devices.replicas > 1
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=list(devices.names)) if several else None
        )
        return nullcontext()
    if devices.replicas == 1:
        return nullcontext()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(list(devices.names)).scope()
    raise HorsesHumansError(
        f"--devices {devices.replicas}: training on several devices needs KERAS_BACKEND=tensorflow "
        f"or jax, not {backend}; use --devices 1."
    )


def compile_scope(model):
    """The scope to compile `model` in: its MirroredStrategy's where it was built under one (the optimizer's
    variables are then mirrored too), else nothing."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return nullcontext()
    import tensorflow as tf

    strategy = model.distribute_strategy  # the one in force when the model was made, else the current one
    return nullcontext() if strategy is tf.distribute.get_strategy() else strategy.scope()


def strategy_name(devices: DeviceSet, backend: str) -> str | None:
    """The distribution API a run on `devices` uses (None for one device)."""
    return STRATEGIES.get(backend) if devices.replicas > 1 else None


def devices_record(devices: DeviceSet, backend: str) -> dict:
    """environment.json's device entries: kind, logical and hardware names, replicas and the distribution."""
    return {
        "device_kind": devices.kind,
        "devices": list(devices.names),
        "device_names": list(devices.hardware),
        "compute_capability": ".".join(map(str, devices.capability)) if devices.capability else None,
        "replicas": devices.replicas,
        "distribution": strategy_name(devices, backend),
    }


def describe(devices: DeviceSet, backend: str) -> str:
    """One line for the training log: 'GPU: 2 x NVIDIA H100 80GB HBM3 (MirroredStrategy)'."""
    names = sorted(set(devices.hardware))
    strategy = strategy_name(devices, backend)
    return f"{devices.kind}: {devices.replicas} x {', '.join(names)}" + (
        f" ({strategy}, --batch-size split across them)" if strategy else ""
    )
