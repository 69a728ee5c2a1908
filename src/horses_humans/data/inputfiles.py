"""The files a `predict` run reads: a lazy walk of the paths it is given, and an open that never blocks.

Only regular files are opened. A FIFO, a device or a socket is skipped with its reason before anything opens it (a
FIFO with no writer would block open() forever); so are dangling links, link loops and folders that link back to a
folder above them. The walk is a generator in a fixed order (each folder's entries sorted by name), so a million
files are never held in a list, and the same inputs always come out in the same order (what --resume relies on).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .files import NotRegularFile, inode, is_hidden, kind_of
from .files import open_regular as open_checked
from .images import ImageError

FOLDER = "<folder>"  # what `problem` says of a folder: walked, not opened (every real reason starts with the path)

Entry = tuple[Path, str | None]  # a file to read and None, or a path and why it is skipped


def walk_inputs(paths: Iterable[str | Path]) -> Iterator[Entry]:
    """(path, None) for every file to predict, or (path, reason) for one that is skipped: files named directly as
    given, folders walked recursively in sorted order without hidden entries (dot files, __MACOSX), linked folders
    followed unless they loop back."""
    for path in map(Path, paths):
        reason = problem(path)
        if reason == FOLDER:
            yield from walk_folder(path, frozenset({folder_key(path)}))
        else:
            yield path, reason


def walk_folder(folder: Path, ancestors: frozenset) -> Iterator[Entry]:
    """The entries below one folder; `ancestors` are the (device, inode) of the folders above, to catch loops."""
    try:
        with os.scandir(folder) as listing:
            names = sorted(entry.name for entry in listing if not is_hidden(entry.name))
    except OSError as exc:
        yield folder, f"{folder}: cannot list this folder ({exc.strerror})"
        return
    for path in (folder / name for name in names):
        reason = problem(path)
        if reason != FOLDER:
            yield path, reason
        elif folder_key(path) in ancestors:
            yield path, f"{path}: a link back to a folder above it (directory loop); not followed"
        else:
            yield from walk_folder(path, ancestors | {folder_key(path)})


def folder_key(path: Path) -> tuple[int, int]:
    """(device, inode) of a folder, links followed: the same folder reached twice has the same key."""
    return inode(os.stat(path))


def problem(path: Path) -> str | None:
    """None for a regular file (links followed), FOLDER for a folder, else why it cannot be read, from os.stat alone:
    nothing is opened."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return describe_os_error(path, exc)
    if stat.S_ISREG(mode):
        return None
    return FOLDER if stat.S_ISDIR(mode) else f"{path}: {kind_of(mode)}, not a regular file; skipped"


def describe_os_error(path: Path, exc: OSError) -> str:
    """The reason a stat or open failed, one line naming the path (links told apart from missing files)."""
    if exc.errno == errno.ELOOP:
        return f"{path}: a symbolic link loop; skipped"
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return f"{path}: a dangling symbolic link (its target {os.readlink(path)} does not exist); skipped"
    if exc.errno == errno.ENOENT:
        return f"{path}: no such file"
    return f"{path}: cannot read ({exc.strerror})"


def open_regular(path: str | Path) -> BinaryIO:
    """Open a regular file for reading, or raise ImageError with the reason: stat first (nothing special is ever
    opened), then open non-blocking and check the open file again (it may have been swapped since)."""
    reason = problem(Path(path))
    if reason is not None:
        raise ImageError(f"{path}: is a directory, not an image" if reason == FOLDER else reason)
    try:
        return open_checked(path)
    except NotRegularFile as exc:
        raise ImageError(f"{exc}; skipped") from None
    except OSError as exc:
        raise ImageError(describe_os_error(Path(path), exc)) from None
