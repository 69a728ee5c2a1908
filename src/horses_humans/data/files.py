"""Walking data folders and input paths, and the one way a file is opened for reading.

What is hidden (dot files, __MACOSX, Thumbs.db) is never data, wherever it is met. Only regular files are opened: a
FIFO, a device or a socket is refused before anything opens it (a FIFO with no writer would block open() forever),
and again on the open file (it may have been swapped in since). The walk of `predict`'s inputs is a generator in a
fixed order (each folder's entries sorted by name), so a million files are never held in a list, and the same inputs
always come out in the same order (what --resume relies on). Inside a walked folder, a file whose name says it is not
an image (notes.txt, .DS_Store) is passed over and counted, not answered; a file named directly is always read.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

IMAGE_SUFFIXES = frozenset(
    {  # what an import keeps and a walked folder offers: the photo formats Pillow decodes (not all it registers)
        ".png",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".gif",
        ".bmp",
        ".dib",
        ".webp",
        ".avif",
        ".tif",
        ".tiff",
        ".tga",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
    }
)
OS_JUNK = {"__macosx", "thumbs.db", "ehthumbs.db", "desktop.ini"}  # what macOS and Windows leave in photo folders
FOLDER = "<folder>"  # what `problem` says of a folder: walked, not opened (every real reason starts with the path)

WalkedInput = tuple[Path, str | None]  # a file to read and None, or a path and why it is skipped


class UnreadableFile(OSError):
    """A file open_regular refuses or cannot open; the message is one line naming the path and the reason."""


# ---------------------------------------------------------------- data folders


def is_hidden(name: str) -> bool:
    """Dot files and folders, macOS resource forks (__MACOSX) and Windows' Thumbs.db / desktop.ini are never data."""
    return name.startswith(".") or name.lower() in OS_JUNK


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


def is_utf8(name: str) -> bool:
    """Whether a name as the OS gives it is valid UTF-8 (else its undecodable bytes are kept as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unrecordable_folder(folder: str | os.PathLike, role: str = "data folder", before: str = "training") -> str | None:
    """Why a run could not record this folder, or None: its resolved path holds a name that is not valid UTF-8, which
    the run's JSON records (data.json, environment.json, evaluations) cannot hold and read back."""
    resolved = Path(folder).resolve()
    odd = next((part for part in resolved.parts if not is_utf8(part)), None)
    if odd is None:
        return None
    return (
        f"{shown(resolved)}: the {role}'s path holds '{shown(odd)}', a name that is not valid UTF-8, which a run's "
        f"records cannot hold; rename that folder to a UTF-8 name before {before}"
    )


def shown(name: str | os.PathLike) -> str:
    """A file name safe to print: bytes that are not UTF-8 (kept by surrogateescape) and control characters such as
    ESC come out escaped (\\xe9, \\x1b), so a hostile name can neither crash a print nor drive the terminal."""
    text = os.fspath(name)
    if text.isprintable() and not any("\udc80" <= c <= "\udcff" for c in text):
        return text
    raw = os.fsencode(text).decode("utf-8", "backslashreplace")  # the undecodable bytes as \xNN
    return "".join(c if c.isprintable() or c == "\\" else ascii(c)[1:-1] for c in raw)


# ---------------------------------------------------------------- opening one file


def open_regular(path: str | Path) -> BinaryIO:
    """Open a regular file for reading (links followed), or raise UnreadableFile saying why: stat first, so nothing
    special is ever opened, then open non-blocking and check the open file again (it may have been swapped since)."""
    reason = problem(Path(path))
    if reason is not None:
        raise UnreadableFile(f"{path}: a folder, not a regular file" if reason == FOLDER else reason)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK has no effect on a regular file's reads
    except OSError as exc:
        raise UnreadableFile(describe_os_error(Path(path), exc)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnreadableFile(f"{path}: {kind_of(mode)}, not a regular file")
    return os.fdopen(fd, "rb")


def problem(path: Path) -> str | None:
    """None for a regular file (links followed), FOLDER for a folder, else why it cannot be read, from os.stat alone:
    nothing is opened."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return describe_os_error(path, exc)
    if stat.S_ISREG(mode):
        return None
    return FOLDER if stat.S_ISDIR(mode) else f"{path}: {kind_of(mode)}, not a regular file"


def describe_os_error(path: Path, exc: OSError) -> str:
    """The reason a stat or open failed, one line naming the path (links told apart from missing files)."""
    if exc.errno == errno.ELOOP:
        return f"{path}: a symbolic link loop"
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return f"{path}: a dangling symbolic link (its target {os.readlink(path)} does not exist)"
    if exc.errno == errno.ENOENT:
        return f"{path}: no such file"
    return f"{path}: cannot read ({exc.strerror})"


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


def inode(info: os.stat_result) -> tuple[int, int]:
    """What tells two folders apart whatever path reached them."""
    return info.st_dev, info.st_ino


# ---------------------------------------------------------------- walking predict's inputs


@dataclass
class PassedOver:
    """How many files of walked folders the walk passed over because their names say they are not images."""

    not_images: int = 0

    def summary(self) -> str:
        """'; 3 files skipped: not images' for predict's closing line ('' when there were none)."""
        if not self.not_images:
            return ""
        return f"; {self.not_images} file{'s' if self.not_images > 1 else ''} skipped: not images"


def is_image_name(name: str) -> bool:
    """Whether a file's name offers an image: an image extension, and not hidden (.DS_Store, ._photo.jpg)."""
    return not is_hidden(name) and Path(name).suffix.lower() in IMAGE_SUFFIXES


def walk_inputs(paths: Iterable[str | Path], passed: PassedOver | None = None) -> Iterator[WalkedInput]:
    """(path, None) for every file to predict, or (path, reason) for one that is skipped: files named directly as
    given, folders walked recursively in sorted order without hidden folders (.git, __MACOSX), linked folders followed
    unless they loop back; a walked folder's files that are not images by name are passed over (counted in `passed`)."""
    for path in map(Path, paths):
        reason = problem(path)
        if reason == FOLDER:
            yield from walk_folder(path, frozenset({folder_key(path)}), passed or PassedOver())
        else:
            yield path, skip_reason(reason)


def walk_folder(folder: Path, ancestors: frozenset, passed: PassedOver) -> Iterator[WalkedInput]:
    """The entries below one folder; `ancestors` are the (device, inode) of the folders above, to catch loops."""
    try:
        with os.scandir(folder) as listing:
            names = sorted(entry.name for entry in listing)
    except OSError as exc:
        yield folder, f"{folder}: cannot list this folder ({exc.strerror})"
        return
    for path in (folder / name for name in names):
        reason = problem(path)
        if reason == FOLDER and is_hidden(path.name):
            continue  # never data: a hidden folder's files are not counted either
        if reason != FOLDER and not is_image_name(path.name):
            passed.not_images += 1
        elif reason != FOLDER:
            yield path, skip_reason(reason)
        elif folder_key(path) in ancestors:
            yield path, f"{path}: a link back to a folder above it (directory loop); not followed"
        else:
            yield from walk_folder(path, ancestors | {folder_key(path)}, passed)


def skip_reason(reason: str | None) -> str | None:
    """A walked path's reason as its row reports it (None: a file to read)."""
    return None if reason is None else f"{reason}; skipped"


def folder_key(path: Path) -> tuple[int, int]:
    """(device, inode) of a folder, links followed: the same folder reached twice has the same key."""
    return inode(os.stat(path))
