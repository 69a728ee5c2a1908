"""Peak extra disk use of `data import` of a zip: the training split zipped (as the official download is), imported
into an empty folder while a thread samples the disk blocks held under the import's parent folder.

    python bench/bench_import.py --source /work/shared/data/horse-or-human

Prints the zip's size, the imported data's size and the peak held during the import (both in the import's folder,
so the zip itself is not counted); the extra is the peak minus the data's final size. To measure another version,
point PYTHONPATH at its src/ (e.g. `git archive COMMIT src | tar -x -C /tmp/old`, then PYTHONPATH=/tmp/old/src).
"""

import argparse
import os
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from horses_humans.data.importing import import_path


def blocks(folder: Path) -> int:
    """Bytes of disk blocks held by every file under folder (missing files, mid-rename, count as 0)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def zip_split(source: Path, archive: Path) -> None:
    """Zip source (a split's class folders) as horse-or-human.zip is laid out: class folders at the top."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for path in sorted(source.rglob("*")):
            zf.write(path, path.relative_to(source).as_posix())


def peak_during(folder: Path, work, interval: float = 0.02) -> int:
    """Run work() while sampling blocks(folder); the largest sample."""
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], blocks(folder))
            time.sleep(interval)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        work()
    finally:
        done.set()
        thread.join()
    return max(peak[0], blocks(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/work/shared/data/horse-or-human"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "horse-or-human.zip"
        zip_split(args.source, archive)
        home = Path(tmp) / "home"  # holds the data folder and the import's staging folders, not the zip
        home.mkdir()
        peak = peak_during(home, lambda: import_path(archive, home / "data", log=lambda _: None))
        final = blocks(home)
        mib = 2**20
        print(
            f"zip {archive.stat().st_size / mib:.1f} MiB; imported data {final / mib:.1f} MiB; "
            f"peak during import {peak / mib:.1f} MiB; extra {(peak - final) / mib:.1f} MiB "
            f"({peak / final:.2f}x the data)"
        )


if __name__ == "__main__":
    main()
