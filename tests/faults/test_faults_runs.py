"""Damaged runs, done for real: each run file garbled, emptied, cut short, wrong-typed or missing a key, and model files
that do not fit labels.json, through every command that reads runs. Each must be one `error:` line naming the file,
exit code 2 and no traceback; `runs` and `serve` without a RUN skip a damaged run beside good ones."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from horses_humans.cli.main import main
from horses_humans.config import TrainConfig
from horses_humans.data.layouts import VALIDATION
from horses_humans.runs.store import (
    BEST_MODEL_FILE,
    CALIBRATION_FILE,
    CONFIG_FILE,
    DATA_FILE,
    LABELS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RESUME_DIR,
    save_model,
)

from ..centroid_runs import centroid_model, centroid_setup, write_centroid_run
from ..fake_runs import write_run
from ..synthetic import class_names

GARBAGE = bytes(range(256))[::-7] * 5  # not UTF-8, not JSON, not a zip
# file -> (a key to give the wrong type, its wrong value, a required key to drop; None: every key is optional)
JSON_FAULTS = {
    CONFIG_FILE: ("epochs", "three", "image_size"),
    LABELS_FILE: ("class_names", "horses", "input_size"),
    METRICS_FILE: ("val_accuracy", "high", "val_accuracy"),
    CALIBRATION_FILE: ("temperature", "warm", None),  # no temperature means T = 1: nothing can be missing
    DATA_FILE: ("sides", ["train"], "sides"),
}
JSON_DAMAGES = ("garbage", "empty", "truncated", "wrong type", "missing key")
JSON_CASES = [
    (name, damage)
    for name, faults in JSON_FAULTS.items()
    for damage in JSON_DAMAGES
    if damage != "missing key" or faults[2] is not None
]
MODEL_DAMAGES = ("garbage", "empty", "truncated", "no weights", "input size", "outputs")
MODEL_COMMANDS = ("evaluate", "predict", "export", "report", "explain", "calibrate", "unsure", "serve")
JSON_COMMANDS = MODEL_COMMANDS + ("card", "compare")
COMMAND_TIMEOUT_S = 120  # the subprocess test: a TensorFlow import and one model load, far below this


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """(run, data): a finished three-class run with calibration.json and data.json, and its data folder."""
    run, data = centroid_setup(tmp_path_factory.mktemp("good"), 3)
    (run / CALIBRATION_FILE).write_text(json.dumps({"temperature": 1.5, "unsure": {"min_confidence": 0.4}}))
    (run / DATA_FILE).write_text(
        json.dumps(
            {
                "data_dir": str(data),
                "layout": "official",
                "class_names": class_names(3),
                "sha256": "0" * 64,
                "sides": {},
            }
        )
    )  # no sides: the split as found now
    return run, data


@pytest.fixture
def run_copy(good_run, tmp_path):
    """A fresh copy of the good run to damage, and the data folder."""
    run, data = good_run
    return shutil.copytree(run, tmp_path / "runs" / run.name), data


@pytest.fixture
def no_server(monkeypatch):
    """`serve` must fail before it listens: reaching serve.server.serve is a failure here, not a hang."""
    from horses_humans.serve import server

    def refuse(*args, **kwargs):
        raise AssertionError("the server started on a damaged run")

    monkeypatch.setattr(server, "serve", refuse)


def argv_for(command: str, run, data, image) -> list[str]:
    """The command line of `command` on run (each with what it needs to get as far as reading the model)."""
    with_data = ["--data-dir", str(data)]
    return {
        "evaluate": ["evaluate", str(run), *with_data],
        "predict": ["predict", str(run), str(image)],
        "export": ["export", str(run), "--format", "keras", *with_data],
        "report": ["report", str(run), *with_data, "--cache-dir", str(run.parent / "cache")],
        "explain": ["explain", str(run), str(image), "--out", str(run.parent / "explain")],
        "calibrate": ["calibrate", str(run), *with_data],
        "unsure": ["unsure", str(run), *with_data],
        "serve": ["serve", str(run), "--port", "8765"],
        "card": ["card", str(run)],
        "compare": ["compare", str(run), "--out", str(run.parent / "compare")],
    }[command]


def damaged_json(text: str, damage: str, faults: tuple) -> bytes:
    """The file's new bytes for one damage."""
    key, wrong, required = faults
    record = json.loads(text)
    if damage == "wrong type":
        return json.dumps({**record, key: wrong}).encode()
    if damage == "missing key":
        return json.dumps({k: v for k, v in record.items() if k != required}).encode()
    return {"garbage": GARBAGE, "empty": b"", "truncated": text.encode()[: len(text) // 2]}[damage]


def damage_model(run, name: str, damage: str) -> None:
    """Write RUN/name damaged: garbled, emptied, cut short, without weights, or a working model that does not fit
    labels.json."""
    whole = (run / MODEL_FILE).read_bytes()
    if damage in ("input size", "outputs"):  # labels.json says 3 classes at 32 px
        save_model(run, centroid_model(3, 48) if damage == "input size" else centroid_model(2), name)
    elif damage == "no weights":  # a sound zip that lost its weights file
        with zipfile.ZipFile(run / MODEL_FILE) as whole_zip:
            config = whole_zip.read("config.json")
        with zipfile.ZipFile(run / name, "w") as part:
            part.writestr("config.json", config)
    else:
        (run / name).write_bytes({"garbage": GARBAGE, "empty": b"", "truncated": whole[: len(whole) // 2]}[damage])


def assert_one_error_naming(path, rc: int, out: str, err: str) -> None:
    """Exit code 2, exactly one `error:` line, naming the file, and no traceback anywhere."""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 2, err
    assert len(errors) == 1 and str(path) in errors[0], err
    assert "Traceback" not in out + err


@pytest.mark.parametrize("command", JSON_COMMANDS)
@pytest.mark.parametrize("name, damage", JSON_CASES)
def test_a_damaged_json_file_is_one_error_line_in_every_command(run_copy, name, damage, command, capsys, no_server):
    run, data = run_copy
    (run / name).write_bytes(damaged_json((run / name).read_text(), damage, JSON_FAULTS[name]))
    image = next((data / VALIDATION).rglob("*.png"))
    rc = main(argv_for(command, run, data, image))
    assert_one_error_naming(run / name, rc, *capsys.readouterr())


@pytest.mark.parametrize("command", MODEL_COMMANDS)
@pytest.mark.parametrize("damage", MODEL_DAMAGES)
@pytest.mark.parametrize("name", [MODEL_FILE, BEST_MODEL_FILE])
def test_a_damaged_or_mismatched_model_is_one_error_line(run_copy, name, damage, command, capsys, no_server):
    run, data = run_copy
    if name == BEST_MODEL_FILE:  # a run with both checkpoints serves the best one by default
        shutil.copyfile(run / MODEL_FILE, run / BEST_MODEL_FILE)
    damage_model(run, name, damage)
    image = next((data / VALIDATION).rglob("*.png"))
    rc = main(argv_for(command, run, data, image))
    out, err = capsys.readouterr()
    assert_one_error_naming(run / name, rc, out, err)
    if damage in ("input size", "outputs"):
        assert "labels.json" in err and "different runs" in err
    assert ("--checkpoint last" in err) == (name == BEST_MODEL_FILE)  # the other checkpoint still works


def test_the_intact_copy_works(run_copy, capsys):
    run, data = run_copy
    image = next((data / VALIDATION).rglob("*.png"))
    assert main(["predict", str(run), str(image)]) == 0
    assert main(["card", str(run)]) == 0
    assert "error:" not in capsys.readouterr().err


@pytest.mark.slow
def test_serve_with_a_bad_model_exits_2_before_listening(run_copy):
    run, _ = run_copy
    damage_model(run, MODEL_FILE, "outputs")
    done = subprocess.run(
        [sys.executable, "-m", "horses_humans", "serve", str(run), "--port", "8766"],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "startup failed" not in done.stderr
    assert f"error: {run / MODEL_FILE}: the model's output is 1 wide" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", [LABELS_FILE, MODEL_FILE])
def test_a_fifo_in_place_of_a_run_file_fails_without_hanging(run_copy, name):
    run, _ = run_copy
    (run / name).unlink()
    os.mkfifo(run / name)  # nothing ever writes to it: reading it would block forever
    command = ["card", str(run)] if name == LABELS_FILE else ["predict", str(run), str(run / CONFIG_FILE)]
    done = subprocess.run(
        [sys.executable, "-m", "horses_humans", *command], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"error: {run / name}: " in done.stderr and "not a regular file" in done.stderr


def fake_runs_beside_a_damaged_one(runs_dir):
    """Three runs of one configuration (seeds 0, 1, 2), seed 1's labels.json garbled: (good, damaged)."""
    made = [write_run(runs_dir, TrainConfig(recipe="baseline", image_size=32, seed=seed)) for seed in range(3)]
    (made[1] / LABELS_FILE).write_bytes(GARBAGE)
    return [made[0], made[2]], made[1]


def test_runs_lists_the_good_runs_and_warns_of_the_damaged_one(tmp_path, capsys):
    good, damaged = fake_runs_beside_a_damaged_one(tmp_path)
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "| baseline | 32 | 15 | - | 0,2 |" in out  # seed 1 is not averaged in
    (warning,) = err.splitlines()
    assert warning.startswith(f"warning: skipped {damaged.name}: ") and str(damaged / LABELS_FILE) in warning


def test_runs_all_lists_unfinished_damaged_runs_and_temp_files(tmp_path, capsys):
    good, damaged = fake_runs_beside_a_damaged_one(tmp_path)
    for run in good:  # fake runs' model.keras is empty, which --all reports as damaged
        save_model(run, centroid_model(2))
    resumable = write_run(tmp_path, TrainConfig(recipe="baseline", image_size=32, seed=7), finished=False)
    (resumable / RESUME_DIR).mkdir()
    abandoned = write_run(tmp_path, TrainConfig(recipe="baseline", image_size=32, seed=8), finished=False)
    (good[0] / f".{METRICS_FILE}.x1y2.tmp").write_text("{")
    (tmp_path / "notes").mkdir()  # not a run: not listed
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    assert "note: 2 unfinished run(s) not listed: `horses-humans runs --all`" in capsys.readouterr().err
    assert main(["runs", "--all", "--runs-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    rows = {line.split(" | ")[0].strip("| "): line for line in out.splitlines() if line.startswith("| ")}
    assert "| 0,2 |" in out and err == ""  # --all reports the damaged run in its table, not as a warning
    assert "damaged" in rows[damaged.name] and f"{LABELS_FILE}: not valid JSON" in rows[damaged.name]
    assert f"resume with `horses-humans train --resume {resumable}`" in rows[resumable.name]
    assert "unfinished" in rows[abandoned.name] and "nothing to resume from" in rows[abandoned.name]
    assert "temporary file" in rows[f"{good[0].name}/.{METRICS_FILE}.x1y2.tmp"]
    assert "notes" not in rows and good[0].name not in rows


def test_serve_picks_the_best_run_whose_model_loads(tmp_path, monkeypatch, capsys):
    runs_dir = tmp_path / "runs"
    good = write_centroid_run(runs_dir, 2)
    better_but_garbled = write_centroid_run(runs_dir, 2)
    (better_but_garbled / CONFIG_FILE).write_bytes(GARBAGE)
    best_but_wrong_model = write_centroid_run(runs_dir, 2)
    save_model(best_but_wrong_model, centroid_model(3))
    for run, accuracy in ((good, 0.7), (better_but_garbled, 0.8), (best_but_wrong_model, 0.9)):
        (run / METRICS_FILE).write_text(json.dumps({"val_accuracy": accuracy}))
    started = []
    from horses_humans.serve import server

    monkeypatch.setattr(server, "serve", lambda settings: started.append(settings))
    assert main(["serve", "--runs-dir", str(runs_dir), "--port", "8767"]) == 0
    err = capsys.readouterr().err
    assert started and f"serving {good} on" in err
    assert f"warning: skipped {better_but_garbled.name}: {better_but_garbled / CONFIG_FILE}" in err
    assert f"warning: skipped {best_but_wrong_model.name}: {best_but_wrong_model / MODEL_FILE}" in err


def record_checkpoints(run) -> None:
    """Make run as training leaves it: metrics.json names both checkpoints, model-best.keras beside model.keras."""
    shutil.copyfile(run / MODEL_FILE, run / BEST_MODEL_FILE)
    metrics = json.loads((run / METRICS_FILE).read_text())
    metrics["checkpoints"] = {
        "best": {"file": BEST_MODEL_FILE, "epoch": 1, "val_accuracy": 1.0},
        "last": {"file": MODEL_FILE, "epoch": 1, "val_accuracy": 1.0},
    }
    (run / METRICS_FILE).write_text(json.dumps(metrics))


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_a_missing_best_checkpoint_is_one_error_line_never_the_last_epoch(run_copy, command, capsys, no_server):
    run, data = run_copy
    record_checkpoints(run)
    (run / BEST_MODEL_FILE).unlink()  # metrics.json still reports the best epoch: model.keras must not answer for it
    image = next((data / VALIDATION).rglob("*.png"))
    rc = main(argv_for(command, run, data, image))
    out, err = capsys.readouterr()
    assert_one_error_naming(run / BEST_MODEL_FILE, rc, out, err)
    assert "missing" in err and METRICS_FILE in err and "--checkpoint last" in err


def test_the_last_checkpoint_still_answers_and_runs_reports_the_missing_best(run_copy, capsys):
    run, data = run_copy
    record_checkpoints(run)
    (run / BEST_MODEL_FILE).unlink()
    image = next((data / VALIDATION).rglob("*.png"))
    assert main(["predict", str(run), str(image), "--checkpoint", "last"]) == 0
    assert "answering with Keras (model.keras)" in capsys.readouterr().err
    assert main(["runs", "--runs-dir", str(run.parent)]) == 0
    out, err = capsys.readouterr()
    assert f"warning: skipped {run.name}: {run / BEST_MODEL_FILE}: missing" in err and "| baseline |" not in out
    assert main(["runs", "--all", "--runs-dir", str(run.parent)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"| {run.name} "))
    assert "damaged" in row and f"{BEST_MODEL_FILE}: missing" in row
