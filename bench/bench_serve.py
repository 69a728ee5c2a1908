"""Load test of `horses-humans serve`: requests per second, p50/p99 latency and 5xx count, against 127.0.0.1 only.

Starts the server itself (a subprocess on a free local port), waits for /healthz, then, for each number of
connections (8, 32 and 64 by default), runs two bounded phases with the same client:
  - reference: GET /healthz (the HTTP stack alone: no upload, no decoding, no model);
  - predict:   POST /v1/predict, one image per request, cycling through valid photos and hostile files
               (corrupt, truncated, empty, text, SVG, ZIP, bomb header, over-limit header) and awkward valid ones
               (CMYK, 16-bit, animated, EXIF-rotated, ...);
and, after the server has stopped, a second reference in this process:
  - direct:    the same files through images.load_pixels + Predictor.predict_proba, one image per call, no HTTP.
Each phase stops after --requests requests or --seconds seconds, whichever comes first. The client is a
minimal keep-alive HTTP/1.1 client on asyncio sockets (request bytes built once), so it takes little of the
CPU it shares with the server; it reconnects when the server answers `Connection: close` (a 503 when busy).
The server's resident memory is sampled every 20 ms: each row gives its peak during the predict phase.
Targets on the 2-core CPU, baseline model, valid photos (--hostile 0): >= 200 requests/s and p99 under
150 ms at 32 connections, no 5xx but the 503s of a full queue (each with Retry-After, counted apart).

    python bench/bench_serve.py RUN [--requests 3000] [--seconds 20] [--concurrency 8,32,64] [--hostile 0.3]

--runtimes keras,auto instead serves the run once per runtime (all servers up at once) and takes predict phases in
turns at the first --concurrency for --rounds rounds: medians and spread of requests/s, p99 and the server's CPU per
request, and the target of issue 22 (the last runtime >= 2x the first's requests/s with p99 < 100 ms):

    python bench/bench_serve.py RUN --runtimes keras,auto --concurrency 16 --seconds 6 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np

from horses_humans.data.samples import awkward_files, encode, hostile_files, photo  # the same files the tests send

BOUNDARY = "benchboundary7d1f"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: str, port: int, runtime: str | None = None) -> subprocess.Popen:
    """`horses-humans serve RUN [--runtime R]` as a subprocess; returns once /healthz answers."""
    env = dict(os.environ)  # the CLI sets up the backend itself (horses_humans.core.backend)
    if runtime:
        env["HORSES_HUMANS_SERVE_RUNTIME"] = runtime
    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full pipe would stall the server
    server = subprocess.Popen(
        [sys.executable, "-m", "horses_humans.cli.main", "serve", run, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stderr=log,
        text=True,
    )
    return await_health(server, port, log)


def await_health(server: subprocess.Popen, port: int, log) -> subprocess.Popen:
    """The server once its /healthz answers (within 120 s); its stderr log, if it exits first, in the error."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise SystemExit(f"the server exited with status {server.returncode}:\n{log.read()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not answer /healthz within 120 s")


def get_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def upload_request(name: str, data: bytes) -> bytes:
    """POST /v1/predict with one file, as raw HTTP/1.1 bytes."""
    body = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def valid_photos(data_dir: Path | None, count: int = 40) -> list[tuple[str, bytes]]:
    """Real validation photos if the data set is there (300x300 PNGs), else noisy 300x300 PNGs."""
    folder = data_dir / "validation-horse-or-human" if data_dir else None
    if folder and folder.is_dir():
        files = sorted(folder.rglob("*.png"))[:: max(1, len(sorted(folder.rglob("*.png"))) // count)][:count]
        return [(f.name, f.read_bytes()) for f in files]
    return [(f"noise{i}.png", encode(photo((300, 300), seed=i), "PNG")) for i in range(count)]


def request_mix(
    data_dir: Path | None, hostile_share: float, total: int = 1000, seed: int = 0
) -> list[tuple[str, bytes, bytes]]:
    """(kind, request bytes, file bytes), shuffled: hostile_share of them hostile files, the rest valid photos and
    awkward images.
    """
    rng = random.Random(seed)
    good = valid_photos(data_dir) + list(awkward_files().items())
    bad = [(n, d) for n, (d, _) in hostile_files().items()]
    picks = [
        ("hostile", rng.choice(bad)) if rng.random() < hostile_share else ("valid", rng.choice(good))
        for _ in range(total)
    ]
    return [(kind, upload_request(name, data), data) for kind, (name, data) in picks]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response (Content-Length framed) -> (status code, whether the server closes the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
    await reader.readexactly(length)
    closes = any(line.lower().replace(" ", "") == "connection:close" for line in lines)
    return int(lines[0].split()[1]), closes


async def client(
    port: int, requests: list[tuple[str, bytes]], next_index, stop_at: float, record, retry_after: float = 1.0
) -> None:
    """One keep-alive connection sending requests until the shared budget or the deadline runs out; after a 503 it
    waits retry_after seconds (0: retries at once, a hostile client)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at and (i := next_index()) is not None:
            kind, raw = requests[i % len(requests)][:2]
            start = time.perf_counter()
            writer.write(raw)
            try:
                status, closes = await read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                status, closes = 0, True  # the server dropped the connection: counted, then reconnect
            record(kind, status, time.perf_counter() - start)
            if status == 503 and retry_after:
                await asyncio.sleep(retry_after)  # as a polite client does (the header says 1 s)
            if closes:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


async def phase(
    port: int, requests: list[tuple[str, bytes]], count: int, seconds: float, concurrency: int, retry_after: float = 1.0
) -> dict:
    """Send up to `count` requests in up to `seconds` over `concurrency` connections -> figures."""
    counter = iter(range(count))
    latencies, kinds, codes, statuses = [], [], [], Counter()

    def record(kind, status, seconds_taken):
        latencies.append(seconds_taken)
        kinds.append(kind)
        codes.append(status)
        statuses[(kind, status)] += 1

    start = time.perf_counter()
    await asyncio.gather(
        *(
            client(port, requests, lambda: next(counter, None), start + seconds, record, retry_after)
            for _ in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - start
    ms, kinds = np.array(latencies) * 1000, np.array(kinds)
    answered = (
        ms[np.array(codes) != 503] if any(c != 503 for c in codes) else ms
    )  # the latency of requests not turned away
    by_kind = {
        k: (float(np.percentile(ms[kinds == k], 50)), float(np.percentile(ms[kinds == k], 99)))
        for k in sorted(set(kinds))
    }
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "by_kind": by_kind,
        "p99_answered": float(np.percentile(answered, 99)),
        "busy": sum(n for (_, s), n in statuses.items() if s == 503),
        "5xx": sum(n for (_, s), n in statuses.items() if (s >= 500 and s != 503) or s == 0),
        "statuses": statuses,
    }


class PeakMemory:
    """Samples a process's resident memory (VmRSS) every 20 ms in a thread; `peak_mb` since the last reset."""

    def __init__(self, pid: int):
        self.status, self.peak_mb, self.done = Path(f"/proc/{pid}/status"), 0.0, threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        while not self.done.wait(0.02):
            try:
                self.peak_mb = max(
                    self.peak_mb, int(re.search(r"VmRSS:\s*(\d+)", self.status.read_text()).group(1)) / 1024
                )
            except (OSError, AttributeError):
                return  # the process is gone

    def reset(self) -> float:
        """The peak so far (MB); the next peak starts from now."""
        peak, self.peak_mb = self.peak_mb, 0.0
        return peak

    def stop(self) -> None:
        self.done.set()
        self.thread.join(1)


def direct(run: str, requests: list[tuple[str, bytes, str]], count: int, seconds: float) -> dict:
    """Decode + predict one file at a time with the Predictor in this process (the no-HTTP reference)."""
    from horses_humans.core.backend import import_backend

    import_backend()
    from horses_humans.data.images import ImageError, load_pixels
    from horses_humans.inference.predictor import Predictor

    predictor = Predictor.from_run(run, runtime="keras").warm_up()  # as before auto became the default
    latencies, start = [], time.perf_counter()
    for i in range(count):
        if time.perf_counter() - start > seconds:
            break
        t = time.perf_counter()
        try:
            predictor.predict_proba(
                load_pixels(requests[i % len(requests)][2], predictor.image_size, max_pixels=40_000_000)[None]
            )
        except ImageError:
            pass
        latencies.append(time.perf_counter() - t)
    ms, elapsed = np.array(latencies) * 1000, time.perf_counter() - start
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "5xx": 0,
        "busy": 0,
        "p99_answered": float(np.percentile(ms, 99)),
    }


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compare_runtimes(args, runtimes: list[str], concurrency: int) -> None:
    """One server per runtime, all started at once; predict phases taken in turns, round after round, so that the
    machine's other load hits every runtime alike -> medians of requests/s and p99, the server's CPU per request,
    and each runtime's ratio to the first."""
    servers = {r: (port := free_port(), start_server(args.run, port, r)) for r in runtimes}
    mix, rows = request_mix(args.data_dir, args.hostile), {r: [] for r in runtimes}
    try:
        for port, _ in servers.values():
            asyncio.run(phase(port, mix, 200, 10, concurrency))  # warm-up: decoders, threads, batch shapes
        for round_ in range(args.rounds):
            for runtime, (port, server) in servers.items():
                cpu = cpu_seconds(server.pid)
                r = asyncio.run(phase(port, mix, args.requests, args.seconds, concurrency, args.retry_after))
                r["cpu_ms"] = 1000 * (cpu_seconds(server.pid) - cpu) / r["requests"]
                rows[runtime].append(r)
                line = f"{r['rps']:6.1f} requests/s, p99 {r['p99']:6.1f} ms, server CPU {r['cpu_ms']:.2f} ms/request"
                print(f"  round {round_ + 1} {runtime:<6} {line}", flush=True)
    finally:
        for _, server in servers.values():
            server.terminate()
            server.wait(10)
    show_comparison(rows, runtimes, concurrency, args.hostile)


def show_comparison(rows: dict, runtimes: list[str], concurrency: int, hostile: float) -> None:
    """Medians (and the spread) per runtime; the target: the last runtime >= 2x the first's requests/s, p99 < 100 ms."""
    med = lambda runtime, key: float(np.median([r[key] for r in rows[runtime]]))  # noqa: E731
    print(f"\n{concurrency} connections, {hostile:.0%} hostile uploads, {len(rows[runtimes[0]])} rounds (medians)")
    print("| runtime | requests/s | spread | p99 ms | server CPU ms per request | 5xx | x " + runtimes[0] + " |")
    print("|---|---|---|---|---|---|---|")
    for runtime in runtimes:
        rps = [r["rps"] for r in rows[runtime]]
        print(
            f"| {runtime} | {med(runtime, 'rps'):.0f} | {min(rps):.0f}-{max(rps):.0f} | {med(runtime, 'p99'):.0f} | "
            f"{med(runtime, 'cpu_ms'):.2f} | {sum(r['5xx'] for r in rows[runtime])} | "
            f"{med(runtime, 'rps') / med(runtimes[0], 'rps'):.2f}x |"
        )
    last = runtimes[-1]
    ratio, p99 = med(last, "rps") / med(runtimes[0], "rps"), med(last, "p99")
    cpu_ratio = med(runtimes[0], "cpu_ms") / med(last, "cpu_ms")
    met = ratio >= 2 and p99 < 100
    print(
        f"target ({last} >= 2x {runtimes[0]}'s requests/s, p99 < 100 ms): {'met' if met else 'NOT met'} "
        f"({ratio:.2f}x, p99 {p99:.0f} ms); by server CPU per request {last} can reach at most {cpu_ratio:.2f}x "
        "(bench/profile_serve.py says where that CPU goes)"
    )


def show(name: str, r: dict, peak_mb: float | None = None) -> None:
    memory = f", server peak RSS {peak_mb:5.0f} MB" if peak_mb is not None else ""
    print(
        f"{name:<12} {r['requests']:>6} requests in {r['seconds']:5.1f} s: {r['rps']:7.1f} requests/s, "
        f"p50 {r['p50']:6.1f} ms, p99 {r['p99']:6.1f} ms (not 503: {r['p99_answered']:6.1f}), 503 busy {r['busy']}, "
        f"other 5xx/dropped {r['5xx']}{memory}"
    )


def measure(port: int, memory: PeakMemory, mix: list, args, concurrency: int) -> tuple[dict, dict, float]:
    """The healthz reference and the predict phase at one number of connections -> (reference, predict, peak RSS MB)."""
    reference = asyncio.run(
        phase(port, [("health", get_request("/healthz"))], args.requests, args.seconds, concurrency)
    )
    memory.reset()
    predict = asyncio.run(phase(port, mix, args.requests, args.seconds, concurrency, args.retry_after))
    return reference, predict, memory.reset()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="run directory to serve")
    parser.add_argument(
        "--requests", type=int, default=3000, help="at most this many requests per phase (default 3000)"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="at most this long per phase (default 20)")
    parser.add_argument(
        "--concurrency", default="8,32,64", help="keep-alive connections, comma-separated (default 8,32,64)"
    )
    parser.add_argument(
        "--hostile", type=float, default=0.3, help="share of hostile files among the uploads (default 0.3)"
    )
    parser.add_argument(
        "--retry-after",
        type=float,
        default=1.0,
        help="seconds a client waits after a 503 (default 1, as the server's Retry-After says; 0: retry at once)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("HORSES_HUMANS_DATA"),
        help="real photos from here (default: $HORSES_HUMANS_DATA)",
    )
    parser.add_argument(
        "--runtimes",
        help="compare these runtimes side by side instead, e.g. keras,auto: one server each, phases in turns at the "
        "first --concurrency, --rounds rounds",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds of --runtimes (default 5)")
    args = parser.parse_args()
    levels = [int(n) for n in args.concurrency.split(",")]
    if args.runtimes:
        return compare_runtimes(args, args.runtimes.split(","), levels[0])

    port = free_port()
    server = start_server(args.run, port)
    memory, rows = PeakMemory(server.pid), {}
    try:
        mix = request_mix(args.data_dir, args.hostile)
        warm = asyncio.run(phase(port, mix, 200, 10, levels[0]))  # decoders, threadpool, batch shapes
        started_mb = memory.reset()
        rows = {n: measure(port, memory, mix, args, n) for n in levels}
    finally:
        memory.stop()
        server.terminate()
        server.wait(10)
    baseline = direct(args.run, mix, args.requests, args.seconds)
    print(
        f"{os.cpu_count()} CPUs, {args.hostile:.0%} hostile uploads, run {args.run} (warm-up: {warm['requests']} "
        "requests, "
        f"server RSS after it {started_mb:.0f} MB)"
    )
    show("direct", baseline)  # serial, one image per Predictor call, no HTTP: the same in every row
    for n, (reference, predict, peak_mb) in rows.items():
        show(f"healthz x{n}", reference)
        show(f"predict x{n}", predict, peak_mb)
        print(
            f"  ratio predict / healthz: {predict['rps'] / reference['rps']:.2f}x the requests/s, "
            f"{predict['p99'] / reference['p99']:.1f}x the p99 latency; "
            f"predict / direct: {predict['rps'] / baseline['rps']:.2f}x the requests/s"
        )
        print(
            "  latency by kind: "
            + ", ".join(f"{k} p50 {a:.1f} ms / p99 {b:.1f} ms" for k, (a, b) in predict["by_kind"].items())
        )
        print(
            "  statuses: "
            + ", ".join(f"{kind} {status}: {n}" for (kind, status), n in sorted(predict["statuses"].items()))
        )
    if 32 in rows:
        predict = rows[32][1]
        met = predict["rps"] >= 200 and predict["p99_answered"] < 150 and predict["5xx"] == 0
        print(
            "targets at 32 connections (>= 200 requests/s, p99 of the requests not turned away < 150 ms, no 5xx "
            f"but 503 busy): {'met' if met else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
