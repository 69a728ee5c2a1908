"""Progress bars: drawn on a terminal only (stdout and logs stay clean elsewhere), nestable, usable as progress(done,
total); training shows a per-batch bar on a terminal and exactly one line per epoch either way."""

import io

import pytest
from rich.console import Console

from horses_humans.config import TrainConfig
from horses_humans.core import progress
from horses_humans.core.progress import ProgressBar
from horses_humans.core.workspace import Workspace


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    """Variables that make rich treat any stream as a terminal would defeat the non-terminal cases."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


def terminal() -> Console:
    """A console rich believes is a terminal, writing into a StringIO."""
    return Console(file=io.StringIO(), force_terminal=True, width=100)


def test_nothing_is_drawn_off_a_terminal(capsys):
    stream = io.StringIO()
    bar = ProgressBar("predicting", console=Console(file=stream))
    for done in range(4):
        bar(done, 3)
    assert stream.getvalue() == "" and bar.progress is None
    with ProgressBar("default console") as bar:  # stderr is pytest's capture: not a terminal
        bar(1, 2)
    assert capsys.readouterr() == ("", "")


def test_a_terminal_gets_a_bar_that_stops_itself_at_the_total():
    console = terminal()
    bar = ProgressBar("predicting", console=console)
    bar(1, 3)
    assert bar.progress is not None
    bar(3, 3)
    assert bar.progress is None  # stopped by itself: a plain callable needs no `with`
    assert "predicting" in console.file.getvalue() and "3/3" in console.file.getvalue()


def test_bars_nest():
    console = terminal()
    with ProgressBar("runs", console=console) as outer:
        outer(0, 2)
        inner = ProgressBar("epoch 1/1", console=console, transient=True)
        for step in range(1, 4):
            inner(step, 3)
        outer(1, 2)
    assert "runs" in console.file.getvalue() and "epoch 1/1" in console.file.getvalue()  # both were drawn
    assert outer.progress is None and inner.progress is None


def test_a_with_block_stops_the_bar_on_an_error():
    bar = ProgressBar("exports", console=terminal())
    with pytest.raises(RuntimeError), bar:
        bar(1, 5)
        raise RuntimeError("export failed")
    assert bar.progress is None


@pytest.mark.slow
@pytest.mark.parametrize("on_terminal", [False, True], ids=["pipe", "terminal"])
def test_training_shows_batches_on_a_terminal_and_one_line_per_epoch(on_terminal, data_dir, tmp_path, monkeypatch):
    from horses_humans.training.loop import train

    console = terminal() if on_terminal else Console(file=io.StringIO())
    monkeypatch.setattr(progress, "stderr_console", lambda: console)
    lines = []
    config = TrainConfig(recipe="baseline", epochs=2, image_size=32, batch_size=2, precision="float32")
    train(config, Workspace(data_dir, tmp_path / "runs", tmp_path / "cache", lines.append))
    assert [line.split()[:2] for line in lines if line.startswith("epoch")] == [["epoch", "1/2"], ["epoch", "2/2"]]
    drawn = console.file.getvalue()
    assert ("epoch 1/2" in drawn and "3/3" in drawn) if on_terminal else drawn == ""  # 6 images / batch 2 = 3 steps
