"""`data import`: a zip or folder checked against the limits, staged beside the data folder, then renamed in."""

from __future__ import annotations

import os
import shutil
import stat
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..config import HorsesHumansError, check_positive
from .files import inode, is_hidden, open_regular, visible_folders
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

# ---------------------------------------------------------------- import: bounded, staged beside the data folder

IMAGE_SUFFIXES = frozenset(
    {  # what an import keeps: the photo formats Pillow decodes (not all it registers: .mpg, .h5)
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
SHOWN = 3  # names shown per reason in the skipped-entries line
BLOCK = 4096  # a file's disk overhead at most, for the free-space check
CHUNK = 1 << 20
ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)  # damaged, encrypted,
# or an unsupported compression (zipfile raises RuntimeError for a password, NotImplementedError for deflate64)


@dataclass(frozen=True)
class ImportLimits:
    """What one import may hold: bytes of images written, and entries (files and folders, skipped ones too) read.
    The defaults hold the official set (1,283 images, 161 MB by `du -sb` of its two splits) many times over."""

    max_bytes: int = 2 * 2**30
    max_files: int = 50_000

    def __post_init__(self):
        check_positive("max_bytes", self.max_bytes)
        check_positive("max_files", self.max_files)

    @classmethod
    def given(cls, max_bytes: int | None = None, max_files: int | None = None) -> ImportLimits:
        """The limits from the options given (--max-bytes, --max-files), the defaults for the others."""
        default = cls()
        return cls(
            default.max_bytes if max_bytes is None else max_bytes, default.max_files if max_files is None else max_files
        )


@dataclass(frozen=True)
class PlanEntry:
    """A folder or image an import writes: its path in the data set, its announced size, where its bytes are."""

    name: str  # relative, "/"-separated: never absolute, never ".."
    size: int  # bytes the zip's directory or the file's stat announces (either can be wrong by the time it is read)
    origin: zipfile.ZipInfo | Path | None  # None: a folder
    mtime_ns: int | None = None  # the original's, kept: re-importing the same files keeps their pixel cache's key


@dataclass
class ImportPlan:
    """What an import of source writes (entries) and what it leaves out (reason -> names)."""

    source: Path
    entries: list[PlanEntry] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, name: str) -> None:
        """Leave name out, for reason (reported in one line)."""
        self.skipped.setdefault(reason, []).append(name)

    def add_file(self, name: str, size: int, origin: zipfile.ZipInfo | Path, mtime_ns: int | None) -> None:
        """Plan an image; any other file is left out."""
        if PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES:
            self.entries.append(PlanEntry(name, size, origin, mtime_ns))
        else:
            self.skip("not images", name)


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


@contextmanager
def opened(source: Path, limits: ImportLimits):
    """(plan, open_entry) for a folder or a zip; the zip stays open while its members are written."""
    if source.is_dir():
        yield folder_plan(source, limits), open_regular
        return
    announced = announced_members(source)
    if announced is not None and announced > limits.max_files:
        raise too_many(source, str(announced), limits)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise HorsesHumansError(f"{source}: not a valid zip file ({exc}).") from None
    with archive:
        yield zip_plan(archive, source, limits), archive.open


def announced_members(path: Path) -> int | None:
    """The member count a zip's end record announces, read before zipfile loads its whole directory (ten million
    members take gigabytes as ZipInfo objects); None when there is no end record (zipfile then says what is wrong)."""
    with open(path, "rb") as fh:
        fh.seek(max(0, fh.seek(0, os.SEEK_END) - 22 - 0xFFFF))  # the record (22 bytes) and a comment of 64 KiB at most
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return None
        count = struct.unpack_from("<H", tail, at + 10)[0]
        if count != 0xFFFF or tail[max(0, at - 20) : at - 16] != b"PK\x06\x07":
            return count
        fh.seek(struct.unpack_from("<Q", tail, at - 12)[0])  # Zip64: the locator points at the Zip64 end record
        record = fh.read(40)
    return struct.unpack_from("<Q", record, 32)[0] if len(record) == 40 and record[:4] == b"PK\x06\x06" else None


def zip_plan(archive: zipfile.ZipFile, source: Path, limits: ImportLimits) -> ImportPlan:
    """Sort a zip's members into folders and images to write and members to skip, from its directory alone."""
    members = archive.infolist()
    if len(members) > limits.max_files:
        raise too_many(source, str(len(members)), limits)
    plan = ImportPlan(source)
    for info in members:
        parts = member_parts(source, info.filename)
        if not parts or any(is_hidden(part) for part in parts):
            continue  # __MACOSX/, .DS_Store: never data, not worth a report
        name, kind = "/".join(parts), stat.S_IFMT(info.external_attr >> 16)  # the Unix file type, when a Unix zip says
        if info.is_dir() or kind == stat.S_IFDIR:
            plan.entries.append(PlanEntry(name, 0, None))
        elif kind == stat.S_IFLNK:
            plan.skip("symlinks", name)  # never followed: it could point anywhere
        elif kind not in (0, stat.S_IFREG):
            plan.skip("not regular files", name)
        else:
            plan.add_file(name, info.file_size, info, zip_mtime_ns(info))
    return plan


