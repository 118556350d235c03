"""``frameseek search``: a video (file, link or folder) or the library, for a sentence and/or an image."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from frameseek.cli.options import (
    DEFAULT_MODEL,
    AsrModelOpt,
    CountOpt,
    DeviceOpt,
    ExactOpt,
    FirstOpt,
    FpsOpt,
    JsonOpt,
    LastOpt,
    LibraryNameOpt,
    MinConfidenceOpt,
    MinDurationOpt,
    ModelOpt,
    OcrOpt,
    SceneGapOpt,
    SceneOpt,
    SpeechLanguageOpt,
    SpeechOpt,
    SubLangOpt,
    SubtitlesOpt,
    ThenOpt,
    WhileOpt,
    WithinOpt,
    load_api,
    moment_query,
    precheck_sources,
    sampling,
    tracks,
)
from frameseek.cli.output import ProgressPrinter, not_found_line, note, print_partial, print_results

if TYPE_CHECKING:
    from frameseek.api import SearchResponse


def search(
    args: Annotated[
        list[str],
        typer.Argument(
            help="SOURCE QUERY (a file, folder or link, then the sentence); with --library just QUERY."
        ),
    ],
    image: Annotated[
        Path | None, typer.Option("--image", help="An image as the query (alone or with the text).")
    ] = None,
    text_weight: Annotated[
        float, typer.Option(help="Weight of the text when both text and image are given.")
    ] = 0.5,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="How many moments to return.")] = 5,
    fps: FpsOpt = 1.0,
    scene: SceneOpt = False,
    scene_gap: SceneGapOpt = 10.0,
    start: Annotated[float | None, typer.Option(help="Only search from this time (seconds).")] = None,
    end: Annotated[float | None, typer.Option(help="Only search up to this time (seconds).")] = None,
    max_frames: Annotated[int | None, typer.Option(help="Sample at most this many frames.")] = None,
    exact_frames: ExactOpt = False,
    min_gap: Annotated[float, typer.Option(help="No two results closer than this (seconds).")] = 2.0,
    min_confidence: MinConfidenceOpt = 0.0,
    then: ThenOpt = None,
    within: WithinOpt = None,
    min_duration: MinDurationOpt = None,
    count: CountOpt = False,
    first: FirstOpt = False,
    last: LastOpt = False,
    while_: WhileOpt = None,
    library: Annotated[
        bool, typer.Option("--library", help="Search the library instead of a source.")
    ] = False,
    library_name: LibraryNameOpt = "default",
    export: Annotated[
        Path | None, typer.Option(help="Write each hit's frame (JPEG) and segment (MP4 with sound) here.")
    ] = None,
    pad_before: Annotated[float, typer.Option(help="--export: seconds added before each segment.")] = 0.0,
    pad_after: Annotated[float, typer.Option(help="--export: seconds added after each segment.")] = 0.0,
    supercut: Annotated[
        bool, typer.Option("--supercut", help="--export: also every hit, in order, in one supercut.mp4.")
    ] = False,
    markers: Annotated[
        Literal["edl", "otio", "fcpxml", "fcp7"] | None,
        typer.Option(
            help="--export: also markers.edl (CMX 3600), markers.otio (OpenTimelineIO), markers.fcpxml"
            " (Final Cut Pro X) or markers.xml (fcp7: Final Cut 7 XML for Premiere Pro and DaVinci Resolve)."
        ),
    ] = None,
    speech: SpeechOpt = False,
    ocr: OcrOpt = False,
    subtitles: SubtitlesOpt = True,
    sub_lang: SubLangOpt = "en",
    asr_model: AsrModelOpt = "base",
    speech_language: SpeechLanguageOpt = None,
    refine: Annotated[
        bool,
        typer.Option(
            "--refine", help="Look at every frame around each hit for the best one and sharper segment edges."
        ),
    ] = False,
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = None,
    json_out: JsonOpt = False,
    face: Annotated[
        str | None,
        typer.Option(
            "--face",
            help="Find a person: a face photo, or a known person's id (p3) or name (frameseek people).",
        ),
    ] = None,
    faces: Annotated[
        bool, typer.Option("--faces", help="Use the faces track (opt-in; a known name in QUERY also does).")
    ] = False,
    sounds: Annotated[
        bool,
        typer.Option(
            "--sounds", help="Also search what is heard: speech, singing and music events (offline)."
        ),
    ] = False,
) -> None:
    """Search a video (file, link or folder) — or the library — for a sentence and/or an image: what is
    seen, and what is said (subtitles; --speech) or written on screen (--ocr)."""
    load_api()
    from frameseek import api

    if library:
        if len(args) > 1:
            raise api.InputError("with --library give only the QUERY (no SOURCE)")
        source, query = None, (args[0] if args else None)
    else:
        if not args or len(args) > 2:
            raise api.InputError('give SOURCE and QUERY, e.g. frameseek search video.mp4 "a dog on a beach"')
        source, query = args[0], (args[1] if len(args) > 1 else None)
    if face is not None:
        if library or source is None or query is not None or image is not None:
            raise api.InputError(
                "with --face give only SOURCE, e.g. frameseek search video.mp4 --face alice.jpg"
            )
        face_search(source, face, top_k, min_confidence, json_out)
        return
    if query is None and image is None:
        raise api.InputError("give a text QUERY, --image, or both")
    api.check_text(query)  # an empty sentence fails before the model is loaded (seconds of work)
    api.check_device_spec(device)
    api.check_min_confidence(min_confidence)
    moments = moment_query(query, then, within, min_duration, count, first, last, while_)
    if moments is not None and (library or image is not None or refine):
        raise api.InputError(
            "--then, --within, --min-duration, --count, --first, --last and --while search a SOURCE for text:"
            " leave out --library, --image and --refine"
        )
    how = sampling(fps, scene, scene_gap, start, end, max_frames, exact_frames)
    text_tracks = tracks(speech, ocr, subtitles, sub_lang, asr_model, speech_language)
    if faces:  # a known name in the query adds the faces track by itself (Searcher.search)
        text_tracks = dataclasses.replace(text_tracks, extra=text_tracks.extra | {"faces"})
    if sounds:
        text_tracks = dataclasses.replace(text_tracks, extra=text_tracks.extra | {"sounds"})
    if source is not None:
        precheck_sources([source])
    with ProgressPrinter(not json_out) as progress:
        searcher = api.Searcher(model, sampling=how, progress=progress, device=device)  # no model yet
        query_image = (
            None if image is None else api.load_query_image(image, max_pixels=searcher.limits.max_pixels)
        )
        q = searcher.query(query, query_image, text_weight)
        if library:
            response = searcher.search_library(
                q, library=library_name, top_k=top_k, min_gap=min_gap, min_confidence=min_confidence
            )
        else:
            assert source is not None
            response = searcher.search(
                source,
                moments or q,
                top_k=top_k,
                min_gap=min_gap,
                tracks=text_tracks,
                on_partial=None if json_out else print_partial,
                refine=refine,
                min_confidence=min_confidence,
            )
    data = response.as_dict()
    if export is not None:
        data.update(
            export_for_editors(response, export, pad_before, pad_after, supercut=supercut, markers=markers)
        )
    if json_out:
        typer.echo(json.dumps(data))
    else:
        for notice in response.notices:
            note(notice)
        if response.count and moments is not None and moments.count:
            count_line(data)
        if not response.found:
            where = f"the library {library_name!r}" if library else None
            not_found_line(data, where)
        print_results(data)
    searcher.prepare_query_engine()  # once the model was loaded: later text queries need not


def face_search(source: str, face: str, top_k: int, min_confidence: float, json_out: bool) -> None:
    """``--face``: where the person on a photo (or known by id or name) appears in SOURCE."""
    from frameseek import api

    photo = Path(face).expanduser()
    looks_like_file = photo.is_file() or photo.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
    precheck_sources([source])
    with ProgressPrinter(not json_out) as progress:
        response = api.find_person(
            source,
            face=photo if looks_like_file else None,
            person=None if looks_like_file else face,
            top_k=top_k,
            min_confidence=min_confidence,
            progress=progress,
        )
    data = response.as_dict()
    if json_out:
        typer.echo(json.dumps(data))
        return
    for notice in response.notices:
        note(notice)
    if not response.found:
        not_found_line(data, None)
    print_results(data)


def export_for_editors(
    response: SearchResponse,
    folder: Path,
    pad_before: float,
    pad_after: float,
    *,
    supercut: bool,
    markers: Literal["edl", "otio", "fcpxml", "fcp7"] | None,
) -> dict[str, Any]:
    """``--export``: each hit's frame and clip, then the supercut and markers; the keys added to the JSON
    (``exports``, ``supercut``, ``markers``). The one place the command line calls the editors' exports."""
    from frameseek import api

    data: dict[str, Any] = {
        "exports": api.export_hits(response.results, folder, pad_before=pad_before, pad_after=pad_after)
    }
    edits = api.export_for_editing(
        response.results,
        folder,
        supercut=supercut,
        markers=markers,
        pad_before=pad_before,
        pad_after=pad_after,
        query=response.query,
    )
    data.update(edits)
    return data


def count_line(data: dict[str, Any]) -> None:
    """``--count``: "3 moments in montage.mp4 match 'a man talking'" (the list follows)."""
    from frameseek.cli.output import out

    source = str(data["source"])
    name = source if "://" in source else Path(source).name or source
    n = int(data["count"])
    what = "1 moment" if n == 1 else f"{n} moments"
    verb = "matches" if n == 1 else "match"
    out.print(f"{what} in {name} {verb} '{data['query']}'", highlight=False, soft_wrap=True, markup=False)
