"""The data package: finding class folders, decoding splits through the pixel cache, download and import."""

import functools
import hashlib
import os
import re
import shutil
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from horses_humans.config import HorsesHumansError
from horses_humans.data import download, importing, layouts, pixels
from horses_humans.data.download import OfficialZip
from horses_humans.data.images import load_pixels
from horses_humans.data.importing import MARKER
from horses_humans.data.layouts import SPLITS, TRAIN, VALIDATION

from ..synthetic import zip_folder


def split_files(split_dir: Path) -> list[str]:
    """Files under a split folder (not an import's marker), relative, sorted."""
    return sorted(p.relative_to(split_dir).as_posix() for p in split_dir.rglob("*") if p.is_file() and p.name != MARKER)


def leftovers(folder: Path) -> list[str]:
    """Temporary unpack folders (".<split>-xxxx") that an import or download must not leave behind."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != MARKER] if folder.exists() else []


class Recorder:
    """Callable that records what it is called with (stands in for print / warn / log)."""

    def __init__(self):
        self.calls = []

    def __call__(self, message):
        self.calls.append(message)


# ---------------------------------------------------------------- finding files


def test_class_names_are_sorted_sub_folders_without_hidden_ones(tmp_path):
    for name in ["zebras", "apples", "mangos", ".hidden", "__MACOSX"]:
        (tmp_path / name).mkdir()
    (tmp_path / "README.txt").write_text("not a class")
    assert layouts.class_names(tmp_path) == ["apples", "mangos", "zebras"]


def test_list_files_labels_follow_sorted_class_order(tmp_path, make_split):
    split_dir = make_split(tmp_path / "split", counts=(2, 3), classes=("humans", "horses"))
    (split_dir / "horses" / ".DS_Store").write_bytes(b"junk")
    (split_dir / "horses" / ".thumbnails").mkdir()
    (split_dir / "horses" / ".thumbnails" / "t.png").write_bytes(b"junk")
    (split_dir / "humans" / "nested").mkdir()
    (split_dir / "humans" / "nested" / "deep.png").write_bytes((split_dir / "humans" / "humans-00.png").read_bytes())
    names, files, labels = layouts.list_files(split_dir)
    assert names == ["horses", "humans"]
    assert files == [
        "horses/horses-00.png",
        "horses/horses-01.png",
        "horses/horses-02.png",
        "humans/humans-00.png",
        "humans/humans-01.png",
        "humans/nested/deep.png",
    ]
    assert labels == [0, 0, 0, 1, 1, 1]


def test_list_files_works_when_the_data_set_lives_under_a_hidden_folder(tmp_path, make_split):
    # the default data folder is ~/.cache/horses-humans/data: a hidden *ancestor* must not hide the files
    split_dir = make_split(tmp_path / ".cache" / "horses-humans" / "data" / TRAIN, counts=(1, 2))
    names, files, labels = layouts.list_files(split_dir)
    assert files == ["horses/horses-00.png", "humans/humans-00.png", "humans/humans-01.png"]
    assert labels == [0, 1, 1]


def test_missing_split_names_the_folder_and_the_fix(tmp_path):
    with pytest.raises(HorsesHumansError, match=re.escape(str(tmp_path / TRAIN)) + ".*not found.*data download"):
        layouts.list_files(tmp_path / TRAIN)


def test_empty_class_folder_is_an_error_naming_it(tmp_path, make_split):
    split_dir = make_split(tmp_path / TRAIN, counts=(2, 0))
    (split_dir / "humans").mkdir()
    (split_dir / "humans" / ".DS_Store").write_bytes(b"hidden files do not count")
    with pytest.raises(HorsesHumansError, match=re.escape(str(split_dir / "humans")) + ": class folder is empty"):
        layouts.list_files(split_dir)


@pytest.mark.parametrize("classes", [(), ("horses",)])
def test_fewer_than_two_classes_is_an_error(tmp_path, classes):
    split_dir = tmp_path / TRAIN
    split_dir.mkdir()
    for name in classes:
        (split_dir / name).mkdir()
    with pytest.raises(HorsesHumansError, match=re.escape(str(split_dir)) + ": needs at least two class folders"):
        layouts.list_files(split_dir)


# ---------------------------------------------------------------- load_split and the pixel cache


@pytest.fixture
def decodes(monkeypatch):
    """Counts calls to pixels.decode_all (a cache miss decodes; a cache hit does not)."""
    calls = []
    real = pixels.decode_all

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(pixels, "decode_all", counting)
    return calls


def test_load_split_returns_pixels_labels_and_files(data_dir):
    split = pixels.load_split(data_dir, TRAIN, 12, warn=Recorder())
    assert split.name == TRAIN and len(split) == 6
    assert split.x.shape == (6, 12, 12, 3) and split.x.dtype == np.uint8
    assert split.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert split.class_names == ["horses", "humans"]
    assert split.files[0] == "horses/horses-00.png" and split.files[-1] == "humans/humans-02.png"
    assert split.skipped == []
    for i in (0, 5):  # rows line up with files
        np.testing.assert_array_equal(split.x[i], load_pixels(data_dir / TRAIN / split.files[i], 12))


def test_corrupt_file_is_skipped_with_a_warning_naming_it(data_dir):
    bad = data_dir / TRAIN / "humans" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    for attempt in ("decoded", "cached"):
        warn = Recorder()
        split = pixels.load_split(data_dir, TRAIN, 8, warn=warn)
        assert len(split) == 6, attempt
        assert "humans/broken.png" not in split.files
        assert [s["file"] for s in split.skipped] == [str(bad)]
        assert len(warn.calls) == 1 and str(bad) in warn.calls[0] and warn.calls[0].startswith("warning: skipped")


def test_second_load_reads_the_cache(data_dir, monkeypatch, isolated_cache):
    first = pixels.load_split(data_dir, TRAIN, 8)
    assert list((isolated_cache / "pixels").glob(f"{TRAIN}-8-*.npy")), "cache not under $HORSES_HUMANS_CACHE/pixels"

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although nothing changed")

    monkeypatch.setattr(pixels, "decode_all", no_decoding)
    second = pixels.load_split(data_dir, TRAIN, 8)
    np.testing.assert_array_equal(first.x, second.x)
    assert first.y.tolist() == second.y.tolist() and first.files == second.files


def test_explicit_cache_dir_is_used(data_dir, tmp_path, isolated_cache):
    pixels.load_split(data_dir, VALIDATION, 8, cache_dir=tmp_path / "elsewhere")
    assert len(list((tmp_path / "elsewhere" / "pixels").glob(f"{VALIDATION}-8-*"))) == 2  # .npy + .json
    assert not (isolated_cache / "pixels").exists()


def test_cache_is_keyed_by_image_size(data_dir, decodes):
    assert pixels.load_split(data_dir, TRAIN, 8).x.shape[1:] == (8, 8, 3)
    assert pixels.load_split(data_dir, TRAIN, 12).x.shape[1:] == (12, 12, 3)
    assert pixels.load_split(data_dir, TRAIN, 8).x.shape[1:] == (8, 8, 3)
    assert len(decodes) == 2


def test_adding_a_file_invalidates_the_cache(data_dir, make_image, decodes):
    pixels.load_split(data_dir, TRAIN, 8)
    make_image(data_dir / TRAIN / "horses" / "new.png")
    split = pixels.load_split(data_dir, TRAIN, 8)
    assert len(decodes) == 2
    assert len(split) == 7 and "horses/new.png" in split.files


def test_removing_a_file_invalidates_the_cache(data_dir, decodes):
    pixels.load_split(data_dir, TRAIN, 8)
    (data_dir / TRAIN / "humans" / "humans-01.png").unlink()
    split = pixels.load_split(data_dir, TRAIN, 8)
    assert len(decodes) == 2
    assert len(split) == 5 and "humans/humans-01.png" not in split.files


def test_replacing_a_file_with_another_size_invalidates_the_cache(data_dir, make_image, decodes):
    path = data_dir / TRAIN / "horses" / "horses-00.png"
    pixels.load_split(data_dir, TRAIN, 8)
    make_image(path, size=(30, 20))
    split = pixels.load_split(data_dir, TRAIN, 8)
    assert len(decodes) == 2
    np.testing.assert_array_equal(split.x[0], load_pixels(path, 8))


def test_a_new_mtime_invalidates_the_cache(data_dir, decodes):
    # same name and size, later mtime: what saving an edited file in place looks like
    path = data_dir / TRAIN / "horses" / "horses-00.png"
    pixels.load_split(data_dir, TRAIN, 8)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    pixels.load_split(data_dir, TRAIN, 8)
    assert len(decodes) == 2


def test_class_whose_only_file_is_corrupt_is_a_clear_error(data_dir, make_split):
    split_dir = data_dir / VALIDATION
    shutil.rmtree(split_dir / "horses")
    (split_dir / "horses").mkdir()
    (split_dir / "horses" / "only.png").write_text("this is text")
    warn = Recorder()
    for _ in range(2):  # decoded, then cached: the same error both times
        with pytest.raises(HorsesHumansError, match=re.escape(str(split_dir / "horses")) + ": no readable image"):
            pixels.load_split(data_dir, VALIDATION, 8, warn=warn)
    assert any("only.png" in w for w in warn.calls)


def test_load_dataset_returns_both_splits(data_dir):
    train, val = pixels.load_dataset(data_dir, 8)
    assert (train.name, len(train), val.name, len(val)) == (TRAIN, 6, VALIDATION, 4)


def test_load_dataset_refuses_different_class_names(data_dir, make_split):
    shutil.rmtree(data_dir / VALIDATION)
    make_split(data_dir / VALIDATION, counts=(1, 1), classes=("cats", "dogs"))
    with pytest.raises(HorsesHumansError, match="class folders differ"):
        pixels.load_dataset(data_dir, 8)


# ---------------------------------------------------------------- download


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_server(tmp_path, monkeypatch):
    """(folder, base URL) of an HTTP server on 127.0.0.1 serving that folder."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def served_zips(http_server, tmp_path, make_split):
    """{split: OfficialZip} for two small zips of class folders served over HTTP."""
    root, url = http_server
    sources = {}
    for split, counts in ((TRAIN, (2, 2)), (VALIDATION, (1, 1))):
        archive = zip_folder(make_split(tmp_path / "src" / split, counts), root / f"{split}.zip")
        blob = archive.read_bytes()
        sources[split] = OfficialZip(f"{url}/{split}.zip", len(blob), hashlib.sha256(blob).hexdigest())
    return sources


