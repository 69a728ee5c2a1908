"""`predict`'s output under faults: a file another model began (--resume refuses it), file names that are not UTF-8
or carry escape sequences, a full disk (tmpfs) or a file-size limit mid-write (one error line, then --resume
finishes), a reader that closes the pipe (`| head`), and images over the pixel limit. Each run is a real
`horses-humans predict` process on the tiny exported run of test_faults_predict (ONNX: no TensorFlow in the child)."""

import csv
import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from horses_humans.data.layouts import VALIDATION

from ..exported_runs import exported_centroid_run
from .test_faults_predict import SRC, TIMEOUT, predict


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory):
    """(run dir, validation images): the 2-class centroid run with its parity-checked ONNX export."""
    run, data = exported_centroid_run(tmp_path_factory.mktemp("outputs"))
    return run, sorted((data / VALIDATION).rglob("*.png"))


def child_env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def many_files(folder: Path, images: list[Path], n: int) -> Path:
    """`n` links to the run's validation images, named 0000.png ... (sorted: the walk's order)."""
    folder.mkdir()
    for i in range(n):
        (folder / f"{i:04d}.png").symlink_to(images[i % len(images)])
    return folder


def csv_files(path: Path) -> list[str]:
    """The file column of a CSV's complete rows (a row cut short by a failed write is not one)."""
    text = path.read_bytes().decode("utf-8")
    return [row["file"] for row in csv.DictReader(io.StringIO(text[: text.rfind("\n") + 1], newline=""))]


# ---------------------------------------------------------------- which model answered


