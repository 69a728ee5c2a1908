"""`horses-humans data ...`: exit codes, output, and one-line errors without tracebacks."""

import json
import shutil
import zipfile

import pytest

from horses_humans.cli.main import main
from horses_humans.data.importplan import ImportLimits
from horses_humans.data.layouts import TRAIN, VALIDATION
from horses_humans.data.pixels import file_stats

from ..synthetic import zip_folder


def assert_one_line_error(err: str, *fragments: str) -> None:
    """stderr is exactly one 'error: ...' line holding every fragment, and no traceback."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


def test_check_healthy_data_set_prints_a_table_and_exits_0(data_dir, capsys):
    assert main(["data", "check", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "horses" in out and "humans" in out and TRAIN in out and VALIDATION in out
    assert out.strip().endswith("result: usable for training")


def test_check_json_parses(data_dir, capsys):
    assert main(["data", "check", "--data-dir", str(data_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == []
    assert report["splits"][VALIDATION]["counts"] == {"horses": 2, "humans": 2}


def test_check_broken_data_set_exits_1(data_dir, capsys):
    shutil.rmtree(data_dir / VALIDATION)
    assert main(["data", "check", "--data-dir", str(data_dir)]) == 1
    out = capsys.readouterr().out
    assert "NOT usable for training" in out and str(data_dir / VALIDATION) in out


def test_check_reads_the_data_dir_from_the_environment(data_dir, capsys, monkeypatch):
    monkeypatch.setenv("HORSES_HUMANS_DATA", str(data_dir))
    assert main(["data", "check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["data_dir"] == str(data_dir)


def test_import_folder_then_check(tmp_path, make_dataset, capsys):
    source = make_dataset(tmp_path / "download")
    data_dir = tmp_path / "data"
    assert main(["data", "import", str(source), "--data-dir", str(data_dir)]) == 0
    assert sorted(p.name for p in (data_dir / TRAIN / "humans").iterdir()) == [
        "humans-00.png",
        "humans-01.png",
        "humans-02.png",
    ]
    assert main(["data", "check", "--data-dir", str(data_dir)]) == 0


def test_import_zip_with_split_option(tmp_path, make_split, capsys):
    folder = make_split(tmp_path / "src", (1, 1))
    archive = zip_folder(folder, tmp_path / "pictures.zip")
    data_dir = tmp_path / "data"
    assert main(["data", "import", str(archive), "--split", VALIDATION, "--data-dir", str(data_dir)]) == 0
    assert sorted(p.name for p in (data_dir / VALIDATION).iterdir()) == ["horses", "humans"]
    assert not (data_dir / TRAIN).exists()
    assert VALIDATION in capsys.readouterr().err  # a progress line: stderr


def test_default_data_dir_under_a_hidden_cache_folder(tmp_path, make_dataset, monkeypatch, capsys):
    # the default location is $HORSES_HUMANS_CACHE/data, typically ~/.cache/horses-humans/data
    monkeypatch.delenv("HORSES_HUMANS_DATA", raising=False)
    monkeypatch.setenv("HORSES_HUMANS_CACHE", str(tmp_path / ".cache" / "horses-humans"))
    assert main(["data", "import", str(make_dataset(tmp_path / "download"))]) == 0
    assert (tmp_path / ".cache" / "horses-humans" / "data" / TRAIN / "horses" / "horses-00.png").is_file()
    assert main(["data", "check"]) == 0, capsys.readouterr().out


def test_import_nonexistent_path_is_a_one_line_error(tmp_path, capsys):
    missing = tmp_path / "no-such.zip"
    assert main(["data", "import", str(missing), "--data-dir", str(tmp_path / "data")]) == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err, str(missing), "no such file")
    assert captured.out == ""


def test_import_non_zip_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert main(["data", "import", str(path), "--data-dir", str(tmp_path / "data")]) == 2
    assert_one_line_error(capsys.readouterr().err, str(path), "neither a folder nor a zip")


def test_import_zip_slip_is_a_one_line_error(tmp_path, make_split, capsys):
    folder = make_split(tmp_path / "src", (1, 1))
    archive = zip_folder(folder, tmp_path / "evil.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("../evil.png", b"outside")
    assert main(["data", "import", str(archive), "--data-dir", str(tmp_path / "data")]) == 2
    assert_one_line_error(capsys.readouterr().err, "../evil.png", "refused")
    assert not (tmp_path / "evil.png").exists()


def test_bad_split_choice_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "import", str(tmp_path), "--split", "test"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--max-bytes", "--max-files"])
def test_import_limit_must_be_positive(tmp_path, make_dataset, option, capsys):
    source = make_dataset(tmp_path / "download")
    assert main(["data", "import", str(source), option, "0", "--data-dir", str(tmp_path / "data")]) == 2
    assert_one_line_error(capsys.readouterr().err, f"{option} must be a positive integer, got 0")
    assert not (tmp_path / "data").exists()


def test_import_within_raised_limits_succeeds(tmp_path, make_dataset, capsys):
    source = make_dataset(tmp_path / "download")  # 10 PNGs + 6 folders, a few KB
    data_dir = tmp_path / "data"
    assert (
        main(["data", "import", str(source), "--max-files", "16", "--max-bytes", "100000", "--data-dir", str(data_dir)])
        == 0
    )
    assert main(["data", "import", str(source), "--max-files", "15", "--data-dir", str(data_dir)]) == 2
    assert "more than 15 files and folders" in capsys.readouterr().err


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_imported_files_keep_their_times_so_a_reimport_keeps_the_pixel_cache_key(tmp_path, make_dataset, as_zip):
    source = make_dataset(tmp_path / "download")
    if as_zip:
        source = zip_folder(source, tmp_path / "download.zip")
    stats = []
    for name in ("first", "second"):  # a second import, seconds later, of the same files
        assert main(["data", "import", str(source), "--data-dir", str(tmp_path / name)]) == 0
        split = tmp_path / name / TRAIN
        files = sorted(p.relative_to(split).as_posix() for p in split.rglob("*.png"))
        stats.append(file_stats(split, files))
    assert stats[0] == stats[1] and len(stats[0]) == 6
    if not as_zip:
        assert stats[0][0][2] == (tmp_path / "download" / TRAIN / stats[0][0][0]).stat().st_mtime_ns


def test_import_help_states_the_limits_the_import_applies(capsys):
    with pytest.raises(SystemExit):
        main(["data", "import", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    limits = ImportLimits()
    assert f"(default: {limits.max_bytes // 2**30} GiB)" in text and f"(default: {limits.max_files})" in text
