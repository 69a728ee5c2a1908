"""Where the command's lines go: results on stdout, progress and info on stderr through `logging`, which -q quiets
and -v makes say their level and logger."""

import pytest

from horses_humans.cli.main import build_parser, main
from horses_humans.config import TrainConfig

from ..fake_runs import write_run


@pytest.fixture
def run(tmp_path):
    """A finished run (written, not trained) whose card `card` writes."""
    return write_run(tmp_path / "runs", TrainConfig(recipe="baseline"))


def test_results_go_to_stdout_and_info_lines_to_stderr(run, capsys):
    assert main(["card", str(run)]) == 0
    out, err = capsys.readouterr()
    assert out == (run / "MODEL_CARD.md").read_text()
    assert err == f"wrote {run / 'MODEL_CARD.md'}\n"  # the bare line, as the command always printed it


def test_quiet_keeps_the_results_and_drops_the_info_lines(run, capsys):
    assert main(["-q", "card", str(run)]) == 0
    out, err = capsys.readouterr()
    assert out == (run / "MODEL_CARD.md").read_text() and err == ""


def test_verbose_names_the_level_and_the_logger(run, capsys):
    assert main(["--verbose", "card", str(run)]) == 0
    assert f"INFO horses_humans.cli.common: wrote {run / 'MODEL_CARD.md'}\n" in capsys.readouterr().err
    assert main(["card", str(run)]) == 0  # each call sets its own level and format
    assert capsys.readouterr().err == f"wrote {run / 'MODEL_CARD.md'}\n"


def test_quiet_and_verbose_together_are_refused(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["-q", "-v", "runs"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_runs_warning_still_shows_when_quiet(tmp_path, capsys):
    write_run(tmp_path, TrainConfig(recipe="baseline"), finished=False)
    assert main(["-q", "runs", "--runs-dir", str(tmp_path)]) == 0
    assert "1 unfinished run(s) not listed" in capsys.readouterr().err
