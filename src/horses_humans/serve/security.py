"""Who may call the server: an API key on /v1/* (ApiKey) and, against DNS rebinding, the Host names it answers
(HostCheck).
"""

from __future__ import annotations

import hmac

from .limits import close_if_body, send_json

KEY_HEADER = "X-API-Key"
KEY_PREFIX = "/v1/"  # the paths that need the key; the page, /healthz and the docs do not
KEY_HELP = "send `Authorization: Bearer KEY` or `X-API-Key: KEY` (the key `serve` was given with --api-key)"


class ApiKey:
    """ASGI middleware: 401 for a request to `prefix` without the key, compared in constant time (sent before any body
    is read; server.py lingers so a client still sending reads it)."""

    def __init__(self, app, key: str, prefix: str = KEY_PREFIX):
        self.app, self.key, self.prefix = app, key.encode(), prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix) or scope["method"] == "OPTIONS":
            return await self.app(scope, receive, send)
        given = presented_key(dict(scope["headers"]))
        if given is not None and hmac.compare_digest(given, self.key):
            return await self.app(scope, receive, send)
        problem = "this server needs an API key" if given is None else "wrong API key"
        headers = {"WWW-Authenticate": "Bearer", **close_if_body(scope)}
        await send_json(send, 401, f"{problem}: {KEY_HELP}", headers)


def presented_key(headers: dict[bytes, bytes]) -> bytes | None:
    """The key in `X-API-Key`, else in `Authorization: Bearer ...`, else None."""
    name = KEY_HEADER.lower().encode()
    if name in headers:
        return headers[name].strip()
    scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
    return token.strip() if scheme.lower() == b"bearer" and token.strip() else None


class HostCheck:
    """ASGI middleware: 400 for a Host header not among `hosts` (port ignored); a "*." entry matches subdomains."""

    def __init__(self, app, hosts: tuple[str, ...]):
        self.app, self.hosts = app, tuple(h.lower() for h in hosts)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host = host_name(dict(scope["headers"]).get(b"host", b"").decode("latin-1"))
        if not any(host == h or (h.startswith("*.") and host.endswith(h[1:])) for h in self.hosts):
            message = (
                f"Host {host or '(none)'!r} is not served here; open {self.hosts[0]} instead, or allow it with "
                "`serve --allowed-host NAME` (HORSES_HUMANS_SERVE_ALLOWED_HOSTS)"
            )
            return await send_json(send, 400, message, close_if_body(scope))
        return await self.app(scope, receive, send)


def host_name(header: str) -> str:
    """'Example.com:8000' -> 'example.com', '[::1]:8000' -> '::1'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header
