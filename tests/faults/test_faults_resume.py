"""Interrupted training resumes: a `horses-humans train` subprocess is SIGKILLed in the middle of an epoch, after
the epochs before it were backed up, then `train --resume RUN` finishes it; the result is compared with an
uninterrupted run of the same seed (one stage, and a transfer run killed in its head and in its fine-tuning stage)."""

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

from horses_humans.cli.main import main
from horses_humans.config import TrainConfig
from horses_humans.core.workspace import Workspace, quiet
from horses_humans.runs.store import HISTORY_FILE, METRICS_FILE, RESUME_DIR, load_run
from horses_humans.training.loop import train
from horses_humans.training.resume import STATE_FILE

from ..fake_runs import write_run
from ..synthetic import make_dataset
from ..tiers import slow_fixture

SRC = str(Path(__file__).resolve().parents[2] / "src")  # this checkout's package, for the subprocess

BASELINE = {"recipe": "baseline", "epochs": 4, "image_size": 32, "batch_size": 8, "seed": 1, "precision": "float32"}
EARLY_STOPPED = {**BASELINE, "epochs": 8, "early_stopping": True}  # learnt at epoch 1: stops after 3 more
FINE_TUNED = {
    "recipe": "mobilenet_v2",
    "weights": "none",
    "epochs": 2,
    "image_size": 32,
    "batch_size": 8,
    "seed": 1,
    "learning_rate": 0.01,
    "fine_tune_from": "10",
    "fine_tune_epochs": 2,
}

