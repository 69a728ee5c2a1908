"""Answers sent before the body: how many clients still sending a 3 MB upload read the whole JSON answer.

Starts `horses-humans serve RUN --api-key KEY` itself (a subprocess on a free local port, default limits: 32 MiB a
request), then, for each answer the server gives before reading a body (401 without the key, 400 for a foreign Host,
413 by Content-Length: 64 MiB declared), --tries clients one after the other: a raw socket that sends the headers and
3 MB in 64 KiB writes 5 ms apart, then reads to the end; and, for the 401, Python's urllib (http.client sends the
whole body before it reads: the client most hurt by a reset). A client counts when it read the status line and a
whole JSON body with an "error"; a reset or broken pipe does not.

Measured on the 2-core CPU with --tries 20: 20 of 20 in every row with lingering close; before it (the server closed
at once with the body unread) 0 of 20 raw clients per refusal, and 8 of 20 urllib calls (the rest: broken pipe).

    python bench/bench_early_answers.py RUN [--tries 20]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from bench_serve import await_health, free_port

KEY = "bench-early-answers-key"
UPLOAD = 3 * 2**20
REFUSALS = {  # name: (extra headers, Host, declared Content-Length, status)
    "401 without the key": ({}, None, UPLOAD, 401),
    "400 for a foreign Host": ({"X-API-Key": KEY}, "evil.example", UPLOAD, 400),
    "413 by Content-Length": ({"X-API-Key": KEY}, None, 64 * 2**20, 413),
}


def start_server(run: str, port: int):
    """`horses-humans serve RUN --api-key KEY` on 127.0.0.1:port; returns once /healthz answers."""
    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full pipe would stall the server
    command = [sys.executable, "-m", "horses_humans.cli.main", "serve", run, "--port", str(port), "--api-key", KEY]
    return await_health(subprocess.Popen(command, env=dict(os.environ), stderr=log, text=True), port, log)


def whole_answer(response: bytes, status: int) -> bool:
    """Whether `response` is this status with a whole JSON {"error": ...} body."""
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(f"HTTP/1.1 {status} ".encode()):
        return False
    try:
        return "error" in json.loads(body)
    except ValueError:
        return False


def raw_client(port: int, headers: dict[str, str], host: str | None, declared: int, status: int) -> bool:
    """Headers, then 3 MB of body in 64 KiB writes 5 ms apart, then read to the end -> whether the answer came whole."""
    lines = [
        "POST /v1/predict HTTP/1.1",
        f"Host: {host or f'127.0.0.1:{port}'}",
        "Content-Type: multipart/form-data; boundary=x",
        f"Content-Length: {declared}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    response = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            for _ in range(0, UPLOAD, 2**16):
                sock.sendall(b"x" * 2**16)
                time.sleep(0.005)
            while chunk := sock.recv(2**16):
                response += chunk
    except OSError:  # reset or broken pipe: what this bench counts
        return False
    return whole_answer(response, status)


def urllib_client(port: int) -> bool:
    """POST 3 MB without the key through urllib -> whether it got the 401 with its JSON."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", data=b"x" * UPLOAD)
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as answer:
        return answer.code == 401 and "error" in json.loads(answer.read())
    except OSError:
        return False
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="run directory to serve")
    parser.add_argument("--tries", type=int, default=20, help="clients per row (default 20)")
    args = parser.parse_args()
    port = free_port()
    server = start_server(args.run, port)
    try:
        for name, refusal in REFUSALS.items():
            whole = sum(raw_client(port, *refusal) for _ in range(args.tries))
            print(f"{name:<24} raw socket: {whole} of {args.tries} read the whole answer")
        whole = sum(urllib_client(port) for _ in range(args.tries))
        print(f"{'401 without the key':<24} urllib: {whole} of {args.tries} read the whole answer")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
