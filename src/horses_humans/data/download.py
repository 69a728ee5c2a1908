"""The official zips of the Horses or Humans set and `data download`: urllib and hashlib only (no Keras), sha256
checked before a zip is kept, written atomically."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..config import HorsesHumansError
from .importing import unpack_split
from .layouts import TRAIN, VALIDATION


@dataclass(frozen=True)
class OfficialZip:
    """One split's official zip: where it is, how big, and its sha256 (from TensorFlow Datasets' checksums)."""

    url: str
    size: int
    sha256: str


OFFICIAL_ZIPS = {
    TRAIN: OfficialZip(
        "https://storage.googleapis.com/download.tensorflow.org/data/horse-or-human.zip",
        149574867,
        "e2e6f70d3d549c5dd10a57165e55af253ee66ad750403f95c0fb76bb943633a9",
    ),
    VALIDATION: OfficialZip(
        "https://storage.googleapis.com/download.tensorflow.org/data/validation-horse-or-human.zip",
        11480187,
        "ae5fff2f4f5554791f05358108e2e05d9801b191f1896ea101402f0e7f6c32c0",
    ),
}


CHUNK = 1 << 20
TIMEOUT_S = 60  # per read: a stalled connection fails instead of hanging


def download(data_dir: Path, zips: dict[str, OfficialZip] | None = None, log=print) -> None:
    """Fetch each split's official zip (verified by sha256, kept in data_dir/downloads) and unpack it under data_dir."""
    for split, src in (zips or OFFICIAL_ZIPS).items():
        if (data_dir / split).is_dir():
            log(f"{split}: already present in {data_dir}")
            continue
        archive = data_dir / "downloads" / f"{split}.zip"
        if not (archive.is_file() and file_sha256(archive) == src.sha256):  # a zip fetched before is not fetched again
            log(f"{split}: downloading {src.url} ({src.size / 1e6:.1f} MB)")
            fetch_verified(src, archive, split)
        unpack_split(archive, data_dir / split)


def fetch_verified(src: OfficialZip, dest: Path, split: str) -> None:
    """Stream src.url into a temporary file beside dest, hashing as it goes; renamed to dest only when its sha256 is
    the one expected, so dest is whole or absent."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f"{dest.name}.part-{os.getpid()}")
    try:
        digest = stream_to(src.url, part)
    except (urllib.error.URLError, OSError, ValueError) as exc:  # URLError: offline, refused, 404; ValueError: bad URL
        part.unlink(missing_ok=True)
        raise HorsesHumansError(
            f"{split}: download of {src.url} failed ({reason_of(exc)}). Offline? Copy the data set here with "
            "`horses-humans data import PATH`."
        ) from None
    if digest != src.sha256:
        part.unlink()
        raise HorsesHumansError(
            f"{split}: download of {src.url} has sha256 {digest}, not {src.sha256}: the file is damaged or was "
            "changed; try again later, or copy the data set here with `horses-humans data import PATH`."
        )
    os.replace(part, dest)


def stream_to(url: str, path: Path) -> str:
    """Write what url serves into path, in chunks; returns its sha256 (hex)."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(path, "wb") as out:
        while chunk := response.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def reason_of(exc: Exception) -> str:
    """Why a download failed, in a few words (an HTTP status, the network's reason, or the OS error)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return getattr(exc, "strerror", None) or str(exc)