def test_download_unpacks_both_splits_in_the_official_layout(tmp_path, served_zips):
    data_dir = tmp_path / "data"
    log = Recorder()
    download.download(data_dir, zips=served_zips, log=log)
    assert split_files(data_dir / TRAIN) == [
        "horses/horses-00.png",
        "horses/horses-01.png",
        "humans/humans-00.png",
        "humans/humans-01.png",
    ]
    assert split_files(data_dir / VALIDATION) == ["horses/horses-00.png", "humans/humans-00.png"]
    assert layouts.list_files(data_dir / TRAIN)[2] == [0, 0, 1, 1]
    assert leftovers(data_dir) == []
    assert any(served_zips[TRAIN].url in m for m in log.calls)

    log = Recorder()
    download.download(data_dir, zips=served_zips, log=log)  # second time: nothing to do
    assert [m for m in log.calls if "already present" in m] and not [m for m in log.calls if "downloading" in m]


def test_download_with_a_wrong_checksum_fails_and_unpacks_nothing(tmp_path, served_zips):
    data_dir = tmp_path / "data"
    good = served_zips[TRAIN]
    bad = OfficialZip(good.url, good.size, "0" * 64)
    with pytest.raises(HorsesHumansError, match=re.escape(good.url)):
        download.download(data_dir, zips={TRAIN: bad}, log=Recorder())
    assert not (data_dir / TRAIN).exists()
    assert leftovers(data_dir) == []


