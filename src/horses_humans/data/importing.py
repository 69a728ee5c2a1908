"""`data import`: a zip or folder checked against the limits, staged beside the data folder, then renamed in."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from ..config import HorsesHumansError
from .files import is_hidden, shown, visible_folders
from .importplan import (
    IMAGE_SUFFIXES,
    SHOWN,
    ImportLimits,
    ImportPlan,
    PlanEntry,
    check_plan,
    opened,
    report_skipped,
)
from .layouts import (
    SPLITS,
    TRAIN,
    VALIDATION,
    class_names,
    detect_layout,
    find_class_root,
    find_data_root,
    find_dataset,
)

CHUNK = 1 << 20
MARKER = ".horses-humans-import"  # what an import leaves in the folder it fills: the one non-empty folder it replaces
ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)  # damaged, encrypted,
# or an unsupported compression (zipfile raises RuntimeError for a password, NotImplementedError for deflate64)


def import_path(
    path: Path, data_dir: Path, split: str | None = None, log=print, limits: ImportLimits = ImportLimits()
) -> list[str]:
    """Import a local zip or folder: a whole data set in any layout (it replaces what data_dir held), or, with
    --split or when it is named after one (horse-or-human.zip), one official split's class folders.
    Returns the folders written into data_dir."""
    path = Path(path)
    if not path.exists():
        raise HorsesHumansError(f"{path}: no such file or folder.")
    if not (path.is_dir() or path.is_file()):  # a FIFO would block the zip check forever
        raise HorsesHumansError(f"{path}: neither a folder nor a zip file (a FIFO, device or socket): name the zip.")
    if path.is_file() and not zipfile.is_zipfile(path):
        raise HorsesHumansError(f"{path}: neither a folder nor a zip file.")
    split = split or official_split_named(path)
    if split is None:
        return import_dataset(path, Path(data_dir), log, limits)
    if split not in SPLITS:
        raise HorsesHumansError(f"--split {split!r}: choose {TRAIN} or {VALIDATION}.")
    check_destination(path, Path(data_dir), Path(data_dir) / split)
    unpack_split(path, Path(data_dir) / split, limits, log)
    mark_imported(Path(data_dir))
    log(f"{split}: imported from {path}")
    return [split]


def official_split_named(path: Path) -> str | None:
    """The official split a zip or folder is named after (horse-or-human.zip, as downloaded by hand), else None;
    a folder holding the official split folders is a whole data set, whatever its name."""
    if path.is_dir() and set(visible_folders(path)) & set(SPLITS):
        return None
    stem = path.name[:-4] if path.name.lower().endswith(".zip") else path.name
    return next((split for split in SPLITS if split == stem.lower()), None)


def unpack_split(source: Path, dest: Path, limits: ImportLimits = ImportLimits(), log=print) -> None:
    """Write a zip's or folder's class folders into dest: staged beside it (within the limits), then renamed."""
    with staged(source, dest, limits, log) as unpacked:
        root = find_class_root(unpacked)
        names = class_names(root)  # validates: at least two class folders
        if set(names) & set(SPLITS):  # else both splits would become "classes" of one split
            raise HorsesHumansError(
                f"{source}: holds the split folders {names}, not class folders; "
                f"import the folder that directly holds {TRAIN}/ and {VALIDATION}/ (unzip it first)."
            )
        swap_in(root, dest, unpacked.parent / "replaced")


def import_dataset(source: Path, data_dir: Path, log=print, limits: ImportLimits = ImportLimits()) -> list[str]:
    """Write a whole data set (a zip or folder in any layout, checked first) into data_dir: staged in a temporary
    folder beside it (within the limits), then renamed into place. Returns the folders written."""
    replaced = check_destination(source, data_dir, data_dir)  # refused before anything is written
    with staged(source, data_dir, limits, log) as unpacked:
        dataset = find_dataset(
            find_data_root(unpacked)
        )  # one clear error for a bad layout, before anything is replaced
        mark_imported(dataset.root)  # arrives with the data, in the same rename
        swap_in(dataset.root, data_dir, unpacked.parent / "replaced")
    counts = ", ".join(f"{len(found.files)} {side}" for side, found in dataset.sides.items())
    log(
        f"imported the {dataset.layout} data set from {source} into {data_dir}: {len(dataset.class_names)} classes "
        f"({', '.join(dataset.class_names)}), {counts} images" + (f"; it replaced {replaced}" if replaced else "")
    )
    return visible_folders(data_dir)


def check_destination(source: Path, data_dir: Path, replaced: Path) -> str | None:
    """Refuse an import that could lose a file: into a folder no import made (unless it is empty or absent), into or
    out of itself, or over files an import never writes. Returns what it replaces, in words (None: nothing)."""
    check_apart(source, data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise HorsesHumansError(f"{data_dir}: is a file, not a data folder: choose another --data-dir.")
    held = sorted(os.listdir(data_dir)) if data_dir.is_dir() else []
    if held and MARKER not in held:
        raise HorsesHumansError(
            f"{data_dir}: holds {listed(held)}, which no import put there: import into an empty or new folder "
            "(--data-dir NEW_DIR); nothing was changed."
        )
    others = not_imported(replaced)
    if others:
        raise HorsesHumansError(
            f"{data_dir}: holds {listed(others)}, which an import never writes and would replace: move them out, "
            "or import into an empty or new folder (--data-dir NEW_DIR); nothing was changed."
        )
    visible = [name for name in held if not is_hidden(name)]
    return (
        f"the {detect_layout(data_dir)} data set ({', '.join(visible)})" if visible and replaced == data_dir else None
    )


def check_apart(source: Path, data_dir: Path) -> None:
    """Refuse an import whose source and data folder are one, or one inside the other: the swap would delete it."""
    src, dest = source.resolve(), data_dir.resolve()
    where = "this folder" if src == dest else "inside it" if src.is_relative_to(dest) else "a folder above it"
    if src == dest or src.is_relative_to(dest) or dest.is_relative_to(src):
        raise HorsesHumansError(
            f"{data_dir}: the import source {source} is {where}: import into a new, empty folder outside "
            f"{source} (--data-dir NEW_DIR); nothing was changed."
        )


def not_imported(folder: Path) -> list[str]:
    """Files under folder (relative) that an import never writes: anything but images and its marker."""
    if not folder.is_dir():
        return []
    found = (p for p in sorted(folder.rglob("*")) if not p.is_dir() or p.is_symlink())
    return [
        str(p.relative_to(folder))
        for p in found
        if p.name != MARKER and (p.is_symlink() or PurePosixPath(p.name).suffix.lower() not in IMAGE_SUFFIXES)
    ]


def listed(names: list[str]) -> str:
    """A few names for a message (escaped when they are not printable), and how many more."""
    shown_names = ", ".join(shown(name) for name in names[:SHOWN])
    return shown_names + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def mark_imported(folder: Path) -> None:
    """Write the marker that says an import made folder (the one non-empty folder a later import may replace)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by `horses-humans data import`; a later import may replace this folder\n")


