"""Runs you can name: `train --name`, and RUN as a path, a name in the runs folder or `latest` (issue 20, item 4)."""

import os

import pytest

import horses_humans as hh
from horses_humans.cli.main import main
from horses_humans.config import HorsesHumansError, TrainConfig
from horses_humans.runs.layout import METRICS_FILE
from horses_humans.runs.names import check_run_name, find_run, named_run_dir

from ..fake_runs import write_run


def finished_at(path, seconds: int):
    """Make a run's training end `seconds` after the epoch (metrics.json, written last, dates it)."""
    os.utime(path / METRICS_FILE, ns=(seconds * 10**9, seconds * 10**9))
    return path


@pytest.fixture
def runs(tmp_path):
    """A runs folder: an older and a newer finished run (the older one's name sorts last) and a newest unfinished."""
    folder = tmp_path / "runs"
    older = finished_at(write_run(folder, TrainConfig(recipe="baseline", seed=9)), 1_000)
    newer = finished_at(write_run(folder, TrainConfig(recipe="baseline", seed=1)), 2_000)
    write_run(folder, TrainConfig(recipe="baseline", seed=5), finished=False)
    return folder, older, newer


@pytest.mark.parametrize("name", ["a/b", "../up", ".hidden", "-x", "", "has space", "latest", "x" * 101, "é"])
def test_unsafe_names_are_one_line_errors(name):
    with pytest.raises(HorsesHumansError, match=r"^--name .*: .*letters, digits") as caught:
        check_run_name(name)
    assert "\n" not in str(caught.value)


def test_a_taken_name_gets_the_next_free_number(tmp_path):
    made = [named_run_dir(tmp_path, "mine") for _ in range(3)]
    assert [p.name for p in made] == ["mine", "mine-2", "mine-3"] and all(p.is_dir() for p in made)
    assert check_run_name("v1.2_final-B") == "v1.2_final-B"


def test_run_is_a_path_a_name_or_latest(runs, monkeypatch, tmp_path):
    folder, older, newer = runs
    assert find_run(older, folder) == older  # a path
    assert find_run(newer.name, folder) == folder / newer.name  # a name in the runs folder
    assert find_run("latest", folder) == folder / newer.name  # the newest finished: not the unfinished one, nor by name
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HORSES_HUMANS_RUNS", str(folder))
    assert find_run("latest") == folder / newer.name  # the runs folder from the environment


def test_a_run_that_matches_nothing_says_what_it_tried(runs, monkeypatch, tmp_path):
    folder = runs[0]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HorsesHumansError) as caught:
        find_run("mine", folder)
    message = str(caught.value)
    assert message.startswith("mine: no such run directory (tried the path mine and the name in ")
    assert f"({folder / 'mine'})" in message and "latest" in message and "\n" not in message
    with pytest.raises(HorsesHumansError, match=r"^latest: no finished run in .*empty"):
        find_run("latest", tmp_path / "empty")


def test_commands_take_a_name_or_latest(runs, capsys):
    folder, older, newer = runs
    assert main(["card", "latest", "--runs-dir", str(folder)]) == 0
    assert (newer / "MODEL_CARD.md").exists() and not (older / "MODEL_CARD.md").exists()
    assert main(["card", older.name, "--runs-dir", str(folder)]) == 0
    assert (older / "MODEL_CARD.md").exists()
    capsys.readouterr()
    assert main(["evaluate", "nothing-here", "--runs-dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nothing-here: no such run directory (tried the path") and err.count("\n") == 1


def test_the_python_api_takes_a_name_or_latest(runs):
    folder, older, newer = runs
    assert hh.load_run("latest", runs_dir=folder).path == folder / newer.name
    assert hh.load_run(older.name, runs_dir=folder).path == folder / older.name


def test_runs_shows_each_runs_path(runs, capsys):
    folder, older, newer = runs
    assert main(["runs", "--runs-dir", str(folder)]) == 0
    header, _, *rows = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert header.endswith("| path |")
    (row,) = rows  # the two seeds of one configuration share a row, and it names both folders
    assert row.rsplit(" | ", 1)[1].rstrip(" |").split(", ") == sorted([str(older), str(newer)])


def test_a_bad_name_fails_before_the_data_loads(tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["train", "--recipe", "baseline", "--data-dir", str(tmp_path / "nowhere"), "--runs-dir", str(runs)]
    assert main([*argv, "--name", "../escape"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --name '../escape': it must be one folder name") and err.count("\n") == 1
    assert not runs.exists()


def test_resume_keeps_its_folder_so_name_is_refused(tmp_path, capsys):
    run = write_run(tmp_path / "runs", TrainConfig(recipe="baseline"), finished=False)
    assert main(["train", "--resume", run.name, "--runs-dir", str(tmp_path / "runs"), "--name", "other"]) == 2
    assert f"--name other (the run is {run.name})" in capsys.readouterr().err


def test_train_prints_the_run_and_the_next_commands(monkeypatch, tmp_path, capsys):
    """stdout: the run folder alone (the result); stderr: the next commands, each with that folder."""
    from horses_humans.training import loop

    given = {}

    def fake_train(config, workspace, name=None, **kwargs):
        given.update(config=config, name=name)
        return workspace.runs_dir / name

    monkeypatch.setattr(loop, "train", fake_train)
    assert main(["train", "--recipe", "baseline", "--runs-dir", str(tmp_path / "runs"), "--name", "mine"]) == 0
    out, err = capsys.readouterr()
    run = tmp_path / "runs" / "mine"
    assert out == f"{run}\n" and given["name"] == "mine"
    for command in ("evaluate", "report"):
        assert f"horses-humans {command} {run}\n" in err
    assert f"horses-humans predict {run} IMAGE_OR_DIR" in err and f"horses-humans export {run} --format" in err


@pytest.mark.slow
def test_a_named_run_is_trained_into_its_folder_and_predicts_as_latest(data_dir, tmp_path, make_image, capsys):
    runs = tmp_path / "runs"
    (runs / "mine").mkdir(parents=True)  # taken (not a run): the new one becomes mine-2
    tiny = dict(epochs=1, image_size=32, batch_size=8, conv_filters=(4,), precision="float32")
    run = hh.train(data_dir, "baseline", name="mine", runs_dir=runs, cache_dir=tmp_path / "cache", **tiny)
    assert run.path == runs / "mine-2" and run.name == "mine-2"
    image = make_image(tmp_path / "one.png")
    assert main(["predict", "latest", str(image), "--runs-dir", str(runs), "--csv", "--runtime", "keras"]) == 0
    assert str(image) in capsys.readouterr().out
