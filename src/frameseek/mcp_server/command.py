"""The MCP server's launcher: what ``frameseek mcp`` (``cli/mcp.py``) calls with its options."""

from __future__ import annotations

from pathlib import Path


def serve_mcp(
    *,
    http: str | None = None,
    media: list[Path] | None = None,
    exports: Path | None = None,
    token_file: Path | None = None,
    allow_private_links: bool = False,
    model: str = "auto",
    device: str | None = None,
) -> None:
    """Serve over stdio (what desktop assistants launch), or streamable HTTP on ``http`` (HOST:PORT).

    Everything that can be refused is refused before the server starts: a bad address, a missing
    ``--media`` folder, a short token, a non-loopback host without a token, a device that is not there.
    The model loads at the first call that needs it.
    """
    from frameseek.api import check_device_spec, media_roots, read_token, resolve_device
    from frameseek.mcp_server.config import McpSettings
    from frameseek.mcp_server.http import check_listen, parse_address, run_http
    from frameseek.mcp_server.server import build_server

    check_device_spec(device)
    address = None if http is None else parse_address(http)
    token = None if address is None else read_token(token_file)
    options = {} if exports is None else {"exports": Path(exports).expanduser().absolute()}
    settings = McpSettings(
        media=media_roots(list(media or [])),
        allow_private_links=allow_private_links,
        model=model,
        device=device,
        token=token,
        **options,
    )
    if device is not None:
        resolve_device(device)
    if address is None:
        build_server(settings).run("stdio")
        return
    host, port = address
    check_listen(host, token)
    run_http(build_server(settings), host, port, token)
