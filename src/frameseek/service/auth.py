"""Bearer-token authentication for every path but ``/health`` (an ASGI middleware: 404s are covered too).

The token is compared in constant time (``hmac.compare_digest`` on bytes). Without a token the server
only listens on loopback (``command.serve`` refuses anything else), and then answers only requests whose
``Host`` names a loopback address: a web page cannot reach it through a DNS name it rebinds to 127.0.0.1.
"""

from __future__ import annotations

import hmac

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from frameseek.api import host_header_is_loopback

PUBLIC_PATHS = frozenset({"/health"})
"""Paths answered without a token (add "/docs" and "/openapi.json" here to publish the API schema)."""


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


def bearer_token(scope: Scope) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    value = _header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return None
    return token.strip()


class BearerAuth:
    """401 ``{"error": ...}`` unless the request carries the server's token (or the path is public)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode("utf-8") if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        if self.token is None:
            if not host_header_is_loopback(_header(scope, b"host")):
                await JSONResponse(
                    {"error": "this server answers only requests addressed to localhost (no token is set)"},
                    status_code=403,
                )(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        given = bearer_token(scope)
        if given is None or not hmac.compare_digest(given, self.token):
            message = (
                "missing bearer token: send the header 'Authorization: Bearer <token>'"
                if given is None
                else "invalid bearer token"
            )
            await JSONResponse({"error": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)
