"""``frameseek people``: who is in a video or the library, naming a person, forgetting face data.

frameseek people VIDEO | --library       each person: id, name, screen time, appearances, thumbnail
frameseek people name ID "Alice"         name a person (then "Alice at the whiteboard" finds her there)
frameseek people forget [VIDEO]          delete face data (one video's, or all of it)
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from frameseek.cli.options import JsonOpt, load_api
from frameseek.cli.output import ProgressPrinter, note

USAGE = 'give VIDEO, --library, name ID "NAME" or forget [VIDEO] (see frameseek people --help)'


def people(
    args: Annotated[
        list[str] | None,
        typer.Argument(help='VIDEO, or: name ID "NAME", or: forget [VIDEO].', show_default=False),
    ] = None,
    library: Annotated[bool, typer.Option("--library", help="Everyone seen in any video so far.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Who is there: the people found in a video (their faces are read now if they were not yet) or in the
    whole library, with a face thumbnail, screen time and appearances; name them; forget face data."""
    load_api()
    from frameseek import api

    words = list(args or [])
    if words[:1] == ["name"]:
        if len(words) != 3 or library:
            raise api.InputError('name a person with: frameseek people name ID "NAME"')
        show({"person": api.name_person(words[1], words[2])}, json_out, f"{words[1]} is now {words[2]!r}")
        return
    if words[:1] == ["forget"]:
        if len(words) > 2 or library:
            raise api.InputError("forget face data with: frameseek people forget [VIDEO]")
        removed = api.forget_faces(words[1] if len(words) == 2 else None)
        what = f"face data of {words[1]}" if len(words) == 2 else "all face data"
        show({"forgotten": removed}, json_out, f"{what} deleted ({removed} people removed)")
        return
    if library == bool(words) or len(words) > 1:
        raise api.InputError(USAGE)
    with ProgressPrinter(not json_out) as progress:
        rows = api.list_people(None if library else words[0], progress=progress)
    if json_out:
        typer.echo(json.dumps({"people": rows}))
        return
    if not rows:
        note("no people found" + ("" if library else f" in {words[0]}"))
    for row in rows:
        typer.echo(line(row))


def line(row: dict[str, Any]) -> str:
    """One person as a line: id, name, screen time, appearances, where the thumbnail is."""
    name = f" {row['name']!r}" if row["name"] else ""
    spans = ", ".join(f"{a:.1f}-{b:.1f}s" for v in row["videos"] for a, b in v["appearances"][:6])
    return (
        f"{row['id']}{name}: {row['screen_time']:.1f} s on screen, {row['appearances']} appearance(s)"
        f" [{spans}] thumbnail {row['thumbnail']}"
    )


def show(data: dict[str, Any], json_out: bool, text: str) -> None:
    if json_out:
        typer.echo(json.dumps(data))
    else:
        typer.echo(text)
