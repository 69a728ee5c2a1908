"""Walking data folders: what is hidden, the visible files and folders, and an open that only reads regular files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

# ---------------------------------------------------------------- finding files

OS_JUNK = {"__macosx", "thumbs.db", "ehthumbs.db", "desktop.ini"}  # what macOS and Windows leave in photo folders


def is_hidden(name: str) -> bool:
    """Dot files and folders, macOS resource forks (__MACOSX) and Windows' Thumbs.db / desktop.ini are never data."""
    return name.startswith(".") or name.lower() in OS_JUNK


def hidden_names(folder: str, names: list[str]) -> list[str]:
    """shutil.copytree's ignore: the hidden names (is_hidden) in a folder, never copied."""
    return [name for name in names if is_hidden(name)]


def visible_files(folder: Path) -> list[Path]:
    """Every file below folder, sorted, except hidden ones and those inside hidden folders.

    Only the parts below `folder` count: the folder itself may live in ~/.cache."""
    folder = Path(folder)
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not any(is_hidden(part) for part in p.relative_to(folder).parts)
    )


def visible_folders(folder: Path) -> list[str]:
    """Names of the sub-folders of folder that are not hidden, sorted."""
    return sorted(p.name for p in Path(folder).iterdir() if p.is_dir() and not is_hidden(p.name))


def inode(info: os.stat_result) -> tuple[int, int]:
    """What tells two folders apart whatever path reached them."""
    return info.st_dev, info.st_ino


class NotRegularFile(OSError):
    """A path that was to be read is a FIFO, a device, a socket or a folder (found on the open file itself)."""


def open_regular(path: str | Path):
    """Open a file for reading only while it is a regular file (the import and predict both read through this):
    non-blocking, so a FIFO swapped in since it was checked cannot block; NotRegularFile says what it is instead."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)  # O_NONBLOCK has no effect on a regular file's reads
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFile(f"{path}: {kind_of(mode)}, not a regular file")
    return os.fdopen(fd, "rb")


def kind_of(mode: int) -> str:
    """What a file that is not a regular one is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"