def test_download_from_an_unreachable_url_is_a_clear_error(tmp_path, http_server):
    _, url = http_server
    with pytest.raises(HorsesHumansError, match="download of .*missing.zip failed.*data import"):
        download.download(
            tmp_path / "data", zips={TRAIN: OfficialZip(f"{url}/missing.zip", 1, "0" * 64)}, log=Recorder()
        )
    assert not (tmp_path / "data" / TRAIN).exists()


def test_download_from_a_closed_port_is_one_offline_error_and_leaves_no_partial_file(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on: the connection is refused, as offline
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data_dir = tmp_path / "data"
    with pytest.raises(HorsesHumansError, match=r"download of .*failed \(.*refused.*\)\. Offline\?"):
        download.download(
            data_dir, zips={TRAIN: OfficialZip(f"http://127.0.0.1:{port}/t.zip", 1, "0" * 64)}, log=Recorder()
        )
    assert list((data_dir / "downloads").iterdir()) == []


def test_a_zip_with_a_wrong_checksum_is_never_kept(tmp_path, served_zips):
    good = served_zips[TRAIN]
    with pytest.raises(HorsesHumansError, match="has sha256 .*, not 0{64}"):
        download.download(tmp_path / "data", zips={TRAIN: OfficialZip(good.url, good.size, "0" * 64)}, log=Recorder())
    assert list((tmp_path / "data" / "downloads").iterdir()) == []  # neither the zip nor a partial file


def test_a_verified_zip_is_reused_without_the_network(tmp_path, served_zips, http_server):
    data_dir = tmp_path / "data"
    download.download(data_dir, zips=served_zips, log=Recorder())
    shutil.rmtree(data_dir / TRAIN)
    shutil.rmtree(http_server[0])  # the server has nothing left to serve
    log = Recorder()
    download.download(data_dir, zips=served_zips, log=log)
    assert split_files(data_dir / TRAIN) and not [m for m in log.calls if "downloading" in m]


def test_download_reads_a_file_url_and_never_imports_keras(tmp_path, make_split):
    import subprocess
    import sys

    archive = zip_folder(make_split(tmp_path / "src", (1, 1)), tmp_path / "t.zip")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    code = (
        "import sys; from pathlib import Path; from horses_humans.data.download import OfficialZip, download; "
        f"download(Path({str(tmp_path / 'data')!r}), {{'{TRAIN}': OfficialZip({archive.as_uri()!r}, 1, {digest!r})}}); "
        "print('keras' in sys.modules)"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": src}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False"
    assert split_files(tmp_path / "data" / TRAIN) == ["horses/horses-00.png", "humans/humans-00.png"]


# ---------------------------------------------------------------- import


def test_import_official_layout_folder(tmp_path, make_dataset):
    source = make_dataset(tmp_path / "download", train=(2, 1), validation=(1, 1))
    (source / TRAIN / "horses" / ".DS_Store").write_bytes(b"junk")
    data_dir = tmp_path / "data"
    assert importing.import_path(source, data_dir, log=Recorder()) == list(SPLITS)
    assert split_files(data_dir / TRAIN) == ["horses/horses-00.png", "horses/horses-01.png", "humans/humans-00.png"]
    assert split_files(data_dir / VALIDATION) == ["horses/horses-00.png", "humans/humans-00.png"]
    assert leftovers(data_dir) == []


@pytest.mark.parametrize("prefix", ["", "something/"])  # class folders at the root, or one level down
@pytest.mark.parametrize(
    "zip_name, split", [("horse-or-human.zip", TRAIN), ("Validation-Horse-or-Human.zip", VALIDATION)]
)
def test_import_official_split_zip_is_known_by_its_name(tmp_path, make_split, prefix, zip_name, split):
    archive = zip_folder(make_split(tmp_path / "src", (1, 2)), tmp_path / zip_name, prefix)
    data_dir = tmp_path / "data"
    assert importing.import_path(archive, data_dir, log=Recorder()) == [split]
    assert split_files(data_dir / split) == ["horses/horses-00.png", "humans/humans-00.png", "humans/humans-01.png"]
    assert not (data_dir / [s for s in SPLITS if s != split][0]).exists()
    assert leftovers(data_dir) == []


def test_import_ignores_macos_resource_forks(tmp_path, make_split):
    archive = zip_folder(make_split(tmp_path / "src", (2, 2)), tmp_path / "set.zip", "set/")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("__MACOSX/set/horses/._horses-00.png", b"resource fork")
    assert importing.import_path(archive, tmp_path / "data", log=Recorder()) == ["horses", "humans"]
    assert split_files(tmp_path / "data") == [
        "horses/horses-00.png",
        "horses/horses-01.png",
        "humans/humans-00.png",
        "humans/humans-01.png",
    ]


def test_import_single_split_folder_with_explicit_split(tmp_path, make_split):
    source = make_split(tmp_path / "validation-pictures", (1, 1))
    assert importing.import_path(source, tmp_path / "data", split=TRAIN, log=Recorder()) == [TRAIN]
    assert split_files(tmp_path / "data" / TRAIN) == ["horses/horses-00.png", "humans/humans-00.png"]


def test_import_replaces_an_existing_split(tmp_path, imported_data_dir, make_split):
    data_dir = imported_data_dir
    source = make_split(tmp_path / "new", (1, 1))
    importing.import_path(source, data_dir, split=VALIDATION, log=Recorder())
    assert split_files(data_dir / VALIDATION) == ["horses/horses-00.png", "humans/humans-00.png"]
    assert len(split_files(data_dir / TRAIN)) == 6  # the other split is untouched


def test_import_unknown_split_is_an_error(tmp_path, make_split):
    source = make_split(tmp_path / "src", (1, 1))
    with pytest.raises(HorsesHumansError, match="--split 'test'"):
        importing.import_path(source, tmp_path / "data", split="test", log=Recorder())


def test_import_missing_path_is_an_error(tmp_path):
    with pytest.raises(HorsesHumansError, match=re.escape(str(tmp_path / "nope.zip")) + ": no such file"):
        importing.import_path(tmp_path / "nope.zip", tmp_path / "data", log=Recorder())


def test_import_non_zip_file_is_an_error(tmp_path):
    path = tmp_path / "horse-or-human.zip"
    path.write_text("not a zip at all")
    with pytest.raises(HorsesHumansError, match=re.escape(str(path)) + ": neither a folder nor a zip"):
        importing.import_path(path, tmp_path / "data", log=Recorder())
    assert not (tmp_path / "data" / TRAIN).exists()


def test_import_zip_with_one_class_is_an_error_and_leaves_nothing(tmp_path, make_split):
    archive = zip_folder(make_split(tmp_path / "src", (2,), classes=("horses",)), tmp_path / "one.zip")
    data_dir = tmp_path / "data"
    with pytest.raises(HorsesHumansError, match="needs at least two class folders"):
        importing.import_path(archive, data_dir, log=Recorder())
    assert not (data_dir / TRAIN).exists() and leftovers(data_dir) == []


def test_import_refuses_zip_slip(tmp_path, make_split):
    archive = zip_folder(make_split(tmp_path / "src", (1, 1)), tmp_path / "evil.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("../evil.png", b"outside")
        zf.writestr("../../evil2.png", b"outside")
    data_dir = tmp_path / "data"
    with pytest.raises(HorsesHumansError, match=r"member '\.\./evil\.png' points outside the archive; refused"):
        importing.import_path(archive, data_dir, log=Recorder())
    assert not list(tmp_path.rglob("evil*.png"))
    assert not (data_dir / TRAIN).exists() and leftovers(data_dir) == []


@pytest.mark.parametrize("prefix", ["", "download/"])
def test_import_zip_of_both_splits_as_one_split_is_refused_not_mixed_into_one(tmp_path, make_dataset, prefix):
    # importing it as one split would train "horse-or-human vs validation-horse-or-human"
    archive = zip_folder(make_dataset(tmp_path / "src", (1, 1), (1, 1)), tmp_path / "all.zip", prefix)
    data_dir = tmp_path / "data"
    with pytest.raises(HorsesHumansError, match="holds the split folders.*import the folder"):
        importing.import_path(archive, data_dir, split=TRAIN, log=Recorder())
    assert not (data_dir / TRAIN).exists() and leftovers(data_dir) == []


@pytest.mark.parametrize("prefix", ["", "download/"])
def test_import_zip_of_both_splits_imports_the_official_layout(tmp_path, make_dataset, prefix):
    archive = zip_folder(make_dataset(tmp_path / "src", (1, 2), (1, 1)), tmp_path / "all.zip", prefix)
    data_dir = tmp_path / "data"
    assert importing.import_path(archive, data_dir, log=Recorder()) == list(SPLITS)
    assert split_files(data_dir / TRAIN) == ["horses/horses-00.png", "humans/humans-00.png", "humans/humans-01.png"]
    assert split_files(data_dir / VALIDATION) == ["horses/horses-00.png", "humans/humans-00.png"]
    assert leftovers(data_dir) == [] and leftovers(tmp_path) == []
