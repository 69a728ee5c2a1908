"""Workspace: the given folders win, the environment fills the others, and quiet() keeps the folders."""

from pathlib import Path

from horses_humans.core.workspace import Workspace


def test_from_env_takes_the_given_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("HORSES_HUMANS_DATA", str(tmp_path / "env-data"))
    lines = []
    workspace = Workspace.from_env(str(tmp_path / "data"), tmp_path / "runs", str(tmp_path / "cache"), lines.append)
    assert (workspace.data_dir, workspace.runs_dir, workspace.cache_dir) == (
        tmp_path / "data",
        tmp_path / "runs",
        tmp_path / "cache",
    )
    workspace.log("hello")
    assert lines == ["hello"]


def test_from_env_fills_the_rest_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HORSES_HUMANS_DATA", str(tmp_path / "env-data"))
    monkeypatch.setenv("HORSES_HUMANS_RUNS", str(tmp_path / "env-runs"))
    monkeypatch.setenv("HORSES_HUMANS_CACHE", str(tmp_path / "env-cache"))
    workspace = Workspace.from_env()
    assert (workspace.data_dir, workspace.runs_dir, workspace.cache_dir) == (
        tmp_path / "env-data",
        tmp_path / "env-runs",
        tmp_path / "env-cache",
    )
    monkeypatch.delenv("HORSES_HUMANS_RUNS")
    assert Workspace.from_env().runs_dir == Path("runs")


def test_quiet_keeps_the_folders_and_logs_nothing(tmp_path, capsys):
    workspace = Workspace(tmp_path / "data", tmp_path / "runs", tmp_path / "cache")
    silent = workspace.quiet()
    silent.log("not shown")
    assert capsys.readouterr().out == ""
    assert (silent.data_dir, silent.runs_dir, silent.cache_dir) == (
        workspace.data_dir,
        workspace.runs_dir,
        workspace.cache_dir,
    )
