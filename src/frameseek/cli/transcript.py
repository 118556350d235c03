"""``frameseek transcript``: what was heard and read in a video, as SRT, WebVTT or JSON on stdout."""

from __future__ import annotations

from typing import Annotated

import typer

from frameseek.cli.options import (
    AsrModelOpt,
    OcrOpt,
    SpeechLanguageOpt,
    SpeechOpt,
    SubLangOpt,
    SubtitlesOpt,
    load_api,
    precheck_sources,
    tracks,
)
from frameseek.cli.output import ProgressPrinter, note


def transcript(
    source: Annotated[str, typer.Argument(help="A file, folder or link.")],
    format_: Annotated[str, typer.Option("--format", "-f", help="srt, vtt or json.")] = "srt",
    speech: SpeechOpt = False,
    ocr: OcrOpt = False,
    subtitles: SubtitlesOpt = True,
    sub_lang: SubLangOpt = "en",
    asr_model: AsrModelOpt = "base",
    speech_language: SpeechLanguageOpt = None,
) -> None:
    """Print what was heard (subtitles, or --speech recognition) and read on screen (--ocr)."""
    load_api()
    from frameseek import api

    if format_ not in ("srt", "vtt", "json"):
        raise api.InputError(f"--format must be srt, vtt or json, got {format_!r}")
    text_tracks = tracks(speech, ocr, subtitles, sub_lang, asr_model, speech_language)
    precheck_sources([source])
    with ProgressPrinter(True) as progress:
        videos = api.read_text(source, text_tracks, progress=progress)
    for video in videos:
        for notice in video.tracks.notices:
            note(notice)
    found = [t for v in videos for t in v.tracks.present()]
    if format_ == "json":
        typer.echo(api.to_json(found))
        return
    if not found:
        hint = "" if speech or ocr else "; add --speech to recognise speech or --ocr to read text on screen"
        raise api.InputError(f"no subtitles, speech or screen text found in {source}{hint}")
    spans = sorted((s for t in found for s in t.spans), key=lambda s: (s.start, s.end))
    typer.echo(api.to_srt(spans) if format_ == "srt" else api.to_vtt(spans), nl=False)