def zip_mtime_ns(info: zipfile.ZipInfo) -> int | None:
    """A member's modification time (the zip stores local time, to 2 s), None when it is not a valid date."""
    try:
        return int(time.mktime((*info.date_time, 0, 0, -1))) * 10**9
    except (OverflowError, ValueError):
        return None


def member_parts(source: Path, member: str) -> tuple[str, ...]:
    """A zip member's path parts; an absolute one or one that climbs out with '..' is refused (zip-slip)."""
    parts = PurePosixPath(member.replace("\\", "/")).parts
    if PureWindowsPath(member).anchor or member.startswith("/") or ".." in parts:
        raise HorsesHumansError(
            f"{source}: member {member!r} points outside the archive; refused: the zip is unsafe, "
            "re-create it with paths relative to its top folder."
        )
    return parts


def folder_plan(source: Path, limits: ImportLimits) -> ImportPlan:
    """Walk a folder into what to write and what to skip; links to files and folders are followed, never round a
    loop, and FIFOs, devices and sockets are never opened."""
    plan, seen = ImportPlan(source), 0
    todo = [(str(source), "", frozenset({inode(os.stat(source))}))]
    while todo:
        folder, prefix, ancestors = todo.pop()
        inner = []
        for path, name in folder_names(plan, folder, prefix):
            seen += 1
            if seen > limits.max_files:
                raise too_many(source, f"more than {limits.max_files}", limits)
            inner += plan_folder_entry(plan, path, name, ancestors)
        todo += reversed(inner)  # the first sub-folder is walked next: entries come in sorted order
    return plan


def folder_names(plan: ImportPlan, folder: str, prefix: str) -> list[tuple[str, str]]:
    """(path, name in the data set) of a folder's visible entries; an unreadable folder is skipped."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        plan.skip("unreadable", prefix.rstrip("/") or ".")
        return []
    return [(os.path.join(folder, n), prefix + n) for n in names if not is_hidden(n)]


def plan_folder_entry(plan: ImportPlan, path: str, name: str, ancestors: frozenset) -> list[tuple]:
    """Plan one entry of a folder; a folder to walk into comes back as [(path, name/, its ancestors)]."""
    try:
        info = os.stat(path)  # follows links: a dangling link or one that points at itself fails here
    except OSError:
        plan.skip("broken links" if os.path.islink(path) else "unreadable", name)
        return []
    if stat.S_ISDIR(info.st_mode):
        if inode(info) in ancestors:  # a link back up the tree: walking it would never end
            plan.skip("symlink loops", name)
            return []
        plan.entries.append(PlanEntry(name, 0, None))
        return [(path, name + "/", ancestors | {inode(info)})]
    if stat.S_ISREG(info.st_mode):
        plan.add_file(name, info.st_size, Path(path), info.st_mtime_ns)
    else:
        plan.skip("not regular files", name)
    return []


def too_many(source: Path, found: str, limits: ImportLimits) -> HorsesHumansError:
    """The refusal of an import with more entries than --max-files."""
    return HorsesHumansError(
        f"{source}: holds {found} files and folders, over the limit of {limits.max_files}: "
        "raise --max-files if they are all data."
    )


def check_plan(plan: ImportPlan, where: Path, limits: ImportLimits) -> None:
    """Refuse, before anything is written, an import over --max-bytes or over the free space where it goes."""
    size = sum(entry.size for entry in plan.entries)
    if size > limits.max_bytes:
        raise HorsesHumansError(
            f"{plan.source}: its images unpack to {size_text(size)}, over the limit of "
            f"{size_text(limits.max_bytes)}: raise --max-bytes if the data set is that large."
        )
    need, free = size + BLOCK * len(plan.entries), shutil.disk_usage(existing_folder(where)).free
    if need > free:
        raise HorsesHumansError(
            f"{where}: {size_text(free)} free on its disk, the import of {plan.source} needs "
            f"{size_text(need)}: free some space or choose another --data-dir."
        )


def existing_folder(path: Path) -> Path:
    """path, or its nearest parent that exists (where a new data folder's disk is measured)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return path


def size_text(n: int) -> str:
    """A byte count for a message, exact (--max-bytes takes bytes) and readable: 812 bytes, 3.3 KiB (3408 bytes)."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n} bytes)"
    return f"{n} bytes"


def report_skipped(plan: ImportPlan, log) -> None:
    """One line: how many entries the import leaves out, by reason, with the first few names of each."""
    if not plan.skipped:
        return
    reasons = [
        f"{len(names)} {reason} ({', '.join(names[:SHOWN])}{', ...' if len(names) > SHOWN else ''})"
        for reason, names in plan.skipped.items()
    ]
    total = sum(map(len, plan.skipped.values()))
    log(f"{plan.source}: skipped {total} {'entry' if total == 1 else 'entries'}: {'; '.join(reasons)}")


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
