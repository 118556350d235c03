"""The streamable HTTP transport behind the same guard as ``frameseek serve``: a bearer token on every
request (compared in constant time), or, without a token, loopback only and a ``Host`` that names this
machine (a page cannot reach the server through a DNS name it rebinds to 127.0.0.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from frameseek.api import InputError, bearer_of, host_header_is_loopback, is_loopback_host, token_matches

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

MCP_PATH = "/mcp"


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


class TokenGuard:
    """401 ``{"error": ...}`` unless the request carries the server's token; without a token, 403 unless
    its ``Host`` is a loopback name."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: the session manager's start and stop
            await self.app(scope, receive, send)
            return
        if self.token is None:
            if not host_header_is_loopback(header(scope, b"host")):
                message = "this server answers only requests addressed to localhost (no token is set)"
                await JSONResponse({"error": message}, status_code=403)(scope, receive, send)
                return
        else:
            given = bearer_of(header(scope, b"authorization"))
            if not token_matches(given, self.token):
                message = (
                    "missing bearer token: send the header 'Authorization: Bearer <token>'"
                    if given is None
                    else "invalid bearer token"
                )
                response = JSONResponse(
                    {"error": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a host and a port."""
    text = address.strip()
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]") if host.startswith("[") else host
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise InputError(f"--http must be HOST:PORT (e.g. 127.0.0.1:8765), got {address!r}")
    return host, int(port_text)


def check_listen(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token."""
    if token is None and not is_loopback_host(host):
        raise InputError(
            f"refusing to listen on {host} without a token: set FRAMESEEK_TOKEN or --token-file "
            "(or listen on 127.0.0.1)"
        )


def http_app(server: MCPServer[Any], host: str, token: str | None) -> ASGIApp:
    """The server's streamable HTTP app at ``/mcp``, behind ``TokenGuard``."""
    return TokenGuard(server.streamable_http_app(streamable_http_path=MCP_PATH, host=host), token)


def run_http(server: MCPServer[Any], host: str, port: int, token: str | None) -> None:
    """Serve streamable HTTP on ``host:port`` until stopped (Ctrl-C, SIGTERM)."""
    import uvicorn

    check_listen(host, token)
    config = uvicorn.Config(
        http_app(server, host, token),
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    runner = uvicorn.Server(config)
    runner.run()
    if not runner.started:
        raise InputError(f"could not listen on {host}:{port} (see the log above)")
