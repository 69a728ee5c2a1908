"""`serve`'s real uvicorn server (limits, protocol and all) in a background thread on a free local port."""

import socket
import threading
import time
from contextlib import contextmanager

import uvicorn

from horses_humans.serve.server import uvicorn_config
from horses_humans.serve.settings import ServeSettings


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(settings: ServeSettings):
    """The server of these settings, started and stopped around the block -> its port."""
    port = free_port()
    server = uvicorn.Server(uvicorn_config(settings.model_copy(update={"port": port})))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
