"""bench/bench_predict.py --corpus phone: the phone JPEGs it makes, and one end-to-end run on a tiny model that
measures every line and judges both targets."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ..centroid_runs import centroid_setup

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_phone_corpus_is_phone_size_jpegs_made_beside_the_folder(tmp_path, monkeypatch, make_image):
    monkeypatch.syspath_prepend(str(BENCH))
    from phone_corpus import make_phone_jpegs

    sources = [make_image(tmp_path / f"src{i}.png", size=(30, 20)) for i in range(3)]
    files = make_phone_jpegs(sources, 2, 5, tmp_path / "phone")
    assert [f.name for f in files] == [f"{i:06d}.jpg" for i in range(5)]
    assert sorted(tmp_path.joinpath("phone").iterdir()) == files  # the made files are not walked twice
    assert len({f.resolve() for f in files}) == 2 and files[0].resolve() == files[2].resolve()
    for path in files[:2]:
        with Image.open(path) as im:
            assert (im.format, im.size, im.mode) == ("JPEG", (4032, 3024), "RGB")
            pixels = np.asarray(im.reduce(8), np.float64)
        assert pixels.std() > 5  # the source's noisy content, upscaled: not a blank frame


@pytest.mark.slow  # a fresh interpreter that loads Keras
def test_phone_bench_measures_every_line_and_judges_both_targets(tmp_path):
    run, data = centroid_setup(tmp_path, 2)
    args = ["--corpus", "phone", "--files", "6", "--unique", "2", "--naive-files", "2", "--batch-size", "4"]
    done = subprocess.run(
        [sys.executable, str(BENCH / "bench_predict.py"), str(run), *args, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "6 phone JPEGs (4032x3024, 2 distinct)" in done.stdout
    rates = {m[1]: float(m[2]) for m in re.finditer(r"^\| ([^|(]+?) \(.*?\| (\d+) \|", done.stdout, re.M)}
    assert set(rates) == {"decode limit", "model alone", "naive loop", "predict"}
    assert all(rate > 0 for rate in rates.values()), done.stdout
    assert re.search(r"^target >= 6x the naive loop: (met|MISSED) \(\d+\.\d\dx\)$", done.stdout, re.M)
    assert re.search(r"^target within 1.5x of the decode limit: (met|MISSED) \(limit / predict", done.stdout, re.M)
