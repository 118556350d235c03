"""``frameseek models``: the model presets (sizes, weights available offline), or fetch one's weights."""

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
            help="Fetch a preset's hub weights into the local Hugging Face cache for later offline use.",
        ),
    ] = None,
) -> None:
    """List model presets: parameters per part, embedding size, weights available offline."""
    load_api()
    from frameseek import api

    if download is not None:
        folders = api.download_preset(download)
        if json_out:
            typer.echo(json.dumps({"model": download, "folders": [str(f) for f in folders]}))
        else:
            for folder in folders:
                typer.echo(f"{download}: {folder}")
        return
    rows = api.describe_presets()
    if json_out:
        typer.echo(json.dumps(rows))
    else:
        typer.echo(api.format_presets(rows))