def test_the_output_says_which_model_answered(exported_run, tmp_path):
    run, images = exported_run
    result = predict(run, images[0], images[1], "--output", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    stamp = {"run": run.name, "checkpoint": "model.keras", "runtime": "onnx:web"}
    sidecar = json.loads((tmp_path / "out.csv.meta.json").read_text())
    assert sidecar == {"model": stamp, "class_names": ["horses", "humans"]}
    assert csv_files(tmp_path / "out.csv") == [str(images[0]), str(images[1])]  # the CSV itself stays plain
    result = predict(run, images[0], "--format", "jsonl")
    assert [json.loads(line)["model"] for line in result.stdout.splitlines()] == [stamp]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_resume_refuses_a_file_another_run_began(exported_run, tmp_path, fmt):
    run, images = exported_run
    other = tmp_path / "another-run"
    shutil.copytree(run, other)  # same classes, same export: only which run answered differs
    output = tmp_path / f"out.{fmt}"
    assert predict(other, images[0], "--output", output).returncode == 0
    before = output.read_bytes()
    result = predict(run, images[0], images[1], "--output", output, "--resume")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {output}: was begun by run another-run, checkpoint model.keras")
    assert f"not run {run.name}," in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert output.read_bytes() == before  # nothing appended


def test_resume_refuses_another_checkpoint_or_runtime_and_a_csv_without_its_sidecar(tmp_path):
    from horses_humans.config import HorsesHumansError
    from horses_humans.inference.predictor import Prediction
    from horses_humans.inference.resultfiles import ModelStamp, open_results

    names, first = ["horses", "humans"], ModelStamp("r", "model.keras", "onnx:web")
    rows = [Prediction("a.png", "humans", 0.75, {"horses": 0.25, "humans": 0.75})]
    for fmt in ("csv", "jsonl"):
        output = tmp_path / f"out.{fmt}"
        with open_results(output, fmt, names, first) as writer:
            writer.write(rows)
        for other in (ModelStamp("r", "model-best.keras", "onnx:web"), ModelStamp("r", "model.keras", "keras")):
            with pytest.raises(HorsesHumansError, match="was begun by run r, checkpoint model.keras, runtime onnx"):
                with open_results(output, fmt, names, other, resume=True):
                    pass
        with open_results(output, fmt, names, first, resume=True) as writer:  # the same model continues
            assert writer.done == {"a.png"}
    (tmp_path / "out.csv.meta.json").unlink()  # a CSV nothing says the model of
    with pytest.raises(HorsesHumansError, match="does not say which model began it"):
        with open_results(tmp_path / "out.csv", "csv", names, first, resume=True):
            pass


# ---------------------------------------------------------------- file names


@pytest.fixture
def odd_names(exported_run, tmp_path) -> tuple[Path, Path, Path]:
    """(folder, the not-UTF-8 name, the name with an escape sequence), both valid images."""
    folder = tmp_path / "odd"
    folder.mkdir()
    latin1 = Path(os.fsdecode(bytes(folder) + b"/caf\xe9.png"))  # Latin-1 bytes: not UTF-8
    escape = folder / "\x1b[31mred.png"
    for path, image in zip((latin1, escape), exported_run[1]):
        shutil.copyfile(image, path)
    return folder, latin1, escape


def test_names_that_are_not_utf8_are_escaped_in_csv_and_the_table(exported_run, odd_names, tmp_path):
    run, _ = exported_run
    folder, _, _ = odd_names
    (folder / "\x1b[2Jnotes.png").write_text("not an image")  # its error row, and its skipped line, quote it
    env = child_env()
    for fmt in ("csv", "table"):
        result = subprocess.run(
            [sys.executable, "-m", "horses_humans", "predict", str(run), str(folder), "--format", fmt],
            capture_output=True,
            timeout=TIMEOUT,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        text = result.stdout.decode("utf-8")  # strict: no raw byte on stdout
        assert f"{folder}/caf\\xe9.png" in text, text
    assert b"\x1b" not in result.stdout and "\\x1b[31mred.png" in text  # the table prints no escape sequence
    assert b"\x1b" not in result.stderr and "\\x1b[2Jnotes.png: not an image" in result.stderr.decode()


def test_a_csv_with_escaped_names_resumes_without_duplicates(exported_run, odd_names, tmp_path):
    run, _ = exported_run
    folder, latin1, escape = odd_names
    output = tmp_path / "out.csv"
    assert predict(run, latin1, "--output", output).returncode == 0
    result = predict(run, folder, "--output", output, "--resume")
    assert result.returncode == 0, result.stderr
    output.read_bytes().decode("utf-8")  # strict: the file is UTF-8 text
    assert csv_files(output) == [f"{folder}/caf\\xe9.png", str(escape)]  # each once; the CSV keeps the ESC
    assert "1 already in" in result.stderr


# ---------------------------------------------------------------- a full disk, a closed pipe


def fill_and_resume(run: Path, folder: Path, output: Path, preexec=None, grow=None) -> None:
    """Predict `folder` into `output` where the writes fail part-way (preexec / the file system), check the one error
    line, make room (`grow`), resume, and check every file is there once, in order."""
    argv = [sys.executable, "-m", "horses_humans", "predict", str(run), str(folder), "--output", str(output)]
    result = subprocess.run(
        [*argv, "--batch-size", "8"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=child_env(),
        preexec_fn=preexec,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"error: {output}: cannot write (")
    assert "run the same command again with --resume" in result.stderr and "Traceback" not in result.stderr
    kept = csv_files(output)
    assert 0 < len(kept) < 400
    if grow:
        grow()
    result = subprocess.run([*argv, "--resume"], capture_output=True, text=True, timeout=TIMEOUT, env=child_env())
    assert result.returncode == 0, result.stderr
    assert csv_files(output) == [str(p) for p in sorted(folder.iterdir())]
    assert f"{len(kept)} already in" in result.stderr


def test_a_file_size_limit_mid_write_is_one_line_and_resume_finishes(exported_run, tmp_path):
    """RLIMIT_FSIZE in the child: its write past 16 KB fails (EFBIG, the signal ignored), as on a full disk."""
    run, images = exported_run

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, resource.RLIM_INFINITY))

    fill_and_resume(run, many_files(tmp_path / "many", images, 400), tmp_path / "out.csv", preexec=limit)


def test_a_full_disk_is_one_line_and_resume_finishes(exported_run, tmp_path):
    """ENOSPC itself: a 16 KB tmpfs (needs root to mount), grown to 1 MB before --resume."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root; the file-size-limit test covers the same path unprivileged")
    run, images = exported_run
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        grow = lambda: subprocess.run(["mount", "-o", "remount,size=1m", str(disk)], check=True)  # noqa: E731
        fill_and_resume(run, many_files(tmp_path / "many", images, 400), disk / "out.csv", grow=grow)
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_reader_that_closes_the_pipe_ends_predict_quietly(exported_run, tmp_path):
    """`predict FOLDER --csv | head -n 1`, two real processes: predict sees EPIPE and exits as SIGPIPE would
    (141, what the shell shows for `yes | head`), with nothing on stderr but its own lines."""
    run, images = exported_run
    folder = many_files(tmp_path / "many", images, 400)
    argv = [sys.executable, "-m", "horses_humans", "predict", str(run), str(folder), "--csv", "--batch-size", "4"]
    with open(tmp_path / "err", "w") as err:
        producer = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=child_env())
        head = subprocess.Popen(["head", "-n", "1"], stdin=producer.stdout, stdout=subprocess.PIPE)
        producer.stdout.close()  # head holds the only reading end
        first, _ = head.communicate(timeout=TIMEOUT)
        code = producer.wait(TIMEOUT)
    stderr = (tmp_path / "err").read_text()
    assert first.decode().startswith("file,label,probability")
    assert code == 141, stderr  # 141: the pipe did close before predict was done
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr and "Exception ignored" not in stderr


# ---------------------------------------------------------------- the pixel limit


def test_an_image_over_the_pixel_limit_is_an_error_row_naming_the_option(exported_run, tmp_path):
    """8000x6000 (48M pixels, a 6 MB file; under Pillow's own bomb limit) is over the default 40M, as on the server;
    --max-pixels moves the limit."""
    run, images = exported_run
    huge, wide = tmp_path / "huge.png", tmp_path / "wide.png"
    Image.new("1", (8000, 6000)).save(huge)
    Image.new("RGB", (2000, 1000), (200, 10, 10)).save(wide)
    result = predict(run, huge, images[0], "--csv", "--strict")
    rows = {row["file"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert result.returncode == 1 and "Traceback" not in result.stderr
    error = rows[str(huge)]["error"]
    assert error.startswith(f"{huge}: 8000x6000 is 48,000,000 pixels, over the limit of 40,000,000") and (
        "--max-pixels" in error
    )
    assert rows[str(images[0])]["label"] and not rows[str(huge)]["label"]
    result = predict(run, wide, "--csv", "--max-pixels", "1000000")
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert "over the limit of 1,000,000" in row["error"] and result.returncode == 1
    (row,) = csv.DictReader(io.StringIO(predict(run, wide, "--csv", "--max-pixels", "2000000").stdout))
    assert row["label"] and not row["error"]
    result = predict(run, wide, "--max-pixels", "0")
    assert result.returncode == 2 and "--max-pixels must be a positive integer" in result.stderr
