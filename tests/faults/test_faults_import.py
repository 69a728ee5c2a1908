"""Hostile and unlucky imports: zip bombs, lying headers, 100k members, symlinks, traversal, loops, FIFOs, a full disk.
Each one is done for real and ends in a clear error or a report line, no traceback, no hang, the old data intact."""

import os
import shutil
import stat
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from horses_humans.cli.main import main
from horses_humans.config import HorsesHumansError
from horses_humans.data import files, importing, importplan
from horses_humans.data.importing import MARKER
from horses_humans.data.layouts import TRAIN, VALIDATION

from ..cli.test_cli_data import assert_one_line_error
from ..synthetic import zip_folder

SRC = str(Path(__file__).resolve().parents[2] / "src")  # this checkout's package, in subprocesses too
DEADLINE = 120  # seconds: an import of a handful of files that takes longer is hanging


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder, relative path -> bytes: what 'the old data intact' compares."""
    files = (p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MARKER)
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def staging_left(folder: Path) -> list[str]:
    """Temporary import folders (".data-import-xxxx") left beside the data folder (not an import's marker)."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != MARKER]


def import_cli(source: Path, data_dir: Path, *options: str) -> int:
    """`horses-humans data import SOURCE --data-dir DATA_DIR OPTIONS...`, in this process; its exit code."""
    return main(["data", "import", str(source), "--data-dir", str(data_dir), *options])


def import_subprocess(source: Path, data_dir: Path) -> subprocess.CompletedProcess:
    """The same import in a fresh process, killed after DEADLINE seconds (where a FIFO could make it hang)."""
    return subprocess.run(
        [sys.executable, "-m", "horses_humans", "data", "import", str(source), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env={**os.environ, "PYTHONPATH": SRC},
    )


@pytest.fixture
def held(imported_data_dir) -> tuple[Path, dict[str, bytes]]:
    """(the data folder an earlier import made, what it holds) before a hostile import into it."""
    return imported_data_dir, snapshot(imported_data_dir)


def assert_refused(capsys, held, *fragments: str) -> None:
    """One 'error:' line with the fragments, nothing on stdout, the old data and nothing else beside it."""
    captured = capsys.readouterr()
    assert_one_line_error(captured.err, *fragments)
    assert captured.out == ""
    data_dir, before = held
    assert snapshot(data_dir) == before
    assert staging_left(data_dir.parent) == []


def class_zip(make_split, tmp_path: Path, name: str = "set.zip") -> Path:
    """A healthy zip of two class folders (horses/, humans/: 2 PNGs each)."""
    return zip_folder(make_split(tmp_path / "src", (2, 2)), tmp_path / name)


# ---------------------------------------------------------------- bombs and lies


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path, held, make_split, capsys):
    archive = class_zip(make_split, tmp_path)
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as zf:
        for i in range(4):  # 4 x 4 MiB of zeros: ~16 KB zipped
            zf.writestr(f"horses/bomb-{i}.png", bytes(4 * 2**20))
    assert archive.stat().st_size < 100_000
    assert import_cli(archive, held[0], "--max-bytes", "1000000") == 2
    assert_refused(capsys, held, str(archive), "16.0 MiB", "976.6 KiB", "--max-bytes")


def lie_about_sizes(archive: Path, member: str, size: int) -> None:
    """Rewrite a member's uncompressed size in its local header and the central directory (the CRC stays true)."""
    raw, name = bytearray(archive.read_bytes()), member.encode()
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):  # local, central
        at = raw.find(signature)
        while at != -1:
            if raw[at + name_at : at + name_at + len(name)] == name:
                struct.pack_into("<I", raw, at + size_at, size)
            at = raw.find(signature, at + 4)
    archive.write_bytes(bytes(raw))


def test_zip_whose_header_lies_about_its_size_stops_and_leaves_the_old_data(tmp_path, held, make_split, capsys):
    archive = class_zip(make_split, tmp_path)
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("humans/zz-liar.png", bytes(8 * 2**20))  # last: the good members are written before it
    lie_about_sizes(archive, "humans/zz-liar.png", 100)
    assert zipfile.ZipFile(archive).getinfo("humans/zz-liar.png").file_size == 100
    assert import_cli(archive, held[0]) == 2
    assert_refused(capsys, held, str(archive), "humans/zz-liar.png", "nothing was changed")


