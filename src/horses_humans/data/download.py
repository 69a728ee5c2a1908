"""The official zips of the Horses or Humans set and `data download`."""

from __future__ import annotations

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


# ---------------------------------------------------------------- download / import


def download(data_dir: Path, zips: dict[str, OfficialZip] | None = None, log=print) -> None:
    """Fetch each split's official zip (verified by sha256, cached by Keras) and unpack it under data_dir."""
    import keras  # heavy; only needed here

    for split, src in (zips or OFFICIAL_ZIPS).items():
        if (data_dir / split).is_dir():
            log(f"{split}: already present in {data_dir}")
            continue
        log(f"{split}: downloading {src.url} ({src.size / 1e6:.1f} MB)")
        try:
            archive = keras.utils.get_file(
                fname=f"{split}.zip",
                origin=src.url,
                file_hash=src.sha256,
                hash_algorithm="sha256",
                cache_dir=str(data_dir),
                cache_subdir="downloads",
            )
        except Exception as exc:  # get_file raises bare Exception/ValueError with the URL in it
            raise HorsesHumansError(
                f"{split}: download of {src.url} failed ({exc}). Offline? Copy the data set here with "
                f"`horses-humans data import PATH`."
            ) from None
        unpack_split(Path(archive), data_dir / split)
