"""What a `data import` would write, checked before anything is: the plan of a zip or folder (images to write,
entries left out and why) within the limits and the free disk."""

from __future__ import annotations

import os
import shutil
import stat
import struct
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..config import HorsesHumansError, check_positive
from .files import IMAGE_SUFFIXES, inode, is_hidden, open_regular, shown  # noqa: F401  (IMAGE_SUFFIXES: re-exported)

SHOWN = 3  # names shown per reason in the skipped-entries line
CHUNK = 1 << 20  # central directory bytes read at a time
HEADER_MAX = 46 + 3 * 0xFFFF  # a member header: 46 bytes, then a name, extra field and comment of 64 KiB each at most
BLOCK = 4096  # a file's disk overhead at most, for the free-space check


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


@contextmanager
def opened(source: Path, limits: ImportLimits):
    """(plan, open_entry) for a folder or a zip; the zip stays open while its members are written."""
    if source.is_dir():
        yield folder_plan(source, limits), open_regular
        return
    count_members(source, limits)  # refused here, before zipfile loads a directory of any size
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise HorsesHumansError(f"{source}: not a valid zip file ({exc}).") from None
    with archive:
        yield zip_plan(archive, source, limits), archive.open


def end_record(path: Path) -> tuple[int, int, int] | None:
    """(member count announced, central directory size, where the directory ends) from a zip's end record (Zip64
    too), found as zipfile finds it; None when there is none (zipfile then says what is wrong)."""
    with open(path, "rb") as fh:
        start = max(0, fh.seek(0, os.SEEK_END) - 22 - 0xFFFF)  # the record (22 bytes) and a comment of 64 KiB at most
        fh.seek(start)
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return None
        count, size = struct.unpack_from("<HL", tail, at + 10)
        if tail[max(0, at - 20) : at - 16] != b"PK\x06\x07":
            return count, size, start + at
        fh.seek(max(0, start + at - 20 - 56))  # Zip64: its end record (56 bytes) just before the locator (20 bytes)
        record = fh.read(56)
    if len(record) < 56 or record[:4] != b"PK\x06\x06":
        return None
    count, size = struct.unpack_from("<QQ", record, 32)
    return count, size, start + at - 20 - 56


def announced_members(path: Path) -> int | None:
    """The member count a zip's end record announces (it may lie: count_members counts)."""
    found = end_record(path)
    return found and found[0]


def count_members(source: Path, limits: ImportLimits) -> None:
    """Refuse a zip with more members than --max-files, counted in its central directory as it is read, a chunk at a
    time (zipfile reads the whole directory at once, however large, and trusts no count): an end record that lies
    costs at most one chunk past the limit. A directory that is not all member headers is refused too."""
    found = end_record(source)
    if found is None:
        return
    announced, size, end = found
    if announced > limits.max_files:
        raise too_many(source, str(announced), limits)
    count = 0
    for used in member_header_sizes(source, end - size, size):
        count += 1
        if count > limits.max_files:
            raise too_many(source, f"more than {limits.max_files}", limits)
        size -= used
    if size != 0:
        raise HorsesHumansError(f"{source}: not a valid zip file (its central directory is damaged): re-create it.")


def member_header_sizes(path: Path, start: int, size: int) -> Iterator[int]:
    """The size of each member header in the central directory at start (size bytes), read a chunk at a time; stops
    at the first bytes that are not a header."""
    if start < 0:
        return
    with open(path, "rb") as fh:
        fh.seek(start)
        buf, at, left = b"", 0, size
        while True:
            if len(buf) - at < HEADER_MAX and left:  # a header is at most HEADER_MAX bytes: one read always suffices
                chunk = fh.read(min(CHUNK, left))
                buf, at, left = buf[at:] + chunk, 0, left - len(chunk)
            if len(buf) - at < 46 or buf[at : at + 4] != b"PK\x01\x02":
                return
            used = 46 + sum(struct.unpack_from("<3H", buf, at + 28))  # name, extra field and comment lengths
            if used > len(buf) - at:
                return
            at += used
            yield used


def zip_plan(archive: zipfile.ZipFile, source: Path, limits: ImportLimits) -> ImportPlan:
    """Sort a zip's members into folders and images to write and members to skip, from its directory alone; a file
    named twice is refused (the second would silently replace the first)."""
    members = archive.infolist()
    if len(members) > limits.max_files:
        raise too_many(source, str(len(members)), limits)
    plan, files = ImportPlan(source), set()
    for info in members:
        parts = member_parts(source, info.filename)
        if parts and not info.is_dir():
            refuse_twice(source, "/".join(parts), files)
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


def refuse_twice(source: Path, name: str, seen: set[str]) -> None:
    """Note a zip member's name; one named before is refused, naming the zip and the member."""
    if name in seen:
        raise HorsesHumansError(
            f"{source}: member '{shown(name)}' appears twice, and one copy would silently replace the other: "
            "re-create the zip without the duplicate."
        )
    seen.add(name)


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
        f"{len(names)} {reason} ({', '.join(map(shown, names[:SHOWN]))}{', ...' if len(names) > SHOWN else ''})"
        for reason, names in plan.skipped.items()
    ]
    total = sum(map(len, plan.skipped.values()))
    log(
        f"{plan.source}: skipped {total} {'entry' if total == 1 else 'entries'}: {'; '.join(reasons)} "
        "(left in place, not imported)"
    )
