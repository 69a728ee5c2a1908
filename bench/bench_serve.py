"""Load test of `horses-humans serve`: requests per second, p50/p99 latency and 5xx count, against 127.0.0.1 only.

Starts the server itself (a subprocess on a free local port), waits for /healthz, then runs two bounded phases
with the same client and concurrency:
  - reference: GET /healthz (the HTTP stack alone: no upload, no decoding, no model);
  - predict:   POST /v1/predict, one image per request, cycling through valid photos and hostile files
               (corrupt, truncated, empty, text, SVG, ZIP, bomb header, over-limit header) and awkward valid ones
               (CMYK, 16-bit, animated, EXIF-rotated, ...);
and, after the server has stopped, a second reference in this process:
  - direct:    the same files through images.load_pixels + Predictor.predict_proba, one image per call, no HTTP.
Each phase stops after --requests requests or --seconds seconds, whichever comes first. The client is a
minimal keep-alive HTTP/1.1 client on asyncio sockets (request bytes built once), so it takes little of the
CPU it shares with the server. Targets on the 2-core CPU: >= 200 requests/s for the baseline model,
p99 under 100 ms, zero 5xx.

    python bench/bench_serve.py RUN [--requests 3000] [--seconds 20] [--concurrency 8] [--hostile 0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np

from horses_humans.samples import awkward_files, encode, hostile_files, photo  # the same files the tests send

BOUNDARY = "benchboundary7d1f"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: str, port: int) -> subprocess.Popen:
    """`horses-humans serve RUN` as a subprocess; returns once /healthz answers."""
    env = dict(os.environ)  # the CLI sets up the backend itself (horses_humans.backend)
    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full pipe would stall the server
    server = subprocess.Popen([sys.executable, "-m", "horses_humans.cli", "serve", run, "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stderr=log, text=True)
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
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


def valid_photos(data_dir: Path | None, count: int = 40) -> list[tuple[str, bytes]]:
    """Real validation photos if the data set is there (300x300 PNGs), else noisy 300x300 PNGs."""
    folder = data_dir / "validation-horse-or-human" if data_dir else None
    if folder and folder.is_dir():
        files = sorted(folder.rglob("*.png"))[:: max(1, len(sorted(folder.rglob("*.png"))) // count)][:count]
        return [(f.name, f.read_bytes()) for f in files]
    return [(f"noise{i}.png", encode(photo((300, 300), seed=i), "PNG")) for i in range(count)]


def request_mix(data_dir: Path | None, hostile_share: float, total: int = 1000, seed: int = 0) -> list[tuple[str, bytes, bytes]]:
    """(kind, request bytes, file bytes), shuffled: hostile_share of them hostile files, the rest valid photos and awkward images."""
    rng = random.Random(seed)
    good = valid_photos(data_dir) + list(awkward_files().items())
    bad = [(n, d) for n, (d, _) in hostile_files().items()]
    picks = [("hostile", rng.choice(bad)) if rng.random() < hostile_share else ("valid", rng.choice(good)) for _ in range(total)]
    return [(kind, upload_request(name, data), data) for kind, (name, data) in picks]


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length framed); returns its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def client(port: int, requests: list[tuple[str, bytes]], next_index, stop_at: float, record) -> None:
    """One keep-alive connection sending requests until the shared budget or the deadline runs out."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at and (i := next_index()) is not None:
            kind, raw = requests[i % len(requests)][:2]
            start = time.perf_counter()
            writer.write(raw)
            try:
                status = await read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                status = 0  # the server closed the connection: counted, then reconnect
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            record(kind, status, time.perf_counter() - start)
    finally:
        writer.close()