def test_a_file_that_grows_after_it_was_measured_is_cut_off_at_the_limit(tmp_path, make_split):
    source = make_split(tmp_path / "src", (2, 2))
    limits = importplan.ImportLimits(max_bytes=2**20)
    plan = importplan.folder_plan(source, limits)
    importplan.check_plan(plan, tmp_path, limits)  # as measured, it fits
    with open(source / "horses" / "horses-00.png", "ab") as fh:
        fh.write(bytes(2 * 2**20))  # it grows between the check and the copy
    with pytest.raises(HorsesHumansError, match="horses/horses-00.png.*more bytes than announced.*--max-bytes"):
        importing.write_plan(plan, tmp_path / "dest", files.open_regular, limits)
    written = sum(p.stat().st_size for p in (tmp_path / "dest").rglob("*") if p.is_file())
    assert written <= limits.max_bytes  # the counting stopped it, not the end of the file


# ---------------------------------------------------------------- counts


@pytest.fixture(scope="module")
def hundred_thousand_members(tmp_path_factory) -> Path:
    """A zip of 100,000 empty members (stored, ~10 MB), written once for this module."""
    archive = tmp_path_factory.mktemp("many") / "many.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for i in range(100_000):
            zf.writestr(f"horses/{i:06d}.txt", b"")
    return archive


def test_100k_members_are_refused_by_count(hundred_thousand_members, held, capsys):
    assert import_cli(hundred_thousand_members, held[0]) == 2
    assert_refused(
        capsys, held, str(hundred_thousand_members), "holds 100000 files and folders", "50000", "--max-files"
    )


def test_100k_members_are_refused_before_the_zip_directory_is_loaded(
    hundred_thousand_members, held, capsys, monkeypatch
):
    def load(*args, **kwargs):  # a million members would take gigabytes of ZipInfo objects
        raise AssertionError("the whole zip directory was loaded")

    monkeypatch.setattr(importing.zipfile, "ZipFile", load)
    assert importplan.announced_members(hundred_thousand_members) == 100_000  # from the Zip64 end record
    assert import_cli(hundred_thousand_members, held[0]) == 2
    assert_refused(capsys, held, "holds 100000 files and folders", "--max-files")


def lie_about_count(archive: Path, count: int) -> Path:
    """Make a zip's end records (the classic one, and the Zip64 one when there is one) announce `count` members."""
    blob = bytearray(archive.read_bytes())
    at = blob.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", blob, at + 8, min(count, 0xFFFE), min(count, 0xFFFE))
    if blob[at - 20 : at - 16] == b"PK\x06\x07":  # Zip64: its end record sits just before the locator
        struct.pack_into("<QQ", blob, at - 20 - 56 + 24, count, count)
    archive.write_bytes(bytes(blob))
    return archive


@pytest.fixture
def lying_zip(hundred_thousand_members, tmp_path) -> Path:
    """The 100,000-member zip, whose end records announce 10 members."""
    return lie_about_count(Path(shutil.copy(hundred_thousand_members, tmp_path / "lies.zip")), 10)


def test_a_zip_whose_end_record_lies_about_its_count_is_refused_by_counting(lying_zip, held, capsys, monkeypatch):
    def load(*args, **kwargs):
        raise AssertionError("the whole zip directory was loaded: the lie was believed")

    monkeypatch.setattr(importing.zipfile, "ZipFile", load)
    assert importplan.announced_members(lying_zip) == 10
    assert import_cli(lying_zip, held[0]) == 2
    assert_refused(capsys, held, str(lying_zip), "holds more than 50000 files and folders", "--max-files")


def test_counting_a_lying_zip_costs_memory_for_one_chunk_not_the_directory(lying_zip, held, capsys):
    tracemalloc.start()
    try:
        assert import_cli(lying_zip, held[0]) == 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MiB at the peak"  # the directory alone is ~6 MiB, its ZipInfos ~60
    assert_refused(capsys, held, "holds more than 50000 files and folders")


def test_a_member_named_twice_is_refused_naming_the_zip_and_the_member(tmp_path, held, make_split, capsys):
    archive = class_zip(make_split, tmp_path)
    with warnings.catch_warnings(), zipfile.ZipFile(archive, "a") as zf:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate it is asked to write
        zf.writestr("horses/horses-00.png", b"a second horses-00.png that would replace the first")
    assert import_cli(archive, held[0]) == 2
    assert_refused(capsys, held, str(archive), "'horses/horses-00.png' appears twice", "re-create the zip")