def swap_in(new: Path, dest: Path, trash: Path) -> None:
    """Rename new onto dest; what dest held goes to trash first, and back should the rename fail."""
    if dest.exists():
        os.replace(dest, trash)
    try:
        os.replace(new, dest)
    except OSError:
        if trash.exists():
            os.replace(trash, dest)
        raise


# ---------------------------------------------------------------- staging: plan and check, then write


@contextmanager
def staged(source: Path, dest: Path, limits: ImportLimits, log):
    """Check an import of source against the limits and the free disk, then write it into a temporary folder beside
    dest: yields that folder, removed afterwards with whatever is left in it. Errors name source, not the folder."""
    clean_interrupted(dest, log)  # first: what a killed import left counts against the free space
    with opened(source, limits) as (plan, open_entry):
        check_plan(plan, dest.parent, limits)
        report_skipped(plan, log)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f"{staging_prefix(dest)}{os.getpid()}-"))
        try:
            write_plan(plan, tmp / "unpacked", open_entry, limits)
            yield tmp / "unpacked"
        except HorsesHumansError as exc:
            raise HorsesHumansError(str(exc).replace(str(tmp / "unpacked"), str(source))) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def staging_prefix(dest: Path) -> str:
    """How the temporary folders an import of dest stages in are named: then the id of the process that owns one."""
    return f".{dest.name}-import-"


def clean_interrupted(dest: Path, log) -> None:
    """Remove the staging folders that killed imports left beside dest. One killed between moving the old data aside
    and moving the new in still holds the old data: it goes back first."""
    prefix = staging_prefix(dest)
    for tmp in sorted(dest.parent.iterdir()) if dest.parent.is_dir() else []:
        pid = tmp.name[len(prefix) :].split("-")[0] if tmp.name.startswith(prefix) else ""
        if not pid.isdigit() or process_alive(int(pid)):
            continue  # not a staging folder, or one an import still running is writing
        if (tmp / "replaced").is_dir() and not dest.exists():
            os.replace(tmp / "replaced", dest)
            log(f"{dest}: put back, an import killed while it replaced the data had moved it aside")
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"{tmp}: removed, left by an import that was killed (process {pid})")


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs (another user's counts). On Windows always True: os.kill would end it."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_plan(plan: ImportPlan, dest: Path, open_entry: Callable, limits: ImportLimits) -> None:
    """Write the planned folders and images under dest (a new folder), counting bytes as they are written."""
    dest.mkdir()
    written = 0
    for entry in plan.entries:
        try:
            written += write_entry(plan, entry, dest / entry.name, open_entry, limits.max_bytes - written)
        except ZIP_READ_ERRORS as exc:
            raise HorsesHumansError(
                f"{plan.source}: cannot unpack {entry.name!r} ({exc}): nothing was changed: the "
                "zip is damaged, encrypted or unusually compressed; re-create it."
            ) from None
        except OSError as exc:  # a full disk, an unreadable file, a member that is both a file and a folder
            raise HorsesHumansError(
                f"{plan.source}: importing {entry.name!r} failed ({exc.strerror or exc}); nothing was changed."
            ) from None


def write_entry(plan: ImportPlan, entry: PlanEntry, target: Path, open_entry: Callable, room: int) -> int:
    """Write one folder, or one image's bytes, at most room of them (a size announced is not trusted), with its
    original time; returns the bytes written."""
    if entry.origin is None:
        target.mkdir(parents=True, exist_ok=True)
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open_entry(entry.origin) as src, open(target, "wb") as out:
        while chunk := src.read(CHUNK):
            written += len(chunk)
            if written > room:
                raise HorsesHumansError(
                    f"{plan.source}: {entry.name!r} holds more bytes than announced and the "
                    "import passed its --max-bytes limit: stopped, nothing was changed."
                )
            out.write(chunk)
    if entry.mtime_ns is not None:
        os.utime(target, ns=(entry.mtime_ns, entry.mtime_ns))
    return written
