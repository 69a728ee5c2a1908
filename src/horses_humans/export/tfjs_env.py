"""The TF.js converter's own Python environment, built once and kept in the user's cache.

The official converter (tensorflowjs 4.22) needs TensorFlow <= 2.19 and tensorflow-decision-forests, which cannot
live beside this project's TensorFlow 2.21, so it gets a venv of its own, its versions pinned in
tfjs-constraints.txt (beside this file). The venv is built on first use (about a minute and 3 GB on disk; it needs
PyPI, or the pip index the machine is configured with, once), under $HORSES_HUMANS_TFJS_ENV or
CACHE/tfjs-converter/KEY, KEY naming the pins and the Python version so a change of either builds a new one. The
build happens in a side folder under a file lock and is renamed into place only when it works, so a killed or failed
build leaves nothing that looks finished. Only the venv's python is called (`python -c`), never its console scripts,
whose first lines would name the side folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..config import HorsesHumansError, user_cache_dir

CONSTRAINTS = Path(__file__).with_name("tfjs-constraints.txt")
ENV_TFJS_ENV = "HORSES_HUMANS_TFJS_ENV"  # the converter's venv folder (setup-test.sh builds it once for the tests)
ENV_TFJS_PYTHON = "HORSES_HUMANS_TFJS_PYTHON"  # the interpreter to build it with, when this one is not 3.9-3.12
PYTHONS = ((3, 9), (3, 12))  # TensorFlow 2.19's wheels
READY = "horses-humans-ready"  # written last: the venv imports tensorflowjs
IMPORT_CHECK = "import tensorflowjs.converters.tf_saved_model_conversion_v2"


def env_dir() -> Path:
    """Where the converter's venv lives: $HORSES_HUMANS_TFJS_ENV, else the user's cache, keyed by pins and Python."""
    if os.environ.get(ENV_TFJS_ENV):
        return Path(os.environ[ENV_TFJS_ENV]).expanduser()
    python = os.environ.get(ENV_TFJS_PYTHON) or f"{sys.version_info[0]}.{sys.version_info[1]}"
    key = hashlib.sha256(CONSTRAINTS.read_bytes() + python.encode()).hexdigest()[:12]
    return user_cache_dir() / "tfjs-converter" / key


def converter_python(log: Callable[[str], None] = print) -> Path:
    """The converter venv's python, building the venv first if it is not there (once; concurrent callers wait)."""
    from filelock import FileLock

    folder = env_dir()
    if not (folder / READY).is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder) + ".lock"):
            if not (folder / READY).is_file():
                build_env(folder, log)
    return folder / "bin" / "python"


def base_python() -> str:
    """The interpreter the venv is made from: $HORSES_HUMANS_TFJS_PYTHON, else this one if TensorFlow 2.19 has
    wheels for it; else an error saying which to install."""
    chosen = os.environ.get(ENV_TFJS_PYTHON)
    if chosen:
        return chosen
    if PYTHONS[0] <= sys.version_info[:2] <= PYTHONS[1]:
        return sys.executable
    raise HorsesHumansError(
        f"--format tfjs: the TF.js converter needs TensorFlow 2.19, which has no wheels for Python "
        f"{sys.version_info[0]}.{sys.version_info[1]}: install Python 3.9-3.12 and set {ENV_TFJS_PYTHON} to it"
    )


def build_env(folder: Path, log: Callable[[str], None]) -> None:
    """Make the venv in a side folder, install the pinned converter, check it imports, then move it into place."""
    side = folder.with_name(folder.name + ".building")
    shutil.rmtree(side, ignore_errors=True)  # what a killed build left
    log(f"building the TF.js converter's environment in {folder} (once: about a minute, 3 GB)")
    try:
        run_step([base_python(), "-m", "venv", str(side)], folder, "create the venv")
        pip = [str(side / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        run_step([*pip, "tensorflowjs", "-c", str(CONSTRAINTS)], folder, "install tensorflowjs")
        run_step([str(side / "bin" / "python"), "-c", IMPORT_CHECK], folder, "import tensorflowjs")
        (side / READY).write_text("tensorflowjs imports\n")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(side, folder)
    finally:
        shutil.rmtree(side, ignore_errors=True)


def run_step(command: list[str], folder: Path, what: str) -> None:
    """One build step; a failure is one line: what failed, pip's last words, and how to build it by hand."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == 0:
        return
    lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip() and "WARNING" not in line]
    said = lines[-1].strip() if lines else f"exit status {done.returncode}"
    raise HorsesHumansError(
        f"--format tfjs: could not {what} for the TF.js converter in {folder} ({said}); it needs the pip index once: "
        f"online, retry, or build it yourself: python3.11 -m venv {folder} && {folder}/bin/pip install tensorflowjs "
        f"-c {CONSTRAINTS} && touch {folder}/{READY}"
    )


if __name__ == "__main__":  # scripts/setup-test.sh: build it ahead of the tests
    print(converter_python())