def test_a_folder_with_too_many_entries_is_refused_without_walking_it_all(tmp_path, held, make_split, capsys):
    source = make_split(tmp_path / "src", (20, 20))
    assert import_cli(source, held[0], "--max-files", "10") == 2
    assert_refused(capsys, held, str(source), "more than 10 files and folders", "--max-files")


def test_a_folder_over_the_byte_limit_is_refused_before_anything_is_written(tmp_path, held, make_split, capsys):
    source = make_split(tmp_path / "src", (2, 2))
    size = sum(p.stat().st_size for p in source.rglob("*.png"))
    assert import_cli(source, held[0], "--max-bytes", str(size - 1)) == 2
    assert_refused(
        capsys, held, str(source), f"({size} bytes), over the limit of ", f"({size - 1} bytes)", "--max-bytes"
    )
    assert import_cli(source, held[0], "--max-bytes", str(size)) == 0  # exactly at the limit is allowed


def test_too_little_free_disk_is_refused_before_anything_is_written(tmp_path, held, make_split, capsys, monkeypatch):
    archive = class_zip(make_split, tmp_path)
    monkeypatch.setattr(
        importing.shutil, "disk_usage", lambda path: SimpleNamespace(total=10**12, used=10**12 - 1000, free=1000)
    )
    assert import_cli(archive, held[0]) == 2
    assert_refused(capsys, held, str(held[0].parent), "1000 bytes free", "--data-dir")


# ---------------------------------------------------------------- members that are not images, or point elsewhere


def test_a_member_that_is_both_a_file_and_a_folder_is_one_error_line(tmp_path, held, make_split, capsys):
    archive = class_zip(make_split, tmp_path)
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("humans/x.png", b"a file")
        zf.writestr("humans/x.png/y.png", b"inside a file?")
    assert import_cli(archive, held[0]) == 2
    assert_refused(capsys, held, str(archive), "humans/x.png", "nothing was changed")


def test_non_image_members_are_skipped_and_reported_in_one_line(tmp_path, make_split, capsys):
    archive = class_zip(make_split, tmp_path)
    with zipfile.ZipFile(archive, "a") as zf:
        for name in ("horses/notes.txt", "humans/a.csv", "humans/b.csv", "humans/c.exe", "readme.md"):
            zf.writestr(name, b"not an image")
    assert import_cli(archive, tmp_path / "data") == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "skipped" in line]
    assert lines == [
        f"{archive}: skipped 5 entries: 5 not images (horses/notes.txt, humans/a.csv, humans/b.csv, ...) "
        "(left in place, not imported)"
    ]
    assert sorted(snapshot(tmp_path / "data")) == [
        "horses/horses-00.png",
        "horses/horses-01.png",
        "humans/humans-00.png",
        "humans/humans-01.png",
    ]


@pytest.mark.parametrize("suffix", sorted(importplan.IMAGE_SUFFIXES))
def test_every_suffix_an_import_keeps_is_one_the_loader_decodes(tmp_path, suffix):
    from PIL import Image

    from horses_humans.data.images import load_pixels

    fmt = Image.registered_extensions().get(suffix)
    assert fmt in Image.OPEN, f"Pillow cannot open {suffix} files here"
    if fmt not in Image.SAVE:
        pytest.skip(f"Pillow cannot write {suffix} to round-trip it")
    path = tmp_path / f"image{suffix}"
    Image.new("RGB", (8, 8), (200, 30, 30)).convert("1" if suffix == ".pbm" else "RGB").save(path)
    assert load_pixels(path, 4).shape == (4, 4, 3)