# The killed process: `horses-humans train ...` with one more callback that holds it in the middle of epoch
# STALL (after its first batch), so the kill always lands after epoch STALL - 1 was backed up and before STALL ends.
STALLING_TRAIN = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from horses_humans.core import backend
    backend.configure()
    import keras
    from horses_humans.training import loop as training
    from horses_humans.cli.main import main

    stall, marker = int(sys.argv[1]), Path(sys.argv[2])

    class Stall(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == stall:
                marker.write_text(str(stall))
                while True:  # until killed
                    time.sleep(1)

    observers = training.observers
    training.observers = lambda run_dir, epochs, tensorboard: [*observers(run_dir, epochs, tensorboard), Stall()]
    sys.exit(main(sys.argv[3:]))
""")


def options(settings: dict) -> list[str]:
    return [f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}") for k, v in settings.items()]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), train_per_class=16, val_per_class=8)


@pytest.fixture(scope="module")
@slow_fixture
def references(dataset, tmp_path_factory):
    """Uninterrupted runs of each setting, trained once."""
    cache, made = tmp_path_factory.mktemp("cache"), {}

    def reference(name: str, settings: dict) -> Path:
        if name not in made:
            made[name] = train(
                TrainConfig(**settings), Workspace(dataset, tmp_path_factory.mktemp("runs"), cache, quiet)
            )
        return made[name]

    return reference


def state_epochs(runs: Path) -> int:
    """Epochs backed up in the one run directory under runs (0 before the first)."""
    found = list(runs.glob(f"*/{RESUME_DIR}/{STATE_FILE}"))
    return json.loads(found[0].read_text())["epochs"] if found else 0


def kill_while_training(settings: dict, stall: int, dataset: Path, runs: Path, cache: Path, tmp_path: Path) -> Path:
    """Run `train` in a subprocess, SIGKILL it in the middle of epoch `stall`; returns its run directory."""
    script, marker = tmp_path / "stalling_train.py", tmp_path / "stalled"
    script.write_text(STALLING_TRAIN)
    argv = [
        sys.executable,
        str(script),
        str(stall),
        str(marker),
        "train",
        *options(settings),
        "--data-dir",
        str(dataset),
        "--runs-dir",
        str(runs),
        "--cache-dir",
        str(cache),
    ]
    with open(tmp_path / "train.log", "w") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": SRC})
        try:
            deadline = time.monotonic() + 300
            while not (marker.exists() and state_epochs(runs) == stall - 1):
                assert process.poll() is None, (tmp_path / "train.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the training subprocess never reached the epoch to kill it in"
                time.sleep(0.1)
            process.send_signal(signal.SIGKILL)
            assert process.wait(timeout=60) == -signal.SIGKILL
        finally:
            if process.poll() is None:
                process.kill()
    (run,) = runs.iterdir()
    return run


def as_an_older_version_wrote(run: Path) -> None:
    """Rewrite the run's state.json as versions before named stages did: the stage by its number (no index), the
    weights file named after the number."""
    folder = run / RESUME_DIR
    state = json.loads((folder / STATE_FILE).read_text())
    number = state.pop("index")
    older = f"stage{number}-epoch{state['epochs']}.npz"
    (folder / state["weights"]).rename(folder / older)
    (folder / STATE_FILE).write_text(json.dumps({**state, "stage": number, "weights": older}))


@pytest.mark.parametrize(
    "name, settings, stall, older",
    [
        ("baseline", BASELINE, 3, False),
        ("early-stopped", EARLY_STOPPED, 3, False),
        ("fine-tuned", FINE_TUNED, 2, False),
        ("fine-tuned", FINE_TUNED, 4, False),
        ("fine-tuned", FINE_TUNED, 4, True),
    ],
    ids=[
        "baseline-epoch-3",
        "early-stopping-epoch-3",
        "head-stage-epoch-2",
        "fine-tuning-stage-epoch-4",
        "fine-tuning-stage-epoch-4-older-state",
    ],
)
def test_a_killed_run_resumes_from_its_last_epoch_and_matches_an_uninterrupted_one(
    name, settings, stall, older, dataset, references, tmp_path, capsys
):
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    run = kill_while_training(settings, stall, dataset, runs, cache, tmp_path)
    assert not (run / METRICS_FILE).exists()
    if older:
        as_an_older_version_wrote(run)
    before = json.loads((run / HISTORY_FILE).read_text())
    assert [row["epoch"] for row in before] == list(range(1, stall))

    assert main(["train", "--resume", str(run), "--cache-dir", str(cache)]) == 0
    out, total = capsys.readouterr().err, settings["epochs"] + settings.get("fine_tune_epochs", 0)
    assert f"resuming after epoch {stall - 1} of {total}" in out and f"epoch   {stall - 1}/" not in out  # none redone

    resumed, reference = load_run(run), load_run(references(name, settings))
    assert [row["epoch"] for row in resumed.history] == [row["epoch"] for row in reference.history] == [1, 2, 3, 4]
    assert resumed.history[: stall - 1] == before  # the epochs before the kill are kept as they were
    assert resumed.metrics["epochs_run"] == reference.metrics["epochs_run"] == 4  # early stopping's patience ran on
    for checkpoint in ("best", "last"):  # same epoch and file; numbers equal up to CPU summation order
        ours, theirs = resumed.checkpoint_record(checkpoint), reference.checkpoint_record(checkpoint)
        assert (ours["file"], ours["epoch"]) == (theirs["file"], theirs["epoch"])
        assert ours["val_accuracy"] == pytest.approx(theirs["val_accuracy"], abs=1e-6)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-3)
        for a, b in zip(resumed.load_model(checkpoint).get_weights(), reference.load_model(checkpoint).get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    assert not (run / RESUME_DIR).exists() and not list(run.glob(".*.tmp*"))  # finished and clean


def test_resume_refuses_options_that_differ_from_the_recorded_ones(tmp_path, capsys):
    run = write_run(tmp_path / "runs", TrainConfig(**BASELINE), finished=False)
    assert main(["train", "--resume", str(run), "--epochs", "7", "--seed", "1", "--dropout", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: --resume {run}: ")
    assert "--epochs 7 (config.json: 4)" in err and "--dropout 0.5 (config.json: 0.0)" in err
    assert "--seed" not in err  # the recorded value: no conflict


@pytest.mark.parametrize("finished", [True, False])
def test_resume_of_a_finished_run_or_of_no_run_is_one_error(finished, tmp_path, capsys):
    run = write_run(tmp_path / "runs", TrainConfig(**BASELINE)) if finished else tmp_path / "nothing"
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    # a RUN that names nothing (no folder, no name in the runs folder) says what it tried, as every RUN does
    assert err.count("\n") == 1 and ("already finished" if finished else "no such run directory (tried the path") in err


def test_resume_on_changed_images_is_one_error_naming_the_run(tmp_path, capsys, monkeypatch):
    import keras

    from horses_humans.training import loop as training

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:  # after epoch 1 was backed up
                raise KeyboardInterrupt

    data = make_dataset(tmp_path / "data", train_per_class=4, val_per_class=2)
    monkeypatch.setattr(training, "observers", lambda run_dir, epochs, tensorboard: [Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**BASELINE), Workspace(data, tmp_path / "runs", tmp_path / "cache", quiet))
    monkeypatch.undo()
    (run,) = (tmp_path / "runs").iterdir()
    extra = data / "horse-or-human" / "horses" / "horse00.png"
    extra.with_name("added.png").write_bytes(extra.read_bytes())  # one more training image since the run started
    assert main(["train", "--resume", str(run), "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "environment.json: the images in" in err and "not the ones this run started on" in err
    )
    assert not (run / METRICS_FILE).exists() and (run / RESUME_DIR / STATE_FILE).exists()  # nothing lost
