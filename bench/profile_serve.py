"""Where one POST /v1/predict spends its time in `horses-humans serve`: wall-clock spans per stage and CPU per thread.

Starts the server in a child process with timing spans wrapped around each stage (nothing in src/ changes):
  app        the whole request inside the ASGI app (middleware, routing, everything below, the response sent)
  form       multipart parsing (python-multipart through Starlette's Request.form, the upload spooled)
  endpoint   the route function: read the upload, decode, wait for the model, build the answer
  decode     load_pixels in its thread; decode+hop adds the trip to the thread pool and back
  worker     from queueing the pixels to the answer (the batching queue, the model thread hop, the model)
  model      one model call (Predictor.predict_decoded) for a batch, in the model thread
  serialize  response validation and JSON (FastAPI's serialize_response)
and reads each thread's CPU time from /proc: the event loop (HTTP, multipart, middleware, JSON), the decode threads,
the model thread, and every other thread (the runtime's own compute pools). The client (bench_serve.py's keep-alive
client, valid photos only) runs in this process and reports its latency and its own CPU.

At one connection the spans add up to one request end to end; at N connections the CPU per request says what bounds
requests/s on this machine: cores / CPU seconds per request, the client's share included when it runs here too.

    python bench/profile_serve.py RUN [--concurrency 1,16] [--requests 400] [--seconds 10] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

SPANS = ("app", "form", "endpoint", "decode+hop", "decode", "worker", "model", "serialize")
TICK = os.sysconf("SC_CLK_TCK")


class Spans:
    """Per-span wall seconds (and counts) plus which native thread ids did which job; reset between phases."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    profiler = None  # a cProfile.Profile of the event loop thread (--cprofile); reports count from the last reset

    def reset(self) -> None:
        self.own_at_reset = self.own_seconds()
        self.seconds, self.counts, self.batch_images = defaultdict(float), defaultdict(int), 0
        self.threads = {"event loop": {threading.main_thread().native_id}, "decode": set(), "model": set()}
        self.cpu_at_reset = thread_cpu()

    def add(self, name: str, seconds: float) -> None:
        with self.lock:
            self.seconds[name] += seconds
            self.counts[name] += 1

    def report(self) -> dict:
        """Mean ms per span, and CPU seconds per thread group since the reset."""
        cpu = thread_cpu()
        used = {tid: cpu[tid] - self.cpu_at_reset.get(tid, 0.0) for tid in cpu}
        groups = {name: sum(used.get(t, 0.0) for t in ids) for name, ids in self.threads.items()}
        named = set().union(*self.threads.values())
        groups["other threads (runtime pools)"] = sum(s for t, s in used.items() if t not in named)
        return {
            "event_loop_functions": self.top_functions(),
            "mean_ms": {k: 1000 * self.seconds[k] / self.counts[k] for k in self.counts},
            "counts": dict(self.counts),
            "batch_images": self.batch_images,
            "cpu_seconds": groups,
        }

    def top_functions(self, count: int = 25) -> list[tuple[str, float]]:
        """The event loop's functions by their own seconds (callees not counted) since the reset (empty without
        --cprofile): with coroutines, only own time adds up."""
        now = self.own_seconds()
        rows = [(name, seconds - self.own_at_reset.get(name, 0.0)) for name, seconds in now.items()]
        return sorted(rows, key=lambda row: -row[1])[:count]

    def own_seconds(self) -> dict[str, float]:
        """Own seconds of each function the profiler has seen so far."""
        if self.profiler is None:
            return {}
        stats = pstats.Stats(self.profiler)  # which stops the profiler: start it again
        self.profiler.enable()
        return {f"{Path(f).name}:{line} {name}": own for (f, line, name), (_, _, own, _, _) in stats.stats.items()}


def thread_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each thread of this process, by native thread id."""
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def timed_async(spans: Spans, name: str, fn):
    async def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            spans.add(name, time.perf_counter() - start)

    return wrapper


def timed_sync(spans: Spans, name: str, fn, group: str | None = None):
    def wrapper(*args, **kwargs):
        if group:
            spans.threads[group].add(threading.get_native_id())
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spans.add(name, time.perf_counter() - start)

    return wrapper


def instrument(spans: Spans) -> None:
    """Wrap each stage's function in a span (module attributes, looked up at call time)."""
    import fastapi.routing
    import starlette.requests

    from horses_humans.inference.predictor import Predictor
    from horses_humans.serve import routes, worker

    starlette.requests.Request._get_form = timed_async(spans, "form", starlette.requests.Request._get_form)
    fastapi.routing.run_endpoint_function = timed_async(spans, "endpoint", fastapi.routing.run_endpoint_function)
    fastapi.routing.serialize_response = timed_async(spans, "serialize", fastapi.routing.serialize_response)
    routes.run_in_threadpool = timed_async(spans, "decode+hop", routes.run_in_threadpool)
    routes.load_pixels = timed_sync(spans, "decode", routes.load_pixels, "decode")
    worker.ModelWorker.predict = timed_async(spans, "worker", worker.ModelWorker.predict)
    predict_decoded = Predictor.predict_decoded

    def model_call(self, files, decoded):
        spans.batch_images += len(files)
        return predict_decoded(self, files, decoded)

    Predictor.predict_decoded = timed_sync(spans, "model", model_call, "model")


