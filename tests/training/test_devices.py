"""Devices and precision: what --devices and --precision auto pick, multi-device training under MirroredStrategy on
a CPU split into two logical devices, the TensorFlow-only code's one-line error on other backends, and the GPU set-up
script's plan (--dry-run)."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest

import horses_humans
from horses_humans.analysis.explain import gradcam
from horses_humans.cli import main as cli
from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.core.workspace import Workspace, quiet
from horses_humans.training.devices import (
    DeviceSet,
    auto_precision,
    describe,
    devices_record,
    distribution,
    requested_count,
    select_devices,
    visible_devices,
)
from horses_humans.training.loop import train
from horses_humans.training.optimizer import FusedRMSprop, make_optimizer

from ..synthetic import make_dataset
from ..test_setup_scripts import fake_checkout

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(horses_humans.__file__).resolve().parents[1]  # this checkout's src/
H100 = DeviceSet("GPU", ("/device:GPU:0", "/device:GPU:1"), ("NVIDIA H100 80GB HBM3",) * 2, (9, 0))


@pytest.mark.parametrize("text, count", [(None, 1), ("1", 1), ("2", 2), ("all", None), (" ALL ", None)])
def test_devices_option_reads_a_number_or_all(text, count):
    assert requested_count(text) == count


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5", ""])
def test_devices_option_rejects_anything_else_in_one_line(text):
    with pytest.raises(HorsesHumansError, match=r"^--devices .*positive number.*or all\.$"):
        requested_count(text)


def test_select_devices_takes_the_first_n_or_all_and_says_what_exists():
    assert select_devices(None, H100).names == ("/device:GPU:0",)
    assert select_devices("all", H100) == H100
    assert select_devices("2", H100).hardware == H100.hardware
    with pytest.raises(
        HorsesHumansError,
        match=r"--devices 3: the GPU devices found are /device:GPU:0, "
        r"/device:GPU:1 \(2\); use --devices all or at most 2",
    ):
        select_devices("3", H100)


@pytest.mark.parametrize(
    "capability, precision",
    [
        ((9, 0), "mixed_bfloat16"),
        ((8, 0), "mixed_bfloat16"),
        ((7, 5), "mixed_float16"),
        ((7, 0), "mixed_float16"),
        ((6, 1), "float32"),
        (None, "float32"),
    ],
)
def test_auto_precision_on_gpus_follows_the_compute_capability(capability, precision):
    gpu = DeviceSet("GPU", ("/device:GPU:0",), ("some GPU",), capability)
    assert auto_precision(gpu, cpu_bf16=False) == auto_precision(gpu, cpu_bf16=True) == precision


def test_auto_precision_on_cpus_is_unchanged():
    cpu = DeviceSet("CPU", ("/device:CPU:0",), ("a CPU",))
    assert auto_precision(cpu, cpu_bf16=True) == "mixed_bfloat16"
    assert auto_precision(cpu, cpu_bf16=False) == "float32"


def test_this_machine_trains_on_its_cpu_alone_by_default():
    found = visible_devices()
    assert found.kind == "CPU" and found.replicas == 1 and found.hardware[0]
    record = devices_record(select_devices(None), "tensorflow")
    assert record["device_kind"] == "CPU" and record["replicas"] == 1 and record["distribution"] is None


def test_the_record_and_log_line_name_the_gpus_and_the_strategy():
    record = devices_record(H100, "tensorflow")
    assert record == {
        "device_kind": "GPU",
        "devices": ["/device:GPU:0", "/device:GPU:1"],
        "device_names": ["NVIDIA H100 80GB HBM3"] * 2,
        "compute_capability": "9.0",
        "replicas": 2,
        "distribution": "MirroredStrategy",
    }
    assert devices_record(H100, "jax")["distribution"] == "DataParallel"
    assert describe(H100, "tensorflow").startswith("GPU: 2 x NVIDIA H100 80GB HBM3 (MirroredStrategy")


def test_train_with_more_devices_than_exist_fails_in_one_line_before_loading_data(tmp_path, capsys):
    code = cli.main(
        [
            "train",
            "--recipe",
            "baseline",
            "--devices",
            "2",
            "--data-dir",
            str(tmp_path / "nowhere"),
            "--runs-dir",
            str(tmp_path),
        ]
    )
    error = capsys.readouterr().err
    assert code == 2 and error.startswith("error: --devices 2: the CPU devices found are") and error.count("\n") == 1
    assert not list(tmp_path.iterdir())  # no run directory was started


def test_several_devices_on_a_backend_without_a_distribution_api_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(HorsesHumansError, match="needs KERAS_BACKEND=tensorflow or jax, not torch; use --devices 1"):
        distribution(DeviceSet("CPU", ("cpu:0", "cpu:1"), ("a CPU",) * 2))


def test_on_jax_one_device_clears_a_distribution_an_earlier_run_set(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    keras.distribution.set_distribution("left by an earlier --devices 2 run")
    try:
        with distribution(DeviceSet("CPU", ("cpu:0",), ("a CPU",))):
            assert keras.distribution.distribution() is None
    finally:
        keras.distribution.set_distribution(None)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_gradcam_off_tensorflow_says_it_needs_the_tensorflow_backend(monkeypatch, backend):
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    with pytest.raises(
        HorsesHumansError,
        match=f"^Grad-CAM needs the TensorFlow backend, and KERAS_BACKEND is "
        f"{backend}: run it with KERAS_BACKEND=tensorflow",
    ):
        gradcam(None, None, "conv1")


def test_off_tensorflow_the_optimizer_is_keras_rmsprop(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    optimizer = make_optimizer(1e-3)
    assert type(optimizer) is keras.optimizers.RMSprop and not isinstance(optimizer, FusedRMSprop)


@pytest.mark.slow
def test_mixed_float16_the_gpu_default_before_ampere_trains_with_loss_scaling_and_saves_float32(tmp_path):
    config = TrainConfig(
        recipe="baseline", epochs=2, image_size=32, batch_size=8, conv_filters=(8,), seed=1, precision="mixed_float16"
    )
    run = train(config, Workspace(make_dataset(tmp_path / "data"), tmp_path / "runs", tmp_path / "cache", quiet))
    model = keras.saving.load_model(run / "model.keras")
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
    env = json.loads((run / "environment.json").read_text())
    assert env["precision"] == "mixed_float16" and env["device_kind"] == "CPU" and env["replicas"] == 1
    history = json.loads((run / "history.json").read_text())
    assert all(math.isfinite(row["loss"]) for row in history) and history[-1]["loss"] < history[0]["loss"]


# A fresh interpreter: the CPU must be split into logical devices before TensorFlow initialises its runtime.
TWO_CPUS = textwrap.dedent("""
    import sys
    from horses_humans.core import backend
    backend.import_backend()
    import tensorflow as tf
    tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                               [tf.config.LogicalDeviceConfiguration()] * 2)
    from horses_humans.cli import main as cli
    common = ["train", "--recipe", "baseline", "--data-dir", sys.argv[1], "--epochs", "3", "--image-size", "32",
              "--batch-size", "8", "--conv-filters", "8", "--seed", "3", "--precision", "float32"]
    for devices in ("1", "2"):
        code = cli.main(common + ["--devices", devices, "--runs-dir", f"{sys.argv[2]}/{devices}"])
        if code:
            sys.exit(code)
