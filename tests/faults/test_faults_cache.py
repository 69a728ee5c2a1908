"""Damaged caches are found and rebuilt, never used: each fault is done to the pixel and the feature cache on disk,
then the next load must say so in one line and return what a fresh build returns. Two processes building the same
cache build it once."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.core import arraycache
from horses_humans.data.layouts import find_dataset
from horses_humans.data.pixels import load_side
from horses_humans.models.recipes import build_model, get_recipe
from horses_humans.training.features import cached_features

from ..tiers import slow_fixture

SIZE = 32
SRC = str(Path(__file__).resolve().parents[2] / "src")  # this checkout's package, for the subprocesses


def truncate(npy: Path, meta: Path) -> None:
    npy.write_bytes(npy.read_bytes()[: npy.stat().st_size // 2])


def zero(npy: Path, meta: Path) -> None:
    npy.write_bytes(bytes(npy.stat().st_size))


def shuffle_rows(npy: Path, meta: Path) -> None:
    """Rows in another order, the .npy header and so its shape and dtype intact."""
    array = np.load(npy, mmap_mode="r+")
    array[:] = np.array(array[::-1])
    array.flush()


def overwrite_data(npy: Path, meta: Path) -> None:
    """Random bytes over the last 256 bytes of the data, the header intact."""
    with open(npy, "r+b") as fh:
        fh.seek(-256, 2)
        fh.write(np.random.default_rng(0).integers(0, 256, 256, dtype=np.uint8).tobytes())


def garbage_metadata(npy: Path, meta: Path) -> None:
    meta.write_bytes(b'{"shape": [3, \xff\x00 garbage')


def delete_npy(npy: Path, meta: Path) -> None:
    npy.unlink()


def wrong_shape(npy: Path, meta: Path) -> None:
    record = json.loads(meta.read_text())
    meta.write_text(json.dumps({**record, "shape": [record["shape"][0] + 1, *record["shape"][1:]]}))


FAULTS = [truncate, zero, shuffle_rows, overwrite_data, garbage_metadata, delete_npy, wrong_shape]


def cache_files(folder: Path) -> tuple[Path, Path]:
    """The one (NAME.npy, NAME.json) pair in a cache folder."""
    (meta,) = folder.glob("*.json")
    return meta.with_suffix(".npy"), meta


@pytest.fixture
@slow_fixture
def train_files(data_dir):
    return find_dataset(data_dir).sides["train"]


def load_pixels(data_dir, cache_dir, lines) -> np.ndarray:
    return np.array(load_side(find_dataset(data_dir), "train", SIZE, cache_dir, lines.append).x)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__)
def test_a_damaged_pixel_cache_is_rebuilt_and_equals_a_fresh_decode(fault, data_dir, tmp_path):
    fresh = load_pixels(data_dir, tmp_path / "fresh", [])
    lines = []
    load_pixels(data_dir, tmp_path / "cache", lines)
    fault(*cache_files(tmp_path / "cache" / "pixels"))
    rebuilt = load_pixels(data_dir, tmp_path / "cache", lines)
    damaged = [line for line in lines if "is damaged" in line]
    assert len(damaged) == 1 and damaged[0].startswith("cache ") and damaged[0].endswith(": rebuilding"), lines
    assert np.array_equal(rebuilt, fresh)
    lines.clear()
    assert np.array_equal(load_pixels(data_dir, tmp_path / "cache", lines), fresh) and not lines  # rebuilt for good


@pytest.fixture(scope="module")
def mobilenet():
    config = TrainConfig(recipe="mobilenet_v2", weights="none", image_size=SIZE)
    return get_recipe(config.recipe), build_model(config)


def load_features(mobilenet, split, cache_dir, lines) -> np.ndarray:
    recipe, model = mobilenet
    return np.array(cached_features(recipe, model, split, cache_dir, lines.append))


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__)
def test_a_damaged_feature_cache_is_rebuilt_and_equals_a_fresh_extraction(fault, mobilenet, data_dir, tmp_path):
    split = load_side(find_dataset(data_dir), "train", SIZE, tmp_path / "pixels", print)
    fresh = load_features(mobilenet, split, tmp_path / "fresh", [])
    lines = []
    load_features(mobilenet, split, tmp_path / "cache", lines)
    fault(*cache_files(tmp_path / "cache" / "features"))
    lines.clear()
    rebuilt = load_features(mobilenet, split, tmp_path / "cache", lines)
    assert sum("is damaged" in line for line in lines) == 1 and sum("computing" in line for line in lines) == 1, lines
    np.testing.assert_allclose(rebuilt, fresh, rtol=1e-6, atol=1e-6)
    lines.clear()
    np.testing.assert_allclose(load_features(mobilenet, split, tmp_path / "cache", lines), fresh, rtol=1e-6, atol=1e-6)
    assert not lines


BUILDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    from horses_humans.core.arraycache import cached_array

    folder, role = Path(sys.argv[1]), sys.argv[2]

    def build():
        with open(folder / "builds.txt", "a") as fh:
            fh.write(role + "\\n")
        deadline = time.monotonic() + 60  # the first builder holds on until the second one is waiting for it
        while role == "first" and time.monotonic() < deadline:
            log = folder / "second.out"
            if log.exists() and "waiting for another process" in log.read_text():
                break
            time.sleep(0.05)
        while role == "stuck":  # until killed, holding the lock
            time.sleep(1)
        return np.arange(1000, dtype=np.float32), {"by": role}

    array, meta = cached_array(folder / "cache", "shared", build, log=lambda line: print(line, flush=True))
    print("result", meta["by"], float(array.sum()), flush=True)
""")


