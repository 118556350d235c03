"""``frameseek index``: videos into a library (here, or on a Ray cluster), for ``search --library``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from frameseek.cli.options import (
    DEFAULT_MODEL,
    AsrModelOpt,
    DeviceOpt,
    ExactOpt,
    FpsOpt,
    JsonOpt,
    LibraryNameOpt,
    ModelOpt,
    OcrOpt,
    SceneGapOpt,
    SceneOpt,
    SpeechLanguageOpt,
    SpeechOpt,
    SubLangOpt,
    SubtitlesOpt,
    load_api,
    precheck_sources,
    sampling,
    tracks,
)
from frameseek.cli.output import ProgressPrinter, error_line, metrics_line, note, out


def index(
    sources: Annotated[list[str], typer.Argument(help="Files, folders or links to add to the library.")],
    library_name: LibraryNameOpt = "default",
    fps: FpsOpt = 1.0,
    scene: SceneOpt = False,
    scene_gap: SceneGapOpt = 10.0,
    exact_frames: ExactOpt = False,
    speech: SpeechOpt = False,
    ocr: OcrOpt = False,
    subtitles: SubtitlesOpt = True,
    sub_lang: SubLangOpt = "en",
    asr_model: AsrModelOpt = "base",
    speech_language: SpeechLanguageOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = None,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray", help="Index on a Ray cluster: a local one on every core (needs frameseek[ray])."
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Join this Ray cluster instead: host:port, ray://host:port, or auto (RAY_ADDRESS); implies --ray.",
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", help="FRAMESEEK_HOME for this run; with a multi-machine cluster, a shared folder."
        ),
    ] = None,
    json_out: JsonOpt = False,
    faces: Annotated[
        bool, typer.Option("--faces", help="Also find faces and group them into people (opt-in; see README).")
    ] = False,
    sounds: Annotated[
        bool, typer.Option("--sounds", help="Also detect what is heard: speech, singing and music events.")
    ] = False,
) -> None:
    """Index videos into a library (reusing stored indexes) for `frameseek search --library`; with
    subtitles, --speech and --ocr their text tracks too. A video that fails is reported and the rest still
    land: the exit code is 0 when at least one video landed, 1 when every one failed."""
    if home is not None:
        os.environ["FRAMESEEK_HOME"] = str(home.expanduser().resolve())  # the workers write here too
    load_api()
    from frameseek import api

    how = sampling(fps, scene, scene_gap, exact_frames=exact_frames)
    text_tracks = tracks(speech, ocr, subtitles, sub_lang, asr_model, speech_language)
    if faces:
        text_tracks = dataclasses.replace(text_tracks, extra=text_tracks.extra | {"faces"})
    if sounds:
        text_tracks = dataclasses.replace(text_tracks, extra=text_tracks.extra | {"sounds"})
    api.library_entries(library_name)  # a bad library name fails before any work
    api.check_device_spec(device)
    precheck_sources(sources)
    distributor = None
    if ray or ray_address is not None:  # InputError when ray is missing
        distributor = api.create_ray_distributor(ray_address, model=model, device=device)
    elif device is not None:
        api.resolve_device(device)  # a GPU that is not here: one line now, not one failure per video
    with ProgressPrinter(not json_out) as progress, distributor or contextlib.nullcontext():
        searcher = api.Searcher(
            model, sampling=how, progress=progress, distributor=distributor, device=device
        )
        outcomes, metrics = searcher.add(sources, library_name, tracks=text_tracks, keep_going=True)
    searcher.prepare_query_engine()  # the model is loaded now: later text queries need not load it
    indexes = [o.index for o in outcomes if o.index is not None]
    data: dict[str, Any] = {
        "library": library_name,
        "model": searcher.model_name,
        "videos": [
            {"video": i.video_path, "title": i.title, "frames": len(i), "index": str(i.folder)}
            for i in indexes
        ],
        "failed": [{"video": str(o.job.source.path), "error": o.error} for o in outcomes if o.error],
        "metrics": metrics.as_dict(),
        "notices": api.frame_limit_notices(indexes),
    }
    if json_out:
        typer.echo(json.dumps(data))
    else:
        table = Table(title=f"library {library_name!r} [{data['model']}]")
        for column in ("video", "frames", "index"):
            table.add_column(column)
        for v in data["videos"]:
            table.add_row(v["title"], str(v["frames"]), v["index"])
        out.print(table)
        out.print(metrics_line(data["metrics"]))
        for notice in data["notices"]:
            note(notice)
        for failure in data["failed"]:
            error_line("failed", failure["error"])
    if not indexes:
        raise api.FrameseekError(f"no video was indexed ({len(data['failed'])} failed)")
