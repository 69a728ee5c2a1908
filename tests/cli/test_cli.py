"""The CLI end to end on synthetic data: train -> runs -> evaluate -> predict, and its error handling."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from horses_humans.cli.main import main
from horses_humans.data.files import is_image_name
from horses_humans.data.samples import awkward_files, hostile_files

from ..synthetic import make_dataset
from ..tiers import slow_fixture


@pytest.fixture(scope="module")
@slow_fixture
def trained(tmp_path_factory):
    data = make_dataset(tmp_path_factory.mktemp("data"))
    runs = tmp_path_factory.mktemp("runs")
    cache = tmp_path_factory.mktemp("cache")
    assert (
        main(
            [
                "train",
                "--recipe",
                "baseline",
                "--epochs",
                "2",
                "--image-size",
                "32",
                "--batch-size",
                "8",
                "--seed",
                "3",
                "--data-dir",
                str(data),
                "--runs-dir",
                str(runs),
                "--cache-dir",
                str(cache),
                "--precision",
                "float32",
            ]
        )
        == 0
    )
    (run,) = runs.iterdir()
    return data, runs, run, cache


def test_train_prints_progress_and_run_table(trained, capsys):
    data, runs, run, _ = trained
    assert run.name.startswith("baseline-32-s3-")
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    table = capsys.readouterr().out
    assert "| baseline | 32 | 2 | - | 3 |" in table


def test_evaluate_json(trained, capsys):
    data, _, run, cache = trained
    assert main(["evaluate", str(run), "--data-dir", str(data), "--cache-dir", str(cache), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["images"] == 16 and 0 <= metrics["accuracy"] <= 1
    assert {"precision", "recall", "f1", "roc_auc", "confusion_matrix"} <= set(metrics)


def test_predict_folder_csv_and_bad_file_exit_code(trained, tmp_path, capsys):
    data, _, run, _ = trained
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (60, 30), (200, 10, 10)).save(folder / "red.jpg")
    (folder / "sub").mkdir()
    Image.new("L", (30, 30), 128).save(folder / "sub" / "grey.png")
    assert main(["predict", str(run), str(folder), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["file"].rsplit("/", 1)[-1] for r in rows] == ["red.jpg", "grey.png"]
    assert all(r["label"] in ("horses", "humans", "unsure") and not r["error"] for r in rows)  # 1 epoch: may be unsure

    (folder / "notes.txt").write_text("not an image")  # inside a walked folder: passed over, counted
    (folder / "sub" / ".DS_Store").write_bytes(b"junk")
    (folder / "broken.png").write_bytes(b"not a PNG")  # an image by name: read, and its error is a row
    assert main(["predict", str(run), str(folder), "--json"]) == 0  # some files predicted: success
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [(r["file"].rsplit("/", 1)[-1], r["error"] is not None) for r in results] == [
        ("broken.png", True),
        ("red.jpg", False),
        ("grey.png", False),
    ]
    assert "notes.txt" not in captured.out + captured.err and "Traceback" not in captured.err
    assert "predicted 2 of 3 files (1 skipped); 2 files skipped: not images" in captured.err
    assert main(["predict", str(run), str(folder), "--json", "--strict"]) == 1
    assert main(["predict", str(run), str(folder / "notes.txt")]) == 1  # named directly: its error row, nothing else
    captured = capsys.readouterr()
    assert "notes.txt" in captured.out and "predicted 0 of 1 files (1 skipped)\n" in captured.err


def test_predict_hostile_and_awkward_files(trained, tmp_path, capsys):
    _, _, run, _ = trained
    folder = tmp_path / "upload"
    (folder / "deep" / "er").mkdir(parents=True)
    for name, (data, _) in hostile_files().items():
        (folder / name).write_bytes(data)
    for name, data in awkward_files().items():
        (folder / "deep" / "er" / name).write_bytes(data)
    assert main(["predict", str(run), str(folder), "--csv"]) == 0
    captured = capsys.readouterr()
    rows = {r["file"].rsplit("/", 1)[-1]: r for r in csv.DictReader(io.StringIO(captured.out))}
    named = {
        **{n: str(folder / n) for n in hostile_files()},
        **{n: str(folder / "deep" / "er" / n) for n in awkward_files()},
    }
    not_images = sorted(n for n in named if not is_image_name(n))  # notes.txt, drawing.svg, ...: passed over, counted
    assert set(rows) == set(named) - set(not_images) and len(not_images) == 4
    assert f"; {len(not_images)} files skipped: not images" in captured.err
    # named on the command line, a file is read whatever its name says: content decides
    assert main(["predict", str(run), *(named[n] for n in not_images), "--csv"]) == 0
    captured_named = capsys.readouterr()
    rows.update({r["file"].rsplit("/", 1)[-1]: r for r in csv.DictReader(io.StringIO(captured_named.out))})
    for name in hostile_files():
        assert rows[name]["error"].startswith(str(folder / name)) and not rows[name]["label"], name
    for name in awkward_files():
        assert rows[name]["label"] in ("horses", "humans", "unsure") and not rows[name]["error"], name
    assert (
        "Traceback" not in captured.err and "\x1b[" not in captured.err
    )  # no progress bar when stderr is not a terminal


def test_predict_output_file_written(trained, tmp_path):
    data, _, run, _ = trained
    image = next((data / "validation-horse-or-human" / "humans").iterdir())
    out = tmp_path / "out" / "predictions.json"
    assert main(["predict", str(run), str(image), "--json", "--output", str(out)]) == 0
    assert json.loads(out.read_text())[0]["file"] == str(image)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--epochs", "0"], "--epochs must be a positive integer"),
        (["train", "--dropout", "1.5"], "--dropout 1.5 must be in [0, 1)"),
        (["evaluate", "/no/such/run"], "/no/such/run: no such run directory"),
        (["predict", "/no/such/run", "x.png"], "/no/such/run: no such run directory"),
    ],
)
def test_user_errors_are_one_line_without_traceback(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_unfinished_run_is_explained(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a finished run (missing model.keras, labels.json)" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["predict"], ["export", "--format", "keras"]])
@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"not a model at all"])
def test_damaged_model_file_is_one_line_naming_it(tmp_path, data_dir, capsys, command, content):
    from horses_humans.config import TrainConfig

    from ..fake_runs import write_run

    run = write_run(tmp_path / "runs", TrainConfig(recipe="baseline", image_size=32))
    (run / "model.keras").write_bytes(content)
    (tmp_path / "x.png").write_bytes(b"")
    argv = [
        command[0],
        str(run),
        *(["x.png"] if command[0] == "predict" else [*command[1:], "--data-dir", str(data_dir)]),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run / 'model.keras'}: cannot load the model") and "train the run again" in err


def test_help_for_every_command(capsys):
    for argv in (
        ["--help"],
        ["train", "--help"],
        ["data", "check", "--help"],
        ["predict", "--help"],
        ["export", "--help"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    assert "IMAGE_OR_DIR" in capsys.readouterr().out


def test_train_defaults_to_recommended_and_keeps_internal_options_out_of_help(capsys):
    from horses_humans.cli.main import build_parser
    from horses_humans.config import TrainConfig

    assert build_parser().parse_args(["train"]).recipe == "recommended" == TrainConfig().recipe
    assert build_parser().parse_args(["train", "--recipe-alias", "x"]).recipe_alias == "x"  # hidden, still parses
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--recipe-alias" not in out and "--recipe " in out and "--recipe baseline" not in out


def test_version(capsys):
    from horses_humans import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out == f"horses-humans {__version__}\n"


SRC = str(Path(__file__).resolve().parents[2] / "src")  # this checkout's package, in subprocesses too


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "horses_humans", "--version"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout.startswith("horses-humans ")


NO_TENSORFLOW = """
import sys
from horses_humans.cli.main import main
for argv in (["--help"], ["train", "--help"], ["--version"]):
    try:
        main(argv)
    except SystemExit:
        pass
print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""


def test_help_and_version_do_not_import_tensorflow():
    result = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_commands_without_tensorflow_skip_the_backend():
    from horses_humans.cli.main import build_parser, needs_backend

    parse = build_parser().parse_args
    assert not needs_backend(parse(["runs"])) and not needs_backend(parse(["data", "check"]))
    assert needs_backend(parse(["data", "download"])) and needs_backend(parse(["evaluate", "run"]))


def test_bad_comma_separated_option_is_one_error_naming_it(capsys):
    assert main(["train", "--conv-filters", "16,x"]) == 2
    assert capsys.readouterr().err == "error: --conv-filters '16,x': give comma-separated integers, e.g. 16,32,64.\n"


def test_an_unknown_resize_is_one_argparse_error_naming_the_modes(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--resize", "stretch"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]  # argparse's usage text, then one error line
    assert errors == [err.splitlines()[-1]] and "argument --resize: invalid choice: 'stretch'" in errors[0]
    assert "'squash', 'crop', 'pad'" in errors[0] and "Traceback" not in err


def test_train_help_names_the_resize_modes(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--resize {squash,crop,pad}" in out and "crop (the centred square)" in out
