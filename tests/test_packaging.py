"""A plain `pip install` of the project: the wheel holds every module and every data file the base commands read
(static pages, experiments.toml), and the installed copy works without this checkout beside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import horses_humans

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(horses_humans.__file__).resolve().parent
DATA_SUFFIXES = {".html", ".js", ".cjs", ".css", ".toml", ".txt"}

pytestmark = pytest.mark.slow  # builds a wheel and starts fresh interpreters


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel pip builds from a copy of the project (so the checkout gets no build/ or egg-info)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source), "-w"]
    subprocess.run([*command, str(out)], check=True, capture_output=True, text=True, timeout=300)
    [built] = out.glob("horses_humans-*.whl")
    return built


def package_files(suffixes: set[str]) -> set[str]:
    """Files of the checkout's package with these suffixes, as paths inside a wheel."""
    return {
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*")
        if path.suffix in suffixes and "__pycache__" not in path.parts
    }


def test_the_wheel_holds_every_module_and_data_file_and_the_command(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert package_files({".py"}) <= names, sorted(package_files({".py"}) - names)
    data = package_files(DATA_SUFFIXES)
    assert {"horses_humans/experiments/experiments.toml", "horses_humans/serve/static/index.html"} <= data
    assert data <= names, f"package data missing from the wheel: {sorted(data - names)}"
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "horses-humans = horses_humans.cli.main:main" in entry_points


def test_the_installed_copy_runs_without_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import horses_humans, sys\n"
        "from horses_humans.experiments.reproduce import load_experiments\n"
        "from horses_humans.export.webbuild import STATIC\n"
        "from horses_humans.serve.routes import STATIC as PAGES\n"
        "assert load_experiments(None).experiments, 'no experiments in the shipped experiments.toml'\n"
        "assert (STATIC / 'web.html').is_file() and (PAGES / 'index.html').is_file()\n"
        "print(horses_humans.__file__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}  # the installed copy first, before the editable checkout
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(target)), result.stdout
    help_text = subprocess.run(
        [sys.executable, "-m", "horses_humans", "--help"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert help_text.returncode == 0 and "train" in help_text.stdout, help_text.stderr
