"""File names that are not valid UTF-8, or that hold terminal escapes, never crash `data check`, `train` or `data
import` (issue 19, item 2). The commands run in a fresh process whose stdout is strict UTF-8, as on a desktop whose
locale is en_US.UTF-8 (a C.UTF-8 locale would hide the fault: Python then escapes what it cannot encode)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from horses_humans.data.layouts import TRAIN

SRC = str(Path(__file__).resolve().parents[2] / "src")  # this checkout's package, for the subprocesses
TIMEOUT_S = 300  # one tiny training run, far below this
ESCAPE = "\x1b[31mred.png"  # would turn the terminal red
CAFE = os.fsdecode(b"caf\xe9.png")  # the name's Latin-1 byte kept as a surrogate: what os.listdir gives


def horses_humans(*args: str) -> subprocess.CompletedProcess:
    """`python -m horses_humans ARGS` with a strict UTF-8 stdout and stderr."""
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONIOENCODING": "utf-8:strict"}
    return subprocess.run(
        [sys.executable, "-m", "horses_humans", *args], capture_output=True, env=env, timeout=TIMEOUT_S
    )


@pytest.fixture
def odd_names(data_dir) -> Path:
    """The synthetic data set plus, in its training horses: an image named caf\\xe9.png (Latin-1, not UTF-8), a
    non-image named bad\\xe9.png, and a copy of an image whose name holds a terminal escape."""
    horses = data_dir / TRAIN / "horses"
    first = sorted(horses.iterdir())[0]
    shutil.copyfile(first, horses / CAFE)
    (horses / os.fsdecode(b"bad\xe9.png")).write_bytes(b"not an image")
    shutil.copyfile(first, horses / ESCAPE)
    return data_dir


def assert_no_crash(done: subprocess.CompletedProcess) -> None:
    """Exit 0, no traceback, and neither the raw Latin-1 byte nor a raw ESC reached the terminal."""
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    out = done.stdout + done.stderr
    assert b"Traceback" not in out and b"\x1b" not in out and b"\xe9" not in out


def test_data_check_reports_the_names_escaped(odd_names):
    done = horses_humans("data", "check", "--data-dir", str(odd_names))
    assert_no_crash(done)
    out = done.stdout.decode()
    assert "caf\\xe9.png: the file name is not valid UTF-8" in out
    assert "bad\\xe9.png" in out and "\\x1b[31mred.png" in out  # the escape as text, in the duplicates line


@pytest.mark.slow  # trains a real (tiny) run
def test_train_skips_the_names_it_cannot_record_and_finishes_its_run(odd_names, tmp_path):
    runs = tmp_path / "runs"
    done = horses_humans(
        "train", "--recipe", "baseline", "--epochs", "1", "--image-size", "32", "--batch-size", "8",
        "--data-dir", str(odd_names), "--runs-dir", str(runs), "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert_no_crash(done)
    assert "warning: skipped" in done.stderr.decode() and "caf\\xe9.png" in done.stderr.decode()  # a log line
    (run,) = runs.iterdir()
    assert (run / "MODEL_CARD.md").is_file()  # the run was finished, not left half-made


def test_import_copies_every_name_as_it_is_and_reports_what_it_leaves_escaped(odd_names, tmp_path):
    (odd_names / TRAIN / "horses" / os.fsdecode(b"notes\xe9.txt")).write_text("not an image: left in place")
    done = horses_humans("data", "import", str(odd_names), "--data-dir", str(tmp_path / "imported"))
    assert_no_crash(done)
    horses = tmp_path / "imported" / TRAIN / "horses"
    assert {b"caf\xe9.png", ESCAPE.encode()} <= set(os.listdir(os.fsencode(horses)))
    assert (horses / CAFE).read_bytes() == (odd_names / TRAIN / "horses" / CAFE).read_bytes()
    report = done.stderr.decode()  # import's report is a log line, on stderr
    assert "1 not images (horse-or-human/horses/notes\\xe9.txt) (left in place, not imported)" in report
