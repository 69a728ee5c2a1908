"""File names that are not valid UTF-8, or that hold terminal escapes, never crash `data check`, `train` or `data
import` (issue 19, item 2). The commands run in a fresh process whose stdout is strict UTF-8, as on a desktop whose
locale is en_US.UTF-8 (a C.UTF-8 locale would hide the fault: Python then escapes what it cannot encode)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from horses_humans.data.files import shown
from horses_humans.data.layouts import TRAIN

from ..centroid_runs import write_centroid_run

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


# ---------------------------------------------------------------- a data folder whose own name is not UTF-8

CAFE_FOLDER = os.fsdecode(b"caf\xe9")  # a folder named in Latin-1, as os.listdir gives it
REFUSED = "holds 'caf\\xe9', a name that is not valid UTF-8, which a run's records cannot hold; rename that folder"


@pytest.fixture
def odd_folder(make_dataset, tmp_path) -> Path:
    """The synthetic data set in a folder named caf\\xe9 (Latin-1, not UTF-8)."""
    return make_dataset(tmp_path / CAFE_FOLDER)


def assert_one_clean_error(done: subprocess.CompletedProcess) -> str:
    """Exit 2 with one `error:` line that names the folder escaped -> that line; no traceback, no raw byte."""
    err = done.stderr.decode()
    assert done.returncode == 2 and b"Traceback" not in done.stderr and b"\xe9" not in done.stdout + done.stderr, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and REFUSED in line, err
    return line


def test_data_check_says_a_data_folder_that_is_not_utf8_cannot_be_trained_on(odd_folder):
    """The check still runs (counts, duplicates), and the folder's name is the one problem: train would refuse it."""
    done = horses_humans("data", "check", "--data-dir", str(odd_folder))
    out = done.stdout.decode()  # strict: no raw byte
    assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr.decode()
    assert f"problem: {shown(odd_folder)}: the data folder's path {REFUSED}" in out and "NOT usable" in out, out
    assert "horses" in out and "humans" in out  # the rest of the report is there
    done = horses_humans("data", "check", "--data-dir", str(odd_folder), "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 1 and os.fsencode(report["data_dir"]) == bytes(odd_folder)  # Python reads it back
    assert [REFUSED in problem for problem in report["problems"]] == [True]


@pytest.mark.parametrize("where", ["data folder", "--extra-data folder"])
def test_train_refuses_a_folder_that_is_not_utf8_before_it_makes_a_run(odd_folder, data_dir, tmp_path, where):
    """Before the fix the run trained, wrote the path into data.json and environment.json, then could not read them
    back: 'environment.json: not valid JSON ... the run is damaged' after all the training."""
    runs = tmp_path / "runs"
    folders = ["--data-dir", str(odd_folder)] if where == "data folder" else ["--data-dir", str(data_dir)]
    folders += ["--extra-data", str(odd_folder / TRAIN)] if where != "data folder" else []
    done = horses_humans(
        "train", "--recipe", "baseline", "--epochs", "1", "--image-size", "32", "--batch-size", "4", *folders,
        "--runs-dir", str(runs), "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert f"the {where}'s path" in assert_one_clean_error(done)
    assert not runs.exists() or not any(runs.iterdir())  # no half-made run folder left behind


def test_evaluate_refuses_a_folder_that_is_not_utf8_and_writes_nothing(odd_folder, tmp_path):
    run = write_centroid_run(tmp_path / "runs", 2)
    before = sorted(p.name for p in run.iterdir())
    assert_one_clean_error(horses_humans("evaluate", str(run), "--data-dir", str(odd_folder)))
    assert sorted(p.name for p in run.iterdir()) == before  # no evaluation it could not read back


def test_predict_answers_every_image_of_a_folder_that_is_not_utf8(odd_folder, tmp_path):
    """predict records nothing of the folder in a run: it answers, its table and CSV show the name escaped."""
    run = write_centroid_run(tmp_path / "runs", 2)
    for fmt in ("table", "csv"):
        done = horses_humans("predict", str(run), str(odd_folder), "--format", fmt)
        assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode()
        out = done.stdout.decode()  # strict: no raw byte
        assert out.count(f"{shown(odd_folder)}/") == 10 and out.count("horses-") + out.count("humans-") == 10, out
