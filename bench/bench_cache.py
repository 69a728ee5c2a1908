"""What checking a pixel cache costs against the decode it saves: blake2b over the decoded array vs decoding it.

Decodes the first N training images of the data set the way a cache miss does (data.decode_all, threads), then
times arraycache.checksum over the resulting array (what every cache load verifies) and a whole verified load of
the saved cache (np.load + shape/dtype/checksum). Prints each time per image and the ratios. Feature caches save a
backbone pass, far dearer than a decode, so their ratio is smaller still.

    python bench/bench_cache.py --images 256 --size 150
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from timing import best_of  # noqa: E402

from horses_humans.config import resolve_data_dir
from horses_humans.core.arraycache import checksum, load_cached_array, save_cached_array
from horses_humans.data.layouts import find_dataset
from horses_humans.data.pixels import decode_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="data set folder (default: $HORSES_HUMANS_DATA, else the per-user cache)")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    files = find_dataset(resolve_data_dir(args.data_dir)).sides["train"]
    names = files.files[: args.images]
    decode = best_of(args.rounds, lambda: decode_all(files.root, names, args.size))
    x = decode_all(files.root, names, args.size)[0]
    hashing = best_of(args.rounds, lambda: checksum(x))
    with tempfile.TemporaryDirectory() as folder:
        save_cached_array(Path(folder), "bench", x, {})
        load = best_of(args.rounds, lambda: load_cached_array(Path(folder), "bench"))
    n, mb = len(names), x.nbytes / 1e6
    print(f"{n} images at {args.size} px ({mb:.1f} MB decoded), best of {args.rounds}:")
    print(f"  decode           {1000 * decode / n:8.3f} ms/image")
    print(f"  blake2b checksum {1000 * hashing / n:8.3f} ms/image  ({mb / hashing:.0f} MB/s)")
    print(f"  verified load    {1000 * load / n:8.3f} ms/image")
    print(f"hash / decode: {hashing / decode:.4f}   verified load / decode: {load / decode:.4f}")


if __name__ == "__main__":
    main()
