"""The set-up scripts: the main job installs no browser, the tests get theirs, pip runs only when needed, the lock is
whole.
"""

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CALL = re.compile(r"(?:^|[;&|]\s*|\s)(?:bash|source|\.)\s+(scripts/[\w.-]+\.sh)(.*)$")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$")


def code_lines(script: Path) -> list[str]:
    """The script's lines without comments (a comment may say what the code does not do)."""
    lines = (re.sub(r"(^|\s)#.*$", "", line).strip() for line in script.read_text().splitlines())
    return [line for line in lines if line]


def reached(script: str) -> dict[str, list[str]]:
    """script and every script it runs or sources, transitively: {path: code lines}."""
    found, todo = {}, [script]
    while todo:
        path = todo.pop()
        if path not in found:
            found[path] = code_lines(ROOT / path)
            todo += [m.group(1) for line in found[path] if (m := CALL.search(line))]
    return found


def calls(scripts: dict[str, list[str]], target: str) -> list[str]:
    """The arguments of every call of target in scripts ('' for none)."""
    return [
        m.group(2).strip()
        for lines in scripts.values()
        for line in lines
        if (m := CALL.search(line)) and m.group(1) == target
    ]


def test_main_job_installs_no_browser_apt_or_npm_package():
    scripts = reached("scripts/main.sh")
    assert "scripts/setup.sh" in scripts
    for path, lines in scripts.items():
        for line in lines:
            assert not re.search(r"\b(apt-get|apt|dpkg|chromium|npm|node|playwright|sudo)\b", line), f"{path}: {line}"
    assert calls(scripts, "scripts/setup.sh") == [""]  # no extra, so only the base dependencies, below
    base = [canonicalize_name(Requirement(r).name) for r in pyproject()["dependencies"]]
    assert "playwright" not in base and "pytest" not in base


def test_main_job_trains_the_reference_baseline_explicitly():
    """`train` defaults to recommended; the main job reproduces the reference, so it names the baseline itself."""
    (line,) = [line for line in code_lines(ROOT / "scripts/main.sh") if re.search(r"\btrain\b", line)]
    assert '--recipe "${RECIPE:-baseline}"' in line


def test_the_tests_set_up_chromium_onnx_runtime_web_and_the_test_extra():
    scripts = reached("scripts/test.sh")
    code = "\n".join(line for lines in scripts.values() for line in lines)
    assert "test" in calls(scripts, "scripts/setup.sh")
    assert "[ -x /usr/bin/chromium ] || apt_install chromium" in code
    assert "npm ci --prefix web" in code
    assert "pytest" in code


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins() -> dict[str, str]:
    """constraints.txt as {canonical name: version}; every line that is not a comment must be name==version."""
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            match = PIN.match(line)
            assert match, f"constraints.txt: {line!r} is not name==version (no paths or URLs): run bash scripts/lock.sh"
            found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def test_lock_pins_every_dependency_within_pyproject_bounds():
    locked = pins()
    project = pyproject()
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    for line in requirements:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"constraints.txt has no pin for {name}: run bash scripts/lock.sh"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"constraints.txt pins {name}=={locked[name]}, outside pyproject's {requirement}: run bash scripts/lock.sh"
        )
    assert "horses-humans" not in locked


def fake_checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A checkout with the real setup.sh and a fake .venv/bin/python that logs its arguments instead of installing."""
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
        os.utime(tmp_path / name, (1e9, 1e9))  # long before any stamp
    log = tmp_path / "pip.log"
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    python.chmod(0o755)
    return tmp_path, log


def setup(checkout: Path, *args: str) -> None:
    subprocess.run(["bash", "scripts/setup.sh", *args], cwd=checkout, check=True, timeout=60)


def test_setup_installs_with_the_lock_and_skips_pip_until_something_changes(tmp_path):
    checkout, log = fake_checkout(tmp_path)
    setup(checkout)
    assert log.read_text().splitlines() == [
        "-m pip install -q --upgrade pip",
        "-m pip install -q -e . -c constraints.txt",
    ]
    setup(checkout)
    assert len(log.read_text().splitlines()) == 2  # stamp newer than pyproject.toml and constraints.txt: no pip
    setup(checkout, "test")  # another extra has its own stamp
    assert log.read_text().splitlines()[-1] == "-m pip install -q -e .[test] -c constraints.txt"
    future = (checkout / ".venv" / ".setup-stamp").stat().st_mtime + 10
    os.utime(checkout / "constraints.txt", (future, future))  # a new lock (git pull)
    setup(checkout)
    assert log.read_text().splitlines()[-1] == "-m pip install -q -e . -c constraints.txt"
