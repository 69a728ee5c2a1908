"""`data import`: a zip or folder checked against the limits, staged beside the data folder, then renamed in."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from ..config import HorsesHumansError
from .files import is_hidden, visible_folders
from .importplan import (
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
    unpack_split(path, Path(data_dir) / split, limits, log)
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
    replaced = what_import_replaces(data_dir)  # refused before anything is written
    with staged(source, data_dir, limits, log) as unpacked:
        dataset = find_dataset(
            find_data_root(unpacked)
        )  # one clear error for a bad layout, before anything is replaced
        swap_in(dataset.root, data_dir, unpacked.parent / "replaced")
    counts = ", ".join(f"{len(found.files)} {side}" for side, found in dataset.sides.items())
    log(
        f"imported the {dataset.layout} data set from {source} into {data_dir}: {len(dataset.class_names)} classes "
        f"({', '.join(dataset.class_names)}), {counts} images" + (f"; it replaced {replaced}" if replaced else "")
    )
    return visible_folders(data_dir)


def what_import_replaces(dest: Path) -> str | None:
    """What an import into dest replaces, in words (None: nothing). A dest holding anything but a data set is
    refused: an import never deletes other files."""
    held = sorted(p.name for p in dest.iterdir() if not is_hidden(p.name)) if dest.is_dir() else []
    if dest.exists() and not dest.is_dir():
        raise HorsesHumansError(f"{dest}: is a file, not a data folder: choose another --data-dir.")
    if held and any((dest / name).is_file() for name in held):
        raise HorsesHumansError(
            f"{dest}: holds files ({', '.join(held[:5])}) besides a data set: import into an "
            "empty or new folder (--data-dir DIR)."
        )
    return f"the {detect_layout(dest)} data set ({', '.join(held)})" if held else None


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