def test_symlink_member_is_skipped_never_followed(tmp_path, make_split, capsys):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"outside the archive")
    archive = class_zip(make_split, tmp_path)
    link = zipfile.ZipInfo("horses/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16  # as `zip --symlinks` stores one: the target is the content
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr(link, str(secret))
    assert import_cli(archive, tmp_path / "data") == 0
    assert f"{archive}: skipped 1 entry: 1 symlinks (horses/link.png)" in capsys.readouterr().err
    assert not (tmp_path / "data" / "horses" / "link.png").exists()
    assert not any(p.is_symlink() for p in (tmp_path / "data").rglob("*"))


@pytest.mark.parametrize(
    "member", ["../evil.png", "horses/../../evil.png", "/tmp/evil.png", "C:/evil.png", "..\\evil.png"]
)
def test_members_outside_the_archive_are_refused(tmp_path, held, make_split, member, capsys):
    archive = class_zip(make_split, tmp_path)
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr(zipfile.ZipInfo(member), b"outside")  # ZipInfo keeps the name as given
    assert zipfile.ZipFile(archive).namelist()[-1] == member
    assert import_cli(archive, held[0]) == 2
    assert_refused(capsys, held, repr(member), "points outside the archive; refused")
    assert not list(tmp_path.rglob("evil*")) and not list(tmp_path.parent.glob("evil*"))


# ---------------------------------------------------------------- folders: loops, broken links, FIFOs


def test_folder_with_loops_broken_links_and_a_fifo_imports_the_rest_and_says_what_it_skipped(tmp_path, make_dataset):
    source = make_dataset(tmp_path / "src")
    horses = source / TRAIN / "horses"
    os.symlink("..", horses / "loop")  # back up the tree: walking it never ends
    os.symlink("self.png", horses / "self.png")  # points at itself
    os.symlink(tmp_path / "gone.png", horses / "gone.png")  # dangling
    os.mkfifo(source / VALIDATION / "humans" / "pipe.png")  # opening it would block forever
    os.symlink(source / TRAIN / "humans" / "humans-00.png", horses / "linked.png")  # a good link: followed
    result = import_subprocess(source, tmp_path / "data")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    skipped = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert skipped == [
        f"{source}: skipped 4 entries: 2 broken links ({TRAIN}/horses/gone.png, {TRAIN}/horses/self.png); "
        f"1 symlink loops ({TRAIN}/horses/loop); 1 not regular files ({VALIDATION}/humans/pipe.png) "
        "(left in place, not imported)"
    ]
    got = snapshot(tmp_path / "data")
    assert got[f"{TRAIN}/horses/linked.png"] == (source / TRAIN / "humans" / "humans-00.png").read_bytes()
    assert len([name for name in got if name.startswith(f"{TRAIN}/horses/")]) == 4  # 3 images and the good link
    assert staging_left(tmp_path) == []


def test_a_fifo_named_as_the_source_is_one_error_line_not_a_hang(tmp_path, data_dir):
    before = snapshot(data_dir)
    fifo = tmp_path / "horse-or-human.zip"
    os.mkfifo(fifo)
    result = import_subprocess(fifo, data_dir)
    assert result.returncode == 2 and result.stdout == ""
    assert_one_line_error(result.stderr, str(fifo), "neither a folder nor a zip file")
    assert snapshot(data_dir) == before


# ---------------------------------------------------------------- killed imports

KILLABLE = """
import os, sys, time
from pathlib import Path
from horses_humans.data import importing

source, data_dir, marker, when = sys.argv[1:]
real_replace, real_write = os.replace, importing.write_entry

def wait_here(point):  # tell the test where we are, then wait for its kill -9
    if point == when:
        Path(marker).write_text(point)
        time.sleep(600)

def replace(src, dst):
    real_replace(src, dst)
    if Path(dst).name == "replaced":  # the old data was just moved aside, the new one not yet in
        wait_here("swap")

def write_entry(*args):
    written = real_write(*args)
    wait_here("write")  # one entry written, the others not
    return written

os.replace, importing.write_entry = replace, write_entry
importing.import_path(Path(source), Path(data_dir), log=lambda line: None)
"""


def kill_import_at(when: str, source: Path, data_dir: Path, tmp_path: Path) -> None:
    """Run an import in a child process and kill -9 it at `when` (write: mid-copy; swap: between the two renames)."""
    marker = tmp_path / "reached"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, str(source), str(data_dir), str(marker), when],
        env={**os.environ, "PYTHONPATH": SRC},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + DEADLINE
    try:
        while not marker.exists():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the import never reached the point to kill it at"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait(timeout=DEADLINE)


def test_an_import_killed_mid_copy_leaves_the_data_and_the_next_import_cleans_up(tmp_path, held, make_split, capsys):
    archive = class_zip(make_split, tmp_path)
    kill_import_at("write", archive, held[0], tmp_path)
    assert snapshot(held[0]) == held[1] and len(staging_left(held[0].parent)) == 1
    assert import_cli(archive, held[0]) == 0
    assert "removed, left by an import that was killed" in capsys.readouterr().err
    assert staging_left(held[0].parent) == [] and sorted(snapshot(held[0])) == sorted(snapshot(tmp_path / "src"))


