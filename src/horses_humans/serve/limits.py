"""What requests may cost: one body's size and arrival time and all bodies' bytes at once (BodyLimit), requests in
flight (InFlightLimit)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from starlette.exceptions import HTTPException

# after a refusal the rest of the body is only discarded (server.py lingers, then closes): the connection cannot go on
CLOSE = {"Connection": "close"}
QUEUED_PATHS = ("/v1/predict",)  # the requests InFlightLimit bounds


class BodyTooLarge(HTTPException):
    """Raised inside receive() once the body passes the limit (an HTTPException, so FastAPI's body parsing
    passes it on)."""

    def __init__(self, max_bytes: int):
        super().__init__(413, too_large_message(max_bytes), headers=CLOSE)


class BodyTooSlow(HTTPException):
    """Raised inside receive() once the body has taken longer than its deadline."""

    def __init__(self, seconds: float):
        super().__init__(408, too_slow_message(seconds), headers=CLOSE)


class UploadsBusy(HTTPException):
    """Raised inside receive() once the bodies of all requests in progress hold more than the server's budget, after
    the rest of the body was read and discarded (drained: the connection stays open; else it is closed)."""

    def __init__(self, held: int, max_total: int, drained: bool, retry_after: int = 1):
        message = (
            f"server busy: {held:,} bytes of uploads in progress (at most {max_total:,}: HORSES_HUMANS_SERVE_MAX_QUEUE "
            f"x the request body limit); retry after {retry_after} s"
        )
        super().__init__(503, message, headers={"Retry-After": str(retry_after), **({} if drained else CLOSE)})


class ServerBusy(HTTPException):
    """Raised inside receive() when a body has arrived whole but every place is taken. The body was read, so the
    503 goes out on a connection in a clean state: the client reads it (and Retry-After) and may keep it open."""

    def __init__(self, in_flight: int, max_requests: int, retry_after: int):
        message = (
            f"server busy: {in_flight} requests in progress (at most {max_requests}: HORSES_HUMANS_SERVE_MAX_QUEUE); "
            f"retry after {retry_after} s"
        )
        super().__init__(503, message, headers={"Retry-After": str(retry_after)})


def too_large_message(max_bytes: int) -> str:
    """The 413 text: the limit and which settings raise it."""
    return (
        f"request body over {max_bytes:,} bytes; send fewer or smaller files "
        "(limits: HORSES_HUMANS_SERVE_MAX_BODY_BYTES, HORSES_HUMANS_SERVE_MAX_FILES, "
        "HORSES_HUMANS_SERVE_MAX_FILE_BYTES)"
    )


def too_slow_message(seconds: float) -> str:
    """The 408 text: the deadline and which setting raises it."""
    return f"request body not received within {seconds:g} s; send it faster (limit: HORSES_HUMANS_SERVE_BODY_TIMEOUT)"


class BodyLimit:
    """ASGI middleware: 413 for a body over max_bytes, by Content-Length before anything is read, or by counting a
    chunked body as it arrives (the rest is never parsed, only discarded while the connection lingers: server.py);
    408 when the body has not arrived within `seconds`; 503 when the bodies of all requests in progress would hold
    more than max_total_bytes (memory and spooled files: a body is held until its request is answered), so that many
    bodies arriving at once cannot fill the disk."""

    def __init__(self, app, max_bytes: int, seconds: float = 30.0, max_total_bytes: int | None = None):
        self.app, self.max_bytes, self.seconds = app, max_bytes, seconds
        self.max_total, self.held = max_total_bytes or 2**63, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            return await send_json(send, 413, too_large_message(self.max_bytes), CLOSE)
        received, started, deadline = 0, False, time.monotonic() + self.seconds

        async def limited_receive():
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                raise BodyTooSlow(self.seconds) from None
            size = len(message.get("body", b""))
            received += size
            self.held += size
            if received > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            if self.held > self.max_total:
                # read the rest before answering: a 503 sent under an upload still arriving reaches its client as a
                # connection reset (the close discards the unread body), not as JSON with Retry-After
                drained = not message.get("more_body", False) or await drain(
                    receive, self.max_bytes - received, deadline
                )
                raise UploadsBusy(self.held, self.max_total, drained)
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except (BodyTooLarge, BodyTooSlow, UploadsBusy) as exc:
            if not started:
                await send_json(send, exc.status_code, exc.detail, exc.headers)
        finally:
            self.held -= received


class InFlightLimit:
    """ASGI middleware: a bounded number of requests to `paths` at once; the next is answered 503 with Retry-After,
    so overload costs a client one short wait instead of an unbounded queue.

    A request takes its place once its body has arrived whole, not before: an upload trickling in over a slow link
    holds no place while it arrives (BodyLimit's deadline and byte budget bound those), so slow clients cannot starve
    the rest, and a 503 is sent after the body was read, on a connection the client can still read it from.

    The bound adapts (additive increase, multiplicative decrease) between MIN_LIMIT and max_requests so that
    requests take about target_seconds from their place to their answer: a slower or busier machine admits fewer at
    once rather than letting every request wait longer. target_seconds=0 keeps it fixed at max_requests.
    """

    MIN_LIMIT = 16  # never fewer at once: a few slow requests (many files, big images) must not starve the rest

    def __init__(
        self,
        app,
        max_requests: int,
        target_seconds: float = 0.1,
        paths: tuple[str, ...] = QUEUED_PATHS,
        retry_after: int = 1,
    ):
        self.app, self.max_requests, self.target, self.paths, self.retry_after = (
            app,
            max_requests,
            target_seconds,
            paths,
            retry_after,
        )
        self.in_flight, self.limit, self.last_decrease = 0, float(max_requests), 0.0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        admitted, started = None, False  # admitted: when the request took its place (monotonic seconds)

        async def receive_then_admit():
            nonlocal admitted
            message = await receive()
            if admitted is None and message["type"] == "http.request" and not message.get("more_body", False):
                self.take_place()
                admitted = time.monotonic()
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_then_admit, tracked_send)
        except ServerBusy as exc:  # FastAPI answers it through the app's handler; this is for any other app
            if not started:
                await send_json(send, 503, exc.detail, exc.headers)
        finally:
            if admitted is not None:
                self.in_flight -= 1
                self.adapt(time.monotonic() - admitted, time.monotonic())

    def take_place(self) -> None:
        """Count one more request in progress, or raise ServerBusy when the bound is reached."""
        if self.in_flight >= int(self.limit):
            raise ServerBusy(self.in_flight, self.max_requests, self.retry_after)
        self.in_flight += 1

    def adapt(self, seconds: float, now: float) -> None:
        """One request took `seconds`: over the target, shrink the bound by 10% (at most once per target period, as
        a whole batch finishes late together); else grow it by about one per `limit` requests."""
        if not self.target:
            return
        if seconds > self.target:
            if now - self.last_decrease > self.target:
                self.limit, self.last_decrease = max(min(self.MIN_LIMIT, self.max_requests), self.limit * 0.9), now
        else:
            self.limit = min(self.max_requests, self.limit + 1 / self.limit)


@dataclass
class Places:
    """A count of connections holding something (a body being drained, a lingering close), at most `cap` at once;
    shared by a server's connections."""

    cap: int
    taken: int = 0

    def take(self) -> bool:
        """Take a place -> whether one was free."""
        if self.taken >= self.cap:
            return False
        self.taken += 1
        return True

    def give_back(self) -> None:
        """Free a place taken."""
        self.taken -= 1


class ConnectionsFull:
    """ASGI app answering a request on a connection over the server's cap (uvicorn's limit_concurrency) in place of
    uvicorn's own answer, a plain-text 503 sent without reading the body, which a client still sending its body sees
    as a connection reset: this one reads and discards the body (at most max_bytes, within `seconds`), then answers
    503 JSON with Retry-After and closes the connection, which frees its place. At most max_connections bodies are
    drained at once; past that the answer goes out at once and the connection lingers (server.py: bounded in time,
    bytes and number, so at most three times the cap of connections are ever held) for a client still sending."""

    def __init__(self, max_connections: int, max_bytes: int, seconds: float, retry_after: int = 1):
        self.max_connections, self.max_bytes, self.seconds, self.retry_after = (
            max_connections,
            max_bytes,
            seconds,
            retry_after,
        )
        self.drains = Places(max_connections)  # bodies being drained now

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        if body_worth_draining(scope, self.max_bytes) and self.drains.take():
            try:
                await drain(receive, self.max_bytes, time.monotonic() + self.seconds)
            finally:
                self.drains.give_back()
        message = (
            f"server busy: {self.max_connections} connections open, the most it takes "
            f"(HORSES_HUMANS_SERVE_MAX_CONNECTIONS); retry after {self.retry_after} s"
        )
        await send_json(send, 503, message, {"Retry-After": str(self.retry_after), **CLOSE})


def body_worth_draining(scope, max_bytes: int) -> bool:
    """Whether a refused request's body should be read before the answer: not when its declared length is over
    max_bytes (it is never read whole), nor when the client waits for `100 Continue` (it sends no body unasked)."""
    headers = dict(scope["headers"])
    length = headers.get(b"content-length", b"")
    over = length.isdigit() and int(length) > max_bytes
    return not over and headers.get(b"expect", b"").lower() != b"100-continue"


async def drain(receive, max_bytes: int, deadline: float) -> bool:
    """Read and discard the rest of a request body, at most max_bytes, until `deadline` (time.monotonic()) -> whether
    it ended in time (then the connection is in a clean state for the answer)."""
    read = 0
    while read <= max_bytes:
        try:
            message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
        except TimeoutError:
            return False
        if message["type"] != "http.request":
            return False  # the client went away
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return read <= max_bytes
    return False


def close_if_body(scope) -> dict[str, str]:
    """CLOSE for a request that carries a body (answered before it is read, its connection ends), else no header."""
    headers = dict(scope["headers"])
    return CLOSE if headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers else {}


async def send_json(send, status: int, error: str, headers: dict[str, str]) -> None:
    """Send {"error": ...} with this status and these headers."""
    body = json.dumps({"error": error}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