""")


def train_on_two_cpus(data: Path, runs: Path) -> subprocess.CompletedProcess:
    """Train the same tiny run on one and on two logical CPU devices, in a subprocess with a deadline."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-c", TWO_CPUS, str(data), str(runs)], env=env, capture_output=True, text=True, timeout=300
    )


def only_run(runs: Path) -> Path:
    (run,) = [p for p in runs.iterdir() if (p / "metrics.json").is_file()]
    return run


@pytest.mark.slow
def test_two_devices_train_under_mirrored_strategy_as_one_does(tmp_path):
    done = train_on_two_cpus(make_dataset(tmp_path / "data"), tmp_path / "runs")
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = only_run(tmp_path / "runs" / "1"), only_run(tmp_path / "runs" / "2")
    env = json.loads((two / "environment.json").read_text())
    assert env["distribution"] == "MirroredStrategy" and env["replicas"] == 2
    assert env["devices"] == ["/device:CPU:0", "/device:CPU:1"] and env["device_kind"] == "CPU"
    assert json.loads((one / "environment.json").read_text())["distribution"] is None
    assert "devices CPU: 2 x" in done.stderr and "MirroredStrategy" in done.stderr  # log lines: stderr
    losses = [[row["loss"] for row in json.loads((run / "history.json").read_text())] for run in (one, two)]
    assert losses[1][-1] < losses[1][0]  # it learns
    # the global batch is split in two and the gradients all-reduced: the same steps as on one device
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)
    shapes = [keras.saving.load_model(run / "model.keras").output_shape for run in (one, two)]
    assert shapes[0] == shapes[1] == (None, 1)


def test_gpu_setup_dry_run_swaps_tensorflow_cpu_for_the_cuda_build_at_the_locked_version():
    out = subprocess.run(
        ["bash", "scripts/setup-gpu.sh", "--dry-run", "export"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    version = next(
        line.split("==")[1]
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.startswith(("tensorflow_cpu==", "tensorflow-cpu=="))
    )
    assert out[:3] == [
        "bash scripts/setup.sh export",
        ".venv/bin/python -m pip uninstall -q -y tensorflow-cpu",
        f".venv/bin/python -m pip install -q tensorflow[and-cuda]=={version} -c constraints.txt",
    ]
    assert "KERAS_BACKEND=tensorflow" in out[3]


def test_gpu_setup_with_jax_keeps_tensorflow_cpu():
    out = subprocess.run(
        ["bash", "scripts/setup-gpu.sh", "--dry-run", "--backend", "jax"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "uninstall" not in out and "-m pip install -q jax[cuda12] -c constraints.txt" in out


def test_gpu_setup_rejects_an_unknown_backend_before_installing_anything():
    done = subprocess.run(
        ["bash", "scripts/setup-gpu.sh", "--dry-run", "--backend", "cuda"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == "" and "use tensorflow or jax" in done.stderr


def test_gpu_setup_runs_setup_then_the_swap(tmp_path):
    checkout, log = fake_checkout(tmp_path)  # its .venv/bin/python logs its arguments instead of installing
    subprocess.run(["bash", "scripts/setup-gpu.sh"], cwd=checkout, check=True, timeout=60)
    lines = log.read_text().splitlines()
    assert lines[:2] == ["-m pip install -q --upgrade pip", "-m pip install -q -e . -c constraints.txt"]
    assert lines[2] == "-m pip uninstall -q -y tensorflow-cpu"
    assert lines[3].startswith("-m pip install -q tensorflow[and-cuda]==")
    assert lines[4].startswith("-c from horses_humans.training.devices import visible_devices")
