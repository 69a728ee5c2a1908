"""Run the app under uvicorn with the connection limits uvicorn lacks: a deadline and a size cap for request headers."""

from __future__ import annotations

import sys

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .settings import ServeSettings

MAX_HEAD_BYTES = 64 * 1024  # request line + headers; larger is answered 431 and closed


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus: each request's headers must arrive within header_timeout seconds and
    MAX_HEAD_BYTES (uvicorn has no such limit: a client sending a header byte a second holds its connection
    forever), and a connection whose response went out before its body was read is closed, not kept reading."""

    header_timeout = 10.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.head_bytes, self.awaiting_head, self.head_timer = 0, True, None
        self.arm_head_timer()

    def arm_head_timer(self) -> None:
        """Close the connection unless the next request's headers are complete within header_timeout."""
        self.cancel_head_timer()
        self.head_timer = self.loop.call_later(self.header_timeout, self.timeout_keep_alive_handler)

    def cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def data_received(self, data: bytes) -> None:
        if self.awaiting_head:
            self.head_bytes += len(data)
        super().data_received(data)
        if self.awaiting_head and self.head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self.awaiting_head:  # a keep-alive connection's next request: its own header deadline
            self.awaiting_head, self.head_bytes = True, 0
            self.arm_head_timer()

    def on_headers_complete(self) -> None:
        self.awaiting_head = False
        self.cancel_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        if self.cycle is not None and self.cycle.more_body and not self.transport.is_closing():
            self.transport.close()  # answered before its body arrived (413, 401, 503): the rest is not read
        super().on_response_complete()

    def connection_lost(self, exc) -> None:
        self.cancel_head_timer()
        super().connection_lost(exc)


def protocol_class(header_timeout: float) -> type:
    """TimedHttpToolsProtocol with this header deadline (uvicorn builds protocols from a class)."""
    return type("TimedHttpToolsProtocol", (TimedHttpToolsProtocol,), {"header_timeout": header_timeout})


def uvicorn_config(settings: ServeSettings, **overrides):
    """uvicorn's Config for the app of these settings, with every connection limit set from them."""
    import uvicorn

    from .app import create_app

    settings = settings.model_copy(update={"allowed_hosts": settings.served_hosts()})
    options = dict(
        host=settings.host,
        port=settings.port,
        log_level="warning",
        http=protocol_class(settings.header_timeout),
        timeout_keep_alive=settings.keep_alive_timeout,
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Config(create_app(settings), **{**options, **overrides})


def exposure_warning(settings: ServeSettings) -> str | None:
    """The loud warning for a server reachable beyond this machine with no API key, else None."""
    if settings.loopback or settings.api_key is not None:
        return None
    return (
        f"WARNING: serving on {settings.host} (reachable from other machines) with no API key: anyone who can reach "
        f"port {settings.port} can use the model. Set --api-key KEY (or HORSES_HUMANS_SERVE_API_KEY) to require one."
    )


def serve(settings: ServeSettings) -> None:
    """Run the server in the foreground until interrupted; warn first when it is open to the network without a key."""
    import uvicorn

    warning = exposure_warning(settings)
    if warning:
        print("\n" + "!" * 78 + "\n" + warning + "\n" + "!" * 78 + "\n", file=sys.stderr)
    uvicorn.Server(uvicorn_config(settings)).run()
