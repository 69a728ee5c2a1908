"""scripts/gpu_bench.sh, the one-go GPU measurement of issue 22: run on CPU in --tiny mode so that it works the first
time a GPU machine is at hand, and its refusals before anything runs."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .synthetic import make_dataset

ROOT = Path(__file__).resolve().parents[1]


def gpu_bench(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", "scripts/gpu_bench.sh", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_refuses_a_missing_data_set_before_running_anything(tmp_path):
    done = gpu_bench("--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "no data set at" in done.stderr and "--data-dir DIR" in done.stderr
    assert not (tmp_path / "out").exists()


def test_refuses_missing_weights_and_unknown_options(tmp_path):
    data = make_dataset(tmp_path / "data", 2, 1)
    done = gpu_bench("--data-dir", str(data), "--weights", str(tmp_path / "none.h5"))
    assert done.returncode == 2 and "no MobileNetV2 weights at" in done.stderr
    done = gpu_bench("--fast")
    assert done.returncode == 2 and "unknown option --fast" in done.stderr


@pytest.mark.slow
def test_tiny_run_measures_every_step_and_writes_the_summary(tmp_path):
    data, out = make_dataset(tmp_path / "data", 8, 4), tmp_path / "out"
    done = gpu_bench("--tiny", "--data-dir", str(data), "--out", str(out), timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    status = (out / "status.txt").read_text().splitlines()
    assert status == [
        f"{step} device: ok" for step in ("devices", "training", "transfer", "fine-tune", "baseline", "predict")
    ]
    summary = (out / "summary.md").read_text()
    assert summary.strip() in done.stdout
    assert "train would use DeviceSet(kind='CPU'" in summary
    # every table has measured rows: seconds per epoch, head training, fine-tuning epochs, images/s
    assert re.search(r"\| \+ \S+ \(ours, the default\) \| device \| \d+\.\d\d \| \d+\.\d\dx \|", summary)
    assert re.search(r"\| feature cache, warm \(features read from cache\) \| \d+\.\d \|", summary)
    assert re.search(r"\| device \| \d+\.\d \d+\.\d \|", summary)  # one head epoch, one fine-tuning epoch
    assert re.search(r"\| predict \(CLI path, --runtime auto: Keras\) \| \d+ \|", summary)
