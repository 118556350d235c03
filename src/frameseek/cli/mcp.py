"""``frameseek mcp``: the Model Context Protocol server for assistants (stdio, or streamable HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frameseek.cli.options import DEFAULT_MODEL, DeviceOpt, ModelOpt, load_api


def mcp(
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            metavar="HOST:PORT",
            help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (a non-loopback host needs "
            "a token).",
        ),
    ] = None,
    media: Annotated[
        list[Path] | None,
        typer.Option(
            "--media", help="A folder whose videos and images clients may name by path (repeatable)."
        ),
    ] = None,
    exports: Annotated[
        Path | None,
        typer.Option(
            "--exports",
            help="Where clips, supercuts and markers are written (default: FRAMESEEK_HOME/mcp/exports).",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="--http: file holding the bearer token (else $FRAMESEEK_TOKEN)."),
    ] = None,
    allow_private_links: Annotated[
        bool,
        typer.Option(
            "--allow-private-links",
            help="Let links reach loopback, private, link-local and other non-public addresses.",
        ),
    ] = False,
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = None,
) -> None:
    """Serve frameseek to assistants over the Model Context Protocol: search, index, transcript, library and
    export tools (stdio by default; --http HOST:PORT for streamable HTTP, guarded like `frameseek serve`)."""
    load_api()
    from frameseek.mcp_server.command import serve_mcp

    serve_mcp(
        http=http,
        media=list(media or []),
        exports=exports,
        token_file=token_file,
        allow_private_links=allow_private_links,
        model=model,
        device=device,
    )
