"""`predict` never hangs and never loses a row: FIFOs, link loops, dangling links and folder loops are skipped with a
reason; a kill -9 keeps the rows written and --resume finishes the job without duplicates. Each run is a real
`horses-humans predict` process with a timeout, on a tiny run exported to ONNX (no TensorFlow in the child: fast)."""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from horses_humans.data.layouts import VALIDATION

from ..exported_runs import exported_centroid_run
from ..tiers import slow_fixture

SRC = Path(__file__).resolve().parents[2] / "src"
TIMEOUT = 60  # seconds: a hang fails the test instead of blocking the suite


@pytest.fixture(scope="module")
@slow_fixture
def exported_run(tmp_path_factory):
    """(run dir, validation images): the 2-class centroid run with its parity-checked ONNX export."""
    run, data = exported_centroid_run(tmp_path_factory.mktemp("faults"))
    return run, sorted((data / VALIDATION).rglob("*.png"))


def predict(run: Path, *args, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """`horses-humans predict RUN ARGS...` in a fresh process; a hang raises TimeoutExpired (the test fails)."""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", "horses_humans", "predict", str(run), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def csv_rows(text: str) -> dict[str, dict]:
    """{file: row} of predict's CSV."""
    return {row["file"]: row for row in csv.DictReader(io.StringIO(text))}


def test_a_fifo_named_on_the_command_line_is_skipped_after_the_files_before_it(exported_run, tmp_path):
    run, images = exported_run
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # opening it for reading would block forever: no writer
    result = predict(run, images[0], fifo, images[1], "--csv")
    rows = csv_rows(result.stdout)
    assert result.returncode == 0, result.stderr
    assert list(rows) == [str(images[0]), str(fifo), str(images[1])]
    assert rows[str(images[0])]["label"] and rows[str(images[1])]["label"]
    assert "FIFO" in rows[str(fifo)]["error"] and not rows[str(fifo)]["label"]
    assert f"skipped: {fifo}: a FIFO (named pipe), not a regular file" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_folder_walk_reports_fifos_link_loops_dangling_links_and_folder_loops(exported_run, tmp_path):
    run, images = exported_run
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    good = [folder / "a.png", folder / "sub" / "z.png"]
    for source, target in zip(images, good):
        target.write_bytes(source.read_bytes())
    os.mkfifo(folder / "b-fifo.png")
    (folder / "c-loop.png").symlink_to(folder / "c-loop.png")  # a link to itself: stat says ELOOP
    (folder / "d-dangling.png").symlink_to(tmp_path / "gone.png")
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)  # a folder loop
    result = predict(run, folder, "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    rows = {Path(r["file"]).relative_to(folder).as_posix(): r for r in map(json.loads, result.stdout.splitlines())}
    assert list(rows) == ["a.png", "b-fifo.png", "c-loop.png", "d-dangling.png", "sub/up", "sub/z.png"]
    assert rows["a.png"]["label"] and rows["sub/z.png"]["label"]
    reasons = {
        "b-fifo.png": "a FIFO (named pipe)",
        "c-loop.png": "a symbolic link loop",
        "d-dangling.png": "a dangling symbolic link",
        "sub/up": "directory loop",
    }
    for name, words in reasons.items():
        assert words in rows[name]["error"] and rows[name]["label"] is None, name
        assert f"skipped: {folder / name}: " in result.stderr, name
    assert "predicted 2 of 6 files (4 skipped)" in result.stderr


def test_devices_and_sockets_are_never_opened(exported_run, tmp_path):
    import socket

    run, images = exported_run
    sock_path = tmp_path / "s.png"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sock_path))
        result = predict(run, "/dev/zero", sock_path, images[0], "--csv")  # /dev/zero would be read forever
    rows = csv_rows(result.stdout)
    assert result.returncode == 0, result.stderr
    assert "a device" in rows["/dev/zero"]["error"] and "a socket" in rows[str(sock_path)]["error"]
    assert rows[str(images[0])]["label"]


def test_kill_9_keeps_the_rows_written_and_resume_finishes_without_duplicates(exported_run, tmp_path):
    run, images = exported_run
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(400):
        (folder / f"{i:04d}.png").symlink_to(images[i % len(images)])
    output = tmp_path / "out.csv"
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "horses_humans",
            "predict",
            str(run),
            str(folder),
            "--output",
            str(output),
            "--batch-size",
            "4",
            "--workers",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + TIMEOUT
    while child.poll() is None and time.monotonic() < deadline and len(read_lines(output)) < 41:
        time.sleep(0.01)  # polling for progress, not timing anything
    child.send_signal(signal.SIGKILL)
    child.wait(TIMEOUT)
    written = read_lines(output)
    assert child.returncode == -signal.SIGKILL, "the run finished before it could be killed: make it longer"
    assert len(written) > 40 and written[0].startswith("file,label,probability")

    result = predict(run, folder, "--output", output, "--resume", "--batch-size", "4")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(output.read_text())))
    assert [r["file"] for r in rows] == [str(p) for p in sorted(folder.iterdir())]  # each once, in order
    assert all(r["label"] and not r["error"] for r in rows)
    assert "already in" in result.stderr


def read_lines(path: Path) -> list[str]:
    """The complete lines of a file being written (none if it does not exist yet)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    return text.splitlines()[: text.count("\n")]


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_a_non_utf8_name_is_written_as_text_any_json_parser_reads_and_resume_knows_it(exported_run, tmp_path, fmt):
    run, images = exported_run
    folder = tmp_path / "photos"
    folder.mkdir()
    cafe = os.fsdecode(os.fsencode(folder) + b"/caf\xe9.png")  # Latin-1, not UTF-8: as os.listdir gives it
    Path(cafe).write_bytes(images[0].read_bytes())
    output = tmp_path / f"out.{fmt}"
    first = predict(run, cafe, "--output", output)
    assert first.returncode == 0, first.stderr
    text = output.read_bytes().decode("utf-8")  # strict: a lone surrogate escape would not encode
    assert "\\udce9" not in text
    rows = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
    assert [r["file"] for r in rows] == [str(folder / "caf\\xe9.png")] and rows[0]["label"]
    (folder / "b.png").write_bytes(images[1].read_bytes())
    output.write_bytes(output.read_bytes().removesuffix(b"\n]\n"))  # as a killed JSON run leaves it
    again = predict(run, folder, "--output", output, "--resume")
    assert again.returncode == 0, again.stderr
    text = output.read_bytes().decode("utf-8")
    rows = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
    assert sorted(Path(r["file"]).name for r in rows) == ["b.png", "caf\\xe9.png"]  # not predicted twice
