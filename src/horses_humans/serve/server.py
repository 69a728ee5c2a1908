"""Run the app under uvicorn with the connection limits uvicorn lacks: a deadline and a size cap for request headers."""

from __future__ import annotations

import sys

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .limits import ConnectionsFull, Places
from .settings import ServeSettings

MAX_HEAD_BYTES = 64 * 1024  # request line + headers; larger is answered 431 and closed
HEAD_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


LINGER_SECONDS = 2.0  # how long an answered connection may go on sending a body nobody reads


class CycleTransport:
    """The transport as a request's cycle sees it: uvicorn's cycle closes it right after a `Connection: close`
    response, before the protocol hears of it; here that close goes through the protocol, which lingers when the
    request's body is still arriving."""

    def __init__(self, protocol: TimedHttpToolsProtocol):
        self.protocol, self.transport = protocol, protocol.transport

    def close(self) -> None:
        """Close, or linger first (TimedHttpToolsProtocol.close_after_response)."""
        self.protocol.close_after_response()

    def __getattr__(self, name: str):
        return getattr(self.transport, name)


class HeadTooLarge(Exception):
    """Raised from a parser callback once a request's parsed head passes MAX_HEAD_BYTES (httptools wraps it in an
    HttpParserCallbackError, which uvicorn answers through send_400_response)."""


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus: each request's headers must arrive within header_timeout seconds and
    MAX_HEAD_BYTES (uvicorn has no such limit: a client sending a header byte a second holds its connection
    forever), and a connection answered before its body arrived (401, the Host check's 400, a 413, a 408) lingers,
    then closes (linger). Over the connection cap (limit_concurrency) a request is answered by busy_app (JSON, after
    its body is read) in place of uvicorn's plain-text 503 sent under the body.

    The head is measured twice: as raw bytes while it is incomplete (a header that never ends), and as parsed bytes
    (URL and each header) when a whole head arrives in one read, which the raw count cannot tell from its body."""

    header_timeout = 10.0
    busy_app: ConnectionsFull | None = None  # set by protocol_class; None: uvicorn's own 503 over the cap
    linger_places: Places | None = None  # set by protocol_class; None: an unread body's connection closes at once
    linger_seconds = LINGER_SECONDS
    linger_bytes = 32 * 2**20  # set by protocol_class to the request body limit

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.head_bytes, self.parsed_head_bytes, self.awaiting_head, self.head_timer = 0, 0, True, None
        self.head_too_large = False
        self.lingering, self.lingered_bytes, self.linger_timer = False, 0, None
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
        if self.lingering:
            return self.discard(data)
        if self.awaiting_head:
            self.head_bytes += len(data)
        super().data_received(data)
        if self.awaiting_head and self.head_bytes > MAX_HEAD_BYTES:
            self.refuse_head()

    def refuse_head(self) -> None:
        """Answer 431 and close (once)."""
        if not self.transport.is_closing():
            self.transport.write(HEAD_TOO_LARGE)
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.count_parsed_head(len(url) + len(" HTTP/1.1\r\n"))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.count_parsed_head(len(name) + len(value) + len(": \r\n"))
        super().on_header(name, value)

    def count_parsed_head(self, size: int) -> None:
        """Add to this request's parsed head; past MAX_HEAD_BYTES stop parsing (send_400_response answers 431)."""
        self.parsed_head_bytes += size
        if self.parsed_head_bytes > MAX_HEAD_BYTES:
            self.head_too_large = True
            raise HeadTooLarge(f"request head over {MAX_HEAD_BYTES} bytes")

    def send_400_response(self, msg: str) -> None:
        if self.head_too_large:
            self.refuse_head()
        else:
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.parsed_head_bytes = 0
        if not self.awaiting_head:  # a keep-alive connection's next request: its own header deadline
            self.awaiting_head, self.head_bytes = True, 0
            self.arm_head_timer()

    def on_headers_complete(self) -> None:
        self.awaiting_head = False
        self.cancel_head_timer()
        cycle = self.cycle
        self.start_cycle()
        if self.cycle is not cycle:  # a new request (not a WebSocket upgrade): its closes go through linger
            self.cycle.transport = CycleTransport(self)

    def start_cycle(self) -> None:
        """uvicorn's request start, with busy_app as the answer over the connection cap."""
        if self.busy_app is None or not self.over_connection_cap():
            return super().on_headers_complete()
        # uvicorn would pick its own 503 app by the same test: with the cap lifted for this call it runs busy_app
        self.logger.warning("Exceeded concurrency limit.")
        cap, app = self.limit_concurrency, self.app
        self.limit_concurrency, self.app = None, self.busy_app
        try:
            super().on_headers_complete()
        finally:
            self.limit_concurrency, self.app = cap, app

    def over_connection_cap(self) -> bool:
        """uvicorn's limit_concurrency test: as many connections open, or requests running, as the cap."""
        cap = self.limit_concurrency
        return cap is not None and (len(self.connections) >= cap or len(self.tasks) >= cap)

    def on_response_complete(self) -> None:
        if self.cycle is None or not self.cycle.more_body:
            return super().on_response_complete()
        # answered before its body arrived: uvicorn's keep-alive and pipelining are for a connection that goes on
        self.server_state.total_requests += 1
        self.close_after_response()

    def close_after_response(self) -> None:
        """Close the connection once a response has gone out: at once, unless its request's body is still arriving
        (then linger)."""
        cycle = self.cycle
        if self.lingering or self.transport.is_closing():
            return
        if cycle is None or not cycle.response_complete or not cycle.more_body or not self.take_linger_place():
            return self.transport.close()
        self.linger()

    def take_linger_place(self) -> bool:
        """Take one of the server's places to linger -> whether one was free."""
        return self.linger_places is not None and self.linger_places.take()

    def linger(self) -> None:
        """Close a connection answered before its body arrived the way nginx's lingering close does: end the write
        side (the client reads the answer, then the end), read and discard what still arrives, and close once the
        client closes, after linger_seconds, or past linger_bytes. Closing at once with the body unread makes the
        kernel reset the connection, and the client, still sending, sees "connection reset" instead of the answer.

        One mechanism for every early answer (401, 400, 413, 408, 404...), below the app, so no middleware reads a
        body it refused. Bounded three ways: linger_seconds per connection (a slow client cannot hold it longer),
        linger_bytes per connection (a fast one cannot make it read more), linger_places.cap connections at once
        (past that a connection closes at once, as before)."""
        self.lingering = True
        self.cancel_head_timer()
        self._unset_keepalive_if_required()
        self.flow.resume_reading()  # a body arriving faster than the app read it paused reading
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.linger_timer = self.loop.call_later(self.linger_seconds, self.transport.close)

    def discard(self, data: bytes) -> None:
        """Drop bytes arriving while lingering; close past linger_bytes."""
        self.lingered_bytes += len(data)
        if self.lingered_bytes > self.linger_bytes:
            self.transport.close()

    def connection_lost(self, exc) -> None:
        self.cancel_head_timer()
        if self.lingering:
            self.linger_timer.cancel()
            self.linger_places.give_back()
            self.lingering = False
        super().connection_lost(exc)


def protocol_class(settings: ServeSettings) -> type:
    """TimedHttpToolsProtocol with these settings' header deadline, over-the-cap answer and lingering bounds (uvicorn
    builds protocols from a class)."""
    busy_app = ConnectionsFull(settings.max_connections, settings.max_request_bytes, settings.body_timeout)
    attributes = {
        "header_timeout": settings.header_timeout,
        "busy_app": busy_app,
        "linger_places": Places(settings.max_connections),  # with busy_app's drains: at most 3x the cap held
        "linger_bytes": settings.max_request_bytes,
    }
    return type("TimedHttpToolsProtocol", (TimedHttpToolsProtocol,), attributes)


def uvicorn_config(settings: ServeSettings, **overrides):
    """uvicorn's Config for the app of these settings, with every connection limit set from them."""
    import uvicorn

    from .app import create_app

    settings = settings.model_copy(update={"allowed_hosts": settings.served_hosts()})
    options = dict(
        host=settings.host,
        port=settings.port,
        log_level="warning",
        http=protocol_class(settings),
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
