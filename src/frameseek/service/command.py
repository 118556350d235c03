"""``frameseek serve``: the HTTP API under uvicorn (wired into the CLI as ``app.command(name="serve")``).

Everything that can be refused is refused before the model loads or a port is bound: a non-loopback
``--host`` without a token, a short token, a missing ``--media`` folder, another server on the same
FRAMESEEK_HOME.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # imported when `serve` runs: `frameseek --help` registers this command without them
    from frameseek.service.config import ServiceSettings

_MB = 1024 * 1024


def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on (a non-loopback one needs a token).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    media: Annotated[
        list[Path] | None,
        typer.Option("--media", help="A folder whose videos clients may name by path (repeatable)."),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="File holding the bearer token (else $FRAMESEEK_TOKEN)."),
    ] = None,
    allow_private_links: Annotated[
        bool,
        typer.Option(
            "--allow-private-links",
            help="Let links reach loopback, private, link-local and other non-public addresses.",
        ),
    ] = False,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Preset name (see `frameseek models`) or checkpoint folder.")
    ] = "lite",
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="Where the model runs: auto (default; or $FRAMESEEK_DEVICE), cpu, cuda, cuda:N or mps.",
        ),
    ] = None,
    max_request_kb: Annotated[
        int, typer.Option(help="Largest request body in KB (an image query in base64 included).")
    ] = 1024,
    rate_limit: Annotated[float, typer.Option(help="Requests per second per client address.")] = 10.0,
    rate_burst: Annotated[int, typer.Option(help="Requests a client may send at once above the rate.")] = 40,
    max_image_decodes: Annotated[
        int, typer.Option(help="Query images decoded at once (each up to 8192² px); others wait, then 503.")
    ] = 2,
    id_ttl: Annotated[
        float,
        typer.Option(
            "--id-ttl",
            envvar="FRAMESEEK_ID_TTL",
            help="Seconds a thumbnail / clip id stays valid (default a day; or $FRAMESEEK_ID_TTL).",
        ),
    ] = 24 * 3600.0,
) -> None:
    """Serve the search API over HTTP (OpenAPI docs at /docs); a bearer token guards all but /health."""
    from filelock import FileLock, Timeout

    from frameseek.api import InputError, check_device_spec, is_loopback_host, media_roots, resolve_device
    from frameseek.service.config import ServiceSettings, read_token

    check_device_spec(device)
    token = read_token(token_file)
    if token is None and not is_loopback_host(host):
        raise InputError(
            f"refusing to listen on {host} without a token: set FRAMESEEK_TOKEN or --token-file "
            "(or listen on 127.0.0.1)"
        )
    settings = ServiceSettings(
        host=host,
        port=port,
        media=media_roots(list(media or [])),
        token=token,
        allow_private_links=allow_private_links,
        model=model,
        device=device,
        max_body_bytes=max_request_kb * 1024,
        rate_per_s=rate_limit,
        rate_burst=rate_burst,
        id_ttl_s=id_ttl,
        max_image_decodes=max_image_decodes,
    )
    if device is not None:
        resolve_device(device)  # a GPU that is not there: refused before a port is bound
    settings.home.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.home / "server.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise InputError(
            f"another frameseek server uses {settings.home}; stop it or set FRAMESEEK_HOME"
        ) from None
    try:
        run_server(settings)
    finally:
        lock.release()


def run_server(settings: ServiceSettings) -> None:
    """Run uvicorn on ``settings.host:port`` until it is stopped (Ctrl-C, SIGTERM)."""
    import uvicorn

    from frameseek.api import InputError
    from frameseek.service.app import create_app

    _service_log()
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        proxy_headers=False,  # the client address is the socket's: rate limits cannot be dodged by a header
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise InputError(f"could not listen on {settings.host}:{settings.port} (see the log above)")


def _service_log() -> None:
    """The service's own lines (model ready, jobs resumed, errors) on stderr beside uvicorn's."""
    logger = logging.getLogger("frameseek.service")
    if not any(getattr(h, "_frameseek_service", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:     frameseek: %(message)s"))
        handler._frameseek_service = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
