"""Write timed text as SubRip (``.srt``), WebVTT (``.vtt``) or JSON, e.g. to export what was read or heard."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from frameseek.errors import InputError
from frameseek.text.spans import TextSpan, TextTrack
from frameseek.timecode import format_timecode


def _times(span: TextSpan, index: int) -> tuple[float, float]:
    """The span's ``(start, end)``, end clamped to start; InputError for a negative or non-finite time."""
    if not (math.isfinite(span.start) and math.isfinite(span.end)) or span.start < 0:
        raise InputError(f"span {index + 1} has invalid times {span.start!r} to {span.end!r}")
    return span.start, max(span.start, span.end)


def _cue_lines(text: str) -> list[str]:
    """Non-empty lines of a cue (an empty line would end it); ``-->`` would read as a timing line."""
    lines = [line.strip().replace("-->", "->") for line in text.splitlines()]
    return [line for line in lines if line]


def _ordered(spans: Iterable[TextSpan]) -> list[tuple[int, TextSpan]]:
    return sorted(enumerate(spans), key=lambda item: (item[1].start, item[1].end, item[0]))


def to_srt(spans: Iterable[TextSpan]) -> str:
    """SubRip text: cues numbered from 1 in time order, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``; empty spans left out."""
    blocks: list[str] = []
    for index, span in _ordered(spans):
        lines = _cue_lines(span.text)
        if not lines:
            continue
        start, end = _times(span, index)
        timing = f"{format_timecode(start).replace('.', ',')} --> {format_timecode(end).replace('.', ',')}"
        blocks.append("\n".join([str(len(blocks) + 1), timing, *lines]))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def _vtt_escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(spans: Iterable[TextSpan]) -> str:
    """WebVTT text: a ``WEBVTT`` header, cues in time order, ``HH:MM:SS.mmm --> HH:MM:SS.mmm``, text escaped."""
    blocks = ["WEBVTT"]
    for index, span in _ordered(spans):
        lines = _cue_lines(span.text)
        if not lines:
            continue
        start, end = _times(span, index)
        timing = f"{format_timecode(start)} --> {format_timecode(end)}"
        blocks.append("\n".join([timing, *(_vtt_escape(line) for line in lines)]))
    return "\n\n".join(blocks) + "\n"


def _track_dict(track: TextTrack) -> dict[str, Any]:
    spans = []
    for index, span in _ordered(track.spans):
        start, end = _times(span, index)
        spans.append(
            {
                "start": start,
                "end": end,
                "start_timecode": format_timecode(start),
                "end_timecode": format_timecode(end),
                "text": span.text,
                "language": span.language,
            }
        )
    return {
        "kind": track.kind,
        "origin": track.origin,
        "language": track.language,
        "info": track.info,
        "spans": spans,
    }


def to_json(tracks: TextTrack | Iterable[TextTrack]) -> str:
    """``{"tracks": [{kind, origin, language, info, spans: [{start, end, start_timecode, end_timecode, text,
    language}]}]}``
    with seconds as numbers and ``HH:MM:SS.mmm`` timecodes, spans in time order."""
    items = [tracks] if isinstance(tracks, TextTrack) else list(tracks)
    return json.dumps({"tracks": [_track_dict(t) for t in items]}, ensure_ascii=False, indent=2)
