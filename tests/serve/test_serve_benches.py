"""bench/profile_serve.py and bench/bench_serve.py --runtimes on a tiny run: the spans wrap FastAPI's and Starlette's
own functions by name, so a release that renames one shows up here, not as an empty profile."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..centroid_runs import write_centroid_run
from ..exported_runs import exported_centroid_run

BENCH = Path(__file__).resolve().parents[2] / "bench"
pytestmark = pytest.mark.slow  # servers in fresh interpreters


def bench(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_profile_serve_times_every_stage_of_every_request(tmp_path):
    run, data = exported_centroid_run(tmp_path)
    out = tmp_path / "profile.json"
    args = ["--concurrency", "1,4", "--requests", "24", "--seconds", "20", "--data-dir", str(data), "--json", str(out)]
    stdout = bench("profile_serve.py", str(run), *args)
    one, four = json.loads(out.read_text())["1"], json.loads(out.read_text())["4"]
    for report in (one, four):
        assert report["client"]["requests"] == 24 and report["batch_images"] == 24  # one valid image per request
        for span in ("app", "form", "endpoint", "decode+hop", "decode", "worker", "serialize"):
            assert report["counts"][span] == 24, span
        ms = report["mean_ms"]
        assert ms["app"] >= ms["endpoint"] >= ms["worker"] and ms["decode+hop"] >= ms["decode"] > 0
        # /proc counts CPU in 10 ms ticks: 24 tiny decodes may not fill one, so the threads' sum is what must show
        cpu = report["cpu_seconds"]
        assert cpu["event loop"] >= 0 and cpu["decode"] >= 0 and cpu["event loop"] + cpu["decode"] > 0
    assert one["counts"]["model"] == 24  # one connection: every request is its own batch
    assert re.search(r"^  total +\d+\.\d\d  -> at most \d+ requests/s on \d+ cores$", stdout, re.M)


def test_bench_serve_compares_runtimes_side_by_side(tmp_path):
    run, data = exported_centroid_run(tmp_path)
    args = ["--runtimes", "keras,auto", "--concurrency", "2", "--requests", "30", "--seconds", "10", "--rounds", "2"]
    stdout = bench("bench_serve.py", str(run), *args, "--data-dir", str(data))
    assert len(re.findall(r"^  round [12] (keras|auto) .* server CPU \d+\.\d\d ms/request$", stdout, re.M)) == 4
    rows = re.findall(
        r"^\| (keras|auto) \| (\d+) \| \d+-\d+ \| \d+ \| (\d+\.\d\d) \| 0 \| (\d+\.\d\d)x \|$", stdout, re.M
    )
    assert [r[0] for r in rows] == ["keras", "auto"] and rows[0][3] == "1.00"
    assert all(float(cpu) > 0 for _, _, cpu, _ in rows)
    assert re.search(
        r"^target \(auto >= 2x keras's requests/s, p99 < 100 ms\): (met|NOT met) \(\d+\.\d\dx", stdout, re.M
    )


def test_bench_early_answers_every_client_still_sending_reads_its_answer(tmp_path):
    """Each refusal sent before the body (401, 400, 413 by Content-Length) reaches every client still sending 3 MB
    (before lingering close: none of the raw clients, a reset each)."""
    stdout = bench("bench_early_answers.py", str(write_centroid_run(tmp_path, 2)), "--tries", "3")
    rows = re.findall(r"^(\d{3}) .* (raw socket|urllib): (\d) of 3 read the whole answer$", stdout, re.M)
    assert [(status, client) for status, client, _ in rows] == [
        ("401", "raw socket"),
        ("400", "raw socket"),
        ("413", "raw socket"),
        ("401", "urllib"),
    ], stdout
    assert all(whole == "3" for _, _, whole in rows), stdout
