"""``frameseek library list | remove | prune | watch``: a library kept in step with the files."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from frameseek.cli.options import LibraryNameOpt, load_api
from frameseek.cli.output import note, out

library_app = typer.Typer(help="List, prune and watch a library.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")]


@library_app.command("list")
def list_(library_name: LibraryNameOpt = "default", json_out: JsonOpt = False) -> None:
    """The library's videos: id (sha256 prefix), title, frames, and whether the file is still there."""
    load_api()
    from frameseek import api

    rows = [
        {
            "id": str(e.get("video_sha256") or "")[:12],
            "title": e.get("title"),
            "path": e.get("path"),
            "frames": e.get("frames"),
            "model": e.get("model_fingerprint"),
            "file": "ok"
            if api.file_stamp(str(e.get("path") or "")) == e.get("file")
            else "changed or missing",
        }
        for e in api.library_entries(library_name)
    ]
    if json_out:
        typer.echo(json.dumps({"library": library_name, "videos": rows}))
        return
    table = Table(title=f"library {library_name!r}: {len(rows)} indexes")
    for column in ("id", "title", "frames", "file", "path"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["id"], str(row["title"]), str(row["frames"]), row["file"], str(row["path"]))
    out.print(table)


@library_app.command()
def remove(
    video: Annotated[str, typer.Argument(help="The video's id (≥ 8 characters of its sha256) or its path.")],
    library_name: LibraryNameOpt = "default",
) -> None:
    """Drop a video from the library (its stored index stays in the cache for other libraries)."""
    load_api()
    from frameseek import api

    removed = api.remove_video(library_name, video)
    out.print(f"removed {len(removed)} index(es) of {removed[0].get('title')!r} from {library_name!r}")


@library_app.command("prune")
def prune_(library_name: LibraryNameOpt = "default", json_out: JsonOpt = False) -> None:
    """Drop videos whose file was deleted or changed since they were indexed."""
    load_api()
    from frameseek import api

    report = api.prune(library_name)
    removed = [{"path": e.get("path"), "why": why} for e, why in report.removed]
    if json_out:
        typer.echo(json.dumps({"library": library_name, "removed": removed, "refreshed": report.refreshed}))
        return
    for item in removed:
        out.print(f"removed {item['path']} ({item['why']})")
    out.print(f"{len(report.removed)} removed, {report.refreshed} touched but unchanged")


@library_app.command()
def watch(
    folder: Annotated[Path, typer.Argument(help="The folder to keep indexed (recursively).")],
    library_name: LibraryNameOpt = "default",
    interval: Annotated[float, typer.Option(help="Seconds between scans.")] = 5.0,
    once: Annotated[bool, typer.Option("--once", help="One scan, then exit.")] = False,
    fps: Annotated[float, typer.Option("--fps", help="Frames sampled per second of video.")] = 1.0,
    speech: Annotated[bool, typer.Option("--speech", help="Also transcribe speech.")] = False,
    ocr: Annotated[bool, typer.Option("--ocr", help="Also read text on screen.")] = False,
    model: Annotated[str, typer.Option("--model", "-m", help="Preset name or checkpoint folder.")] = "lite",
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per event on stdout.")] = False,
) -> None:
    """Index new and changed videos under FOLDER and drop deleted ones, until Ctrl-C (which pauses: the
    next run resumes — what was indexed stays, a half-built index is rebuilt)."""
    load_api()
    from frameseek import api

    api.check_library_name(library_name)
    sampling = api.Sampling(fps=fps)
    tracks = api.TrackOptions(speech=speech, ocr=ocr)
    searcher = api.Searcher(model, sampling=sampling)
    stop = threading.Event()

    def index_one(path: Path) -> Any:
        return searcher.add([path], library_name, tracks=tracks)

    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())  # finish the current video, then stop
    counts = {"indexed": 0, "failed": 0, "removed": 0}
    try:
        events = (
            api.scan(library_name, folder, index_one, stop=stop)
            if once
            else api.watch(library_name, folder, index_one, interval=interval, stop=stop)
        )
        for event in events:
            counts[event.kind] = counts.get(event.kind, 0) + 1
            if json_out:
                typer.echo(json.dumps({"event": event.kind, "path": event.path, "detail": event.detail}))
            elif event.kind == "failed":
                note(f"{event.path}: {event.detail}")
            else:
                out.print(f"{event.kind} {event.path}" + (f" ({event.detail})" if event.detail else ""))
    finally:
        signal.signal(signal.SIGINT, previous)
    if stop.is_set() and not json_out:
        note("paused; run the same command again to resume")
    if not json_out:
        out.print(f"{counts['indexed']} indexed, {counts['failed']} failed, {counts['removed']} removed")