async def phase(port: int, requests: list[tuple[str, bytes]], count: int, seconds: float, concurrency: int) -> dict:
    """Send up to `count` requests in up to `seconds` over `concurrency` connections -> figures."""
    counter = iter(range(count))
    latencies, kinds, statuses = [], [], Counter()

    def record(kind, status, seconds_taken):
        latencies.append(seconds_taken)
        kinds.append(kind)
        statuses[(kind, status)] += 1

    start = time.perf_counter()
    await asyncio.gather(*(client(port, requests, lambda: next(counter, None), start + seconds, record) for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    ms, kinds = np.array(latencies) * 1000, np.array(kinds)
    by_kind = {k: (float(np.percentile(ms[kinds == k], 50)), float(np.percentile(ms[kinds == k], 99))) for k in sorted(set(kinds))}
    return {"requests": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed,
            "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "by_kind": by_kind,
            "5xx": sum(n for (_, s), n in statuses.items() if s >= 500 or s == 0), "statuses": statuses}


def direct(run: str, requests: list[tuple[str, bytes, str]], count: int, seconds: float) -> dict:
    """Decode + predict one file at a time with the Predictor in this process (the no-HTTP reference)."""
    from horses_humans.backend import import_backend

    import_backend()
    from horses_humans.images import ImageError, load_pixels
    from horses_humans.predict import Predictor

    predictor = Predictor.from_run(run).warm_up()
    latencies, start = [], time.perf_counter()
    for i in range(count):
        if time.perf_counter() - start > seconds:
            break
        t = time.perf_counter()
        try:
            predictor.predict_proba(load_pixels(requests[i % len(requests)][2], predictor.image_size, max_pixels=40_000_000)[None])
        except ImageError:
            pass
        latencies.append(time.perf_counter() - t)
    ms, elapsed = np.array(latencies) * 1000, time.perf_counter() - start
    return {"requests": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed,
            "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "5xx": 0}


def show(name: str, r: dict) -> None:
    print(f"{name:<9} {r['requests']:>6} requests in {r['seconds']:5.1f} s: {r['rps']:7.1f} requests/s, "
          f"p50 {r['p50']:6.1f} ms, p99 {r['p99']:6.1f} ms, 5xx/dropped {r['5xx']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="run directory to serve")
    parser.add_argument("--requests", type=int, default=3000, help="at most this many requests per phase (default 3000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most this long per phase (default 20)")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections (default 8)")
    parser.add_argument("--hostile", type=float, default=0.3, help="share of hostile files among the uploads (default 0.3)")
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("HORSES_HUMANS_DATA"), help="real photos from here (default: $HORSES_HUMANS_DATA)")
    args = parser.parse_args()

    port = free_port()
    server = start_server(args.run, port)
    try:
        mix = request_mix(args.data_dir, args.hostile)
        warm = asyncio.run(phase(port, mix, 200, 10, args.concurrency))  # decoders, threadpool, batch shapes
        reference = asyncio.run(phase(port, [("health", get_request("/healthz"))], args.requests, args.seconds, args.concurrency))
        predict = asyncio.run(phase(port, mix, args.requests, args.seconds, args.concurrency))
    finally:
        server.terminate()
        server.wait(10)
    baseline = direct(args.run, mix, args.requests, args.seconds)
    print(f"{os.cpu_count()} CPUs, concurrency {args.concurrency}, {args.hostile:.0%} hostile uploads, run {args.run} "
          f"(warm-up: {warm['requests']} requests)")
    show("healthz", reference)  # direct: serial, one image per Predictor call; the others: concurrent HTTP
    show("predict", predict)
    show("direct", baseline)
    print("predict latency by kind: " + ", ".join(f"{k} p50 {a:.1f} ms / p99 {b:.1f} ms" for k, (a, b) in predict["by_kind"].items()))
    print("predict statuses: " + ", ".join(f"{kind} {status}: {n}" for (kind, status), n in sorted(predict["statuses"].items())))
    print(f"ratio predict / healthz: {predict['rps'] / reference['rps']:.2f}x the requests/s, "
          f"{predict['p99'] / reference['p99']:.1f}x the p99 latency")
    print(f"ratio predict / direct (one image per call, no HTTP): {predict['rps'] / baseline['rps']:.2f}x the requests/s")
    met = predict["rps"] >= 200 and predict["p99"] < 100 and predict["5xx"] == 0
    print(f"targets (>= 200 requests/s, p99 < 100 ms, zero 5xx): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