def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def builder(script: Path, folder: Path, role: str, out) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(script), str(folder), role],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": SRC},
    )


def test_two_processes_building_one_cache_build_it_once(tmp_path):
    script = tmp_path / "builder.py"
    script.write_text(BUILDER)
    processes = []
    with open(tmp_path / "first.out", "w") as first_out, open(tmp_path / "second.out", "w") as second_out:
        try:
            processes.append(builder(script, tmp_path, "first", first_out))
            wait_for(lambda: (tmp_path / "builds.txt").exists(), 60, "the first process to start building")
            processes.append(builder(script, tmp_path, "second", second_out))
            assert [p.wait(timeout=120) for p in reversed(processes)] == [0, 0]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
    assert (tmp_path / "builds.txt").read_text() == "first\n"  # built once
    second_text = (tmp_path / "second.out").read_text()
    assert "waiting for another process building" in second_text
    expected = f"result first {float(np.arange(1000).sum())}"
    assert expected in (tmp_path / "first.out").read_text() and expected in second_text  # the first's result


def test_a_builder_killed_while_holding_the_lock_does_not_block_the_next(tmp_path):
    script = tmp_path / "builder.py"
    script.write_text(BUILDER)
    processes = []
    with open(tmp_path / "stuck.out", "w") as stuck_out, open(tmp_path / "second.out", "w") as second_out:
        try:
            processes.append(builder(script, tmp_path, "stuck", stuck_out))
            wait_for(lambda: (tmp_path / "builds.txt").exists(), 60, "the first process to start building")
            processes.append(builder(script, tmp_path, "second", second_out))
            wait_for(
                lambda: "waiting for another process" in (tmp_path / "second.out").read_text(),
                60,
                "the second process to wait for the lock",
            )
            processes[0].send_signal(signal.SIGKILL)  # the lock dies with its holder (flock)
            assert processes[1].wait(timeout=120) == 0
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
    assert (tmp_path / "builds.txt").read_text() == "stuck\nsecond\n"
    assert f"result second {float(np.arange(1000).sum())}" in (tmp_path / "second.out").read_text()


# ---------------------------------------------------------------- a full disk (issue 19, item 4)


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs: too small for the pixel cache of the synthetic set at 64 px (6 x 64 x 64 x 3 = 72 KiB)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def assert_one_line_naming(exc: pytest.ExceptionInfo, folder: Path) -> None:
    message = str(exc.value)
    assert "\n" not in message and str(folder / "pixels") in message and ".npy" in message
    assert "cannot write the pixel cache" in message and "free some space" in message


def test_a_full_disk_while_the_pixel_cache_is_written_is_one_error_naming_it(data_dir, full_disk):
    dataset = find_dataset(data_dir)
    with pytest.raises(HorsesHumansError) as exc:
        load_side(dataset, "train", 64, full_disk, warn=lambda line: None)
    assert_one_line_naming(exc, full_disk)
    assert [p.name for p in (full_disk / "pixels").iterdir() if p.suffix in (".npy", ".json", ".tmp")] == []


def test_a_writer_that_finds_the_disk_full_is_one_error_naming_the_cache(data_dir, tmp_path, monkeypatch):
    def full(path, array):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(arraycache, "save_npy_atomic", full)
    with pytest.raises(HorsesHumansError) as exc:
        load_side(find_dataset(data_dir), "train", 32, tmp_path / "cache", warn=lambda line: None)
    assert_one_line_naming(exc, tmp_path / "cache")


def test_a_full_disk_in_train_is_one_error_line_not_a_traceback(data_dir, full_disk, capsys):
    from horses_humans.cli.main import main

    args = ["train", "--recipe", "baseline", "--epochs", "1", "--image-size", "64", "--data-dir", str(data_dir)]
    assert main([*args, "--cache-dir", str(full_disk), "--runs-dir", str(full_disk.parent / "runs")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and "cannot write the pixel cache" in err