def test_an_import_killed_while_it_replaced_the_data_gives_the_old_data_back(tmp_path, held, make_split, capsys):
    archive = class_zip(make_split, tmp_path)
    kill_import_at("swap", archive, held[0], tmp_path)
    assert not held[0].exists()  # the old data is aside, in the staging folder: the next import puts it back
    assert import_cli(archive, held[0], "--max-bytes", "10") == 2  # even one that is then refused
    assert "put back" in capsys.readouterr().err
    assert snapshot(held[0]) == held[1] and staging_left(held[0].parent) == []


# ---------------------------------------------------------------- the real data set


@pytest.mark.integration
def test_the_official_training_zip_imports_every_image_within_the_default_limits(tmp_path, capsys):
    source = Path(os.environ.get("HORSES_HUMANS_DATA") or Path(SRC).parents[1] / "shared" / "data") / TRAIN
    assert source.is_dir(), f"needs the real data set at {source.parent} (or HORSES_HUMANS_DATA)"
    archive = zip_folder(source, tmp_path / "horse-or-human.zip")  # laid out as the official download
    assert import_cli(archive, tmp_path / "data") == 0
    assert "skipped" not in capsys.readouterr().err
    imported = tmp_path / "data" / TRAIN

    def sizes(folder: Path) -> dict[str, int]:
        return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*.png")}

    assert sizes(imported) == sizes(source) and len(sizes(imported)) == 1027
    assert staging_left(tmp_path / "data") == []


# ---------------------------------------------------------------- where an import may write (issue 19, item 1)


def test_a_folder_of_sub_folders_no_import_made_is_never_replaced(tmp_path, make_split, capsys):
    home = tmp_path / "home"
    (home / "projects").mkdir(parents=True)
    (home / "projects" / "plan.png").write_bytes(b"a picture of the plan")
    (home / "thesis" / "chapters").mkdir(parents=True)
    (home / "thesis" / "chapters" / "one.txt").write_text("words")
    before = snapshot(home)
    assert import_cli(class_zip(make_split, tmp_path), home) == 2
    assert_one_line_error(capsys.readouterr().err, str(home), "projects", "thesis", "empty or new folder")
    assert snapshot(home) == before and staging_left(tmp_path) == []


@pytest.mark.parametrize("where", ["same", "inside the source", "source inside"])
def test_an_import_into_or_out_of_itself_is_refused(tmp_path, imported_data_dir, capsys, where):
    source = imported_data_dir
    data_dir = {
        "same": source,
        "inside the source": source / "imported-again",
        "source inside": source.parent,  # the source is the data set inside the folder it would replace
    }[where]
    if where == "source inside":
        (data_dir / MARKER).write_text("")  # an earlier import made this folder: still refused, it holds the source
    before = snapshot(source)
    assert import_cli(source, data_dir) == 2
    assert_one_line_error(capsys.readouterr().err, str(data_dir), str(source), "new, empty folder")
    assert snapshot(source) == before and not (source / "imported-again").exists()


def test_files_an_import_never_writes_are_never_replaced(tmp_path, imported_data_dir, make_split, capsys):
    notes = imported_data_dir / TRAIN / "horses" / "notes.txt"
    notes.write_text("where each photo came from")
    before = snapshot(imported_data_dir)
    assert import_cli(class_zip(make_split, tmp_path), imported_data_dir) == 2
    assert_one_line_error(capsys.readouterr().err, str(imported_data_dir), "notes.txt", "move them out")
    assert snapshot(imported_data_dir) == before


def test_an_import_marks_the_folder_it_made_and_a_second_import_replaces_it(tmp_path, make_split, capsys):
    data_dir = tmp_path / "data"
    assert import_cli(class_zip(make_split, tmp_path), data_dir) == 0
    assert (data_dir / MARKER).is_file()
    other = make_split(tmp_path / "other", (2, 2), classes=("cats", "dogs"))
    assert import_cli(other, data_dir) == 0
    assert sorted(p.name for p in data_dir.iterdir()) == sorted([MARKER, "cats", "dogs"])
