"""Request limits as ASGI middlewares: a body-size cap (413) and a per-client token bucket (429).

The body is read (and counted) before the application sees it: a ``Content-Length`` over the cap is
refused at once, a chunked body as soon as it passes the cap; the application then reads the buffered
body. Clients are told apart by their socket address only: ``X-Forwarded-For`` is not trusted (behind a
reverse proxy, rate-limit there).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frameseek.service.auth import PUBLIC_PATHS

MAX_CLIENTS = 10_000
"""Buckets kept in memory (least recently seen dropped first)."""


class BodyLimit:
    """413 ``{"error": ...}`` for a request body over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> JSONResponse:
        kb = self.max_bytes / 1024
        return JSONResponse({"error": f"request body too large (limit {kb:g} KB)"}, status_code=413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
        if declared:
            try:
                size = int(declared[0])
            except ValueError:
                await JSONResponse({"error": "invalid Content-Length"}, status_code=400)(scope, receive, send)
                return
            if size > self.max_bytes:
                await self._too_large()(scope, receive, send)
                return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                await self._too_large()(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        buffered: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            return buffered.pop() if buffered else await receive()

        await self.app(scope, replay, send)


class RateLimit:
    """A token bucket per client address: ``rate`` requests per second, bursts up to ``burst``; 429 past it.

    Runs on the event loop (one thread), so the buckets need no lock. ``/health`` is not limited.
    """

    def __init__(self, app: ASGIApp, rate: float, burst: int) -> None:
        self.app = app
        self.rate = rate
        self.burst = float(burst)
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client → (tokens, when)

    def take(self, client: str, now: float | None = None) -> float:
        """Take one token for ``client``: 0.0 if allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        tokens, when = self.buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - when) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self.buckets[client] = (tokens, now)
        while len(self.buckets) > MAX_CLIENTS:
            self.buckets.popitem(last=False)
        return wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.take(str(client[0]) if client else "?")
        if wait > 0:
            await JSONResponse(
                {"error": f"too many requests: at most {self.rate:g} per second; retry in {wait:.1f} s"},
                status_code=429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )(scope, receive, send)
            return
        await self.app(scope, receive, send)
