"""Atomic file writes: a crash or Ctrl-C never leaves a half-written result behind."""

from __future__ import annotations

import json
import os
import tempfile
import sys
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path, suffix: str = ""):
    """Yield a temporary path beside `path`; on success it is renamed onto `path`, on error removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; results are ordinary files
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON (indented, sorted keys off to keep our order) atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


@contextmanager
def quiet_native_stderr():
    """Hide what C++ libraries (TensorFlow, its converter, LiteRT) print straight to file descriptor 2 for a block,
    while Python's own sys.stderr (our progress lines) still reaches the terminal; Python exceptions propagate as
    usual. HORSES_HUMANS_VERBOSE=1 shows everything."""
    if os.environ.get("HORSES_HUMANS_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved, python_stderr = os.dup(2), sys.stderr
    try:
        with open(os.devnull, "w") as devnull, open(saved, "w", closefd=False) as visible:
            os.dup2(devnull.fileno(), 2)
            if writes_to_fd2(python_stderr):
                sys.stderr = visible
            try:
                yield
            finally:
                sys.stderr = python_stderr
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def writes_to_fd2(stream) -> bool:
    """Whether a text stream is file descriptor 2 itself (not, say, pytest's capture)."""
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False