class Profiled:
    """ASGI wrapper: the `app` span for /v1/predict, and GET /_profile (the report) and /_profile/reset."""

    def __init__(self, app, spans: Spans):
        self.app, self.spans = app, spans

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith("/_profile"):
            if path.endswith("/reset"):
                self.spans.reset()
            body = json.dumps(self.spans.report()).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"json")]})
            return await send({"type": "http.response.body", "body": body})
        if path != "/v1/predict":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.spans.add("app", time.perf_counter() - start)


def child(run: str, port: int, runtime: str, cprofile: bool) -> None:
    """The server, instrumented (runs until terminated)."""
    import uvicorn

    from horses_humans.core.backend import configure

    configure()
    spans = Spans()
    if cprofile:
        spans.profiler = cProfile.Profile()  # this thread runs the event loop
        spans.profiler.enable()
    instrument(spans)
    from horses_humans.serve.server import uvicorn_config
    from horses_humans.serve.settings import ServeSettings

    config = uvicorn_config(ServeSettings(run=Path(run), host="127.0.0.1", port=port, runtime=runtime))
    config.app = Profiled(config.app, spans)
    config.loaded_app = None
    uvicorn.Server(config).run()


def start_child(run: str, port: int, runtime: str, cprofile: bool) -> subprocess.Popen:
    """This script as the instrumented server; returns once /healthz answers."""
    log = tempfile.TemporaryFile("w+")
    command = [sys.executable, __file__, "--child", run, "--port", str(port), "--runtime", runtime]
    server = subprocess.Popen(command + ["--cprofile"] * cprofile, stderr=log)
    from bench_serve import await_health

    return await_health(server, port, log)


def fetch(port: int, path: str) -> dict:
    return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10).read())


def profile_level(port: int, mix: list, concurrency: int, args) -> dict:
    """One phase at this many connections -> the server's report plus the client's figures."""
    from bench_serve import phase

    fetch(port, "/_profile/reset")
    cpu = time.process_time()
    figures = asyncio.run(phase(port, mix, args.requests, args.seconds, concurrency))
    report = fetch(port, "/_profile")
    kept = {k: v for k, v in figures.items() if k not in ("statuses", "by_kind")}
    report["client"] = {**kept, "cpu_seconds": time.process_time() - cpu}
    return report


def show(concurrency: int, report: dict) -> None:
    """Two small tables: mean ms per span, CPU ms per request per thread group."""
    client, n = report["client"], report["counts"].get("app", 0) or 1
    print(
        f"\n{concurrency} connection(s): {client['requests']} requests, {client['rps']:.1f} requests/s, "
        f"client p50 {client['p50']:.1f} ms, p99 {client['p99']:.1f} ms, "
        f"{report['batch_images'] / max(report['counts'].get('model', 1), 1):.1f} images per model call"
    )
    print("  span         mean ms per call")
    for name in SPANS:
        if name in report["mean_ms"]:
            print(f"  {name:<12} {report['mean_ms'][name]:8.2f}")
    print("  CPU ms per request, by thread")
    cpu = {**report["cpu_seconds"], "client (this process)": client["cpu_seconds"]}
    for name, seconds in cpu.items():
        print(f"  {name:<32} {1000 * seconds / n:7.2f}")
    total = 1000 * sum(cpu.values()) / n
    for name, seconds in report["event_loop_functions"]:
        print(f"  event loop, own ms per request: {1000 * seconds / n:7.3f} {name}")
    cores = os.cpu_count()
    print(f"  {'total':<32} {total:7.2f}  -> at most {cores * 1000 / total:.0f} requests/s on {cores} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="run directory to serve")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", default="1,16", help="connections per phase, comma-separated (default 1,16)")
    parser.add_argument("--requests", type=int, default=400, help="at most this many requests per phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="at most this long per phase")
    parser.add_argument("--runtime", default="auto", help="what answers: auto, keras, onnx, tflite (default auto)")
    parser.add_argument(
        "--cprofile", action="store_true", help="also list the event loop's top functions (slows the loop down)"
    )
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("HORSES_HUMANS_DATA"))
    parser.add_argument("--json", type=Path, help="also write the reports here")
    args = parser.parse_args()
    if args.child:
        return child(args.run, args.port, args.runtime, args.cprofile)
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_serve import free_port, request_mix

    port = free_port()
    server = start_child(args.run, port, args.runtime, args.cprofile)
    try:
        mix = request_mix(args.data_dir, hostile_share=0.0)
        asyncio.run(__import__("bench_serve").phase(port, mix, 100, 10, 4))  # warm-up: threads, batch shapes
        reports = {n: profile_level(port, mix, n, args) for n in map(int, args.concurrency.split(","))}
    finally:
        server.terminate()
        server.wait(10)
    print(f"run {args.run}, runtime {args.runtime}, valid photos only, {os.cpu_count()} CPUs")
    for n, report in reports.items():
        show(n, report)
    if args.json:
        args.json.write_text(json.dumps({str(n): r for n, r in reports.items()}, indent=2, default=str))


if __name__ == "__main__":
    main()
