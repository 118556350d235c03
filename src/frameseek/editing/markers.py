"""Edit markers for chosen hits: a CMX 3600 EDL and an OpenTimelineIO timeline, one clip per hit.

Both describe the same cut as ``export_supercut``: each hit's segment with its handles, clamped to its
video, one after another on the record side. Times are whole frames: the EDL's at one rate for the whole
list (timecodes non-drop unless asked, and then only for the NTSC rates that have drop-frame timecode);
the OTIO clips each at their own source's rate, their media references pointing at the source files.
Final Cut Pro X ``.fcpxml`` and Final Cut 7 XML (Premiere Pro, DaVinci Resolve) are written from that
OTIO timeline by OpenTimelineIO's adapters (``timelines``): the rough cut and each source with its markers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, Protocol

import opentimelineio as otio

from frameseek.editing.clips import check_pads, has_audio, padded_window
from frameseek.editing.timelines import EDITOR_FORMATS, EDITOR_MIME, EDITOR_SUFFIXES, editor_text
from frameseek.errors import FrameseekError, InputError, one_line
from frameseek.video.decode import VideoInfo, probe

MarkerFormat = Literal["edl", "otio", "fcpxml", "fcp7"]
MARKER_FORMATS: tuple[MarkerFormat, ...] = ("edl", "otio", *EDITOR_FORMATS)
MARKER_SUFFIXES = {"edl": ".edl", "otio": ".otio", **EDITOR_SUFFIXES}
MARKER_MIME = {"edl": "text/plain", "otio": "application/json", **EDITOR_MIME}
MARKER_LABELS = {
    "edl": "CMX 3600 EDL (Avid, Premiere, Resolve, most editors)",
    "otio": "OpenTimelineIO (Resolve, otio tools)",
    "fcpxml": "Final Cut Pro X (.fcpxml)",
    "fcp7": "Final Cut 7 XML (Premiere Pro, DaVinci Resolve)",
}
"""What each markers format is, for pickers and help texts."""

EdlTrack = Literal["V", "A", "A2", "AA", "B", "AA/V"]
EDL_TRACKS: tuple[str, ...] = ("V", "A", "A2", "AA", "B", "AA/V")
REEL_CHARS = 8
"""CMX 3600 reel names are at most 8 characters."""
TITLE_CHARS = 70
DEFAULT_FPS = 25.0
_NTSC = (24, 30, 48, 60, 120)
"""Nominal rates whose NTSC variant is ``n * 1000 / 1001`` frames per second."""
_DROP_FRAMES = {30: 2, 60: 4}
"""Frame numbers dropped each minute (but every tenth) by drop-frame timecode, per nominal rate."""
MATCH_COLORS = {"visual": "BLUE", "speech": "ORANGE", "screen": "PURPLE"}
"""OTIO marker colour per match kind (the app's badge colours)."""


class MarkedHit(Protocol):
    """What a marker is made from: ``SearchResult`` (or any object with these attributes)."""

    @property
    def video(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def time(self) -> float: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def score(self) -> float: ...
    @property
    def match(self) -> str: ...
    @property
    def text(self) -> str | None: ...


# ---------------------------------------------------------------------------------------- time


def frame_rate(fps: float) -> Fraction:
    """``fps`` as an exact rate: 29.97 → 30000/1001 (the NTSC rates), 25 → 25, else to 1/1001."""
    if not (math.isfinite(fps) and 0 < fps <= 1000):
        raise InputError(f"fps must be a positive number of frames per second, got {fps}")
    for nominal in _NTSC:
        ntsc = Fraction(nominal * 1000, 1001)
        if abs(fps - float(ntsc)) < 0.005:
            return ntsc
    return Fraction(fps).limit_denominator(1001)


def timecode(frames: int, rate: Fraction, *, drop_frame: bool = False) -> str:
    """``HH:MM:SS:FF`` for a frame count (``HH:MM:SS;FF`` drop-frame), counting at the nominal rate.

    Non-drop timecode at 29.97 fps counts 30 frame numbers a second, so it runs 0.1% slower than the
    clock; drop-frame skips frame numbers 0 and 1 (0–3 at 59.94) each minute except every tenth, so it
    stays with the clock. Hours wrap at 24.
    """
    if frames < 0:
        raise InputError(f"a timecode cannot be negative ({frames} frames)")
    base = round(rate)
    if drop_frame:
        drop = _DROP_FRAMES.get(base)
        if drop is None or rate == base:
            raise InputError(f"drop-frame timecode exists only at 29.97 and 59.94 fps, not {float(rate):g}")
        per_minute = base * 60 - drop
        per_ten = per_minute * 10 + drop
        tens, rest = divmod(frames, per_ten)
        frames += drop * 9 * tens + (drop * ((rest - drop) // per_minute) if rest >= drop else 0)
    seconds, ff = divmod(frames, base)
    minutes, ss = divmod(seconds, 60)
    hours, mm = divmod(minutes, 60)
    return f"{hours % 24:02d}:{mm:02d}:{ss:02d}{';' if drop_frame else ':'}{ff:02d}"


# ---------------------------------------------------------------------------------------- cuts


@dataclass(frozen=True)
class Cut:
    """One hit's piece of the edit: its source, in and out points (seconds, with handles), rank."""

    rank: int
    hit: MarkedHit
    first: float
    last: float
    info: VideoInfo | None
    """The source's header (None when it cannot be read now: times are then not clamped to its end)."""


def cuts(hits: Sequence[MarkedHit], *, pad_before: float = 0.0, pad_after: float = 0.0) -> list[Cut]:
    """Each hit's in and out points: its segment with the handles, clamped to its video (as the supercut)."""
    check_pads(pad_before, pad_after)
    infos: dict[str, VideoInfo | None] = {}
    result = []
    for rank, hit in enumerate(hits, 1):
        video = str(hit.video)
        if video not in infos:
            try:
                infos[video] = probe(video)
            except FrameseekError:
                infos[video] = None
        info = infos[video]
        first, last = padded_window(
            hit.start,
            hit.end,
            pad_before=pad_before,
            pad_after=pad_after,
            duration=info.duration if info is not None else None,
        )
        result.append(Cut(rank, hit, first, last, info))
    return result


def frame_number(seconds: float, rate: Fraction) -> int:
    """The frame nearest ``seconds`` at ``rate`` (halves round up; ``seconds`` taken to the microsecond, so
    0.3 s is 3/10 s, not the binary float just below it)."""
    return math.floor(Fraction(seconds).limit_denominator(1_000_000) * rate + Fraction(1, 2))


def _frames(first: float, last: float, rate: Fraction) -> tuple[int, int]:
    """In and out frame numbers (out exclusive, at least one frame after in)."""
    start = frame_number(first, rate)
    return start, max(start + 1, frame_number(last, rate))


def _describe(hit: MarkedHit, rank: int, query: str | None) -> str:
    """The marker text: rank, score, match kind, the query and the matched words."""
    parts = [f"frameseek #{rank}", f"score {hit.score:.4f}", f"match {hit.match}"]
    if query:
        parts.append(f"query “{one_line(query)}”")
    if hit.text:
        parts.append(f"text “{one_line(hit.text)}”")
    return " · ".join(parts)


# ---------------------------------------------------------------------------------------- EDL


def reel_names(videos: Sequence[str]) -> dict[str, str]:
    """A distinct CMX reel name (``[A-Z0-9_]``, at most 8 characters) per video, from its file name."""
    names: dict[str, str] = {}
    for video in videos:
        if video in names:
            continue
        base = re.sub(r"[^A-Z0-9_]+", "", Path(video).stem.upper().replace("-", "_").replace(" ", "_"))
        base = base[:REEL_CHARS] or "REEL"
        name, n = base, 1
        while name in names.values():
            n += 1
            name = f"{base[: REEL_CHARS - len(str(n))]}{n}"
        names[video] = name
    return names


def edl(
    hits: Sequence[MarkedHit],
    *,
    fps: float | None = DEFAULT_FPS,
    title: str | None = None,
    query: str | None = None,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
    drop_frame: bool = False,
    reel: Literal["AX", "name"] = "AX",
    track: EdlTrack = "V",
    record_start: float = 0.0,
) -> str:
    """A CMX 3600 edit decision list: one cut (``C``) event per hit, in the order given.

    Source in/out are each hit's segment with its handles (clamped to its video); record in/out follow one
    another from ``record_start`` seconds. Every timecode is at ``fps`` (None: the first hit's source rate,
    else 25), declared by ``FCM: NON-DROP FRAME`` (``drop_frame``: ``FCM: DROP FRAME``, 29.97 / 59.94 only).
    Reels are ``AX`` (an auxiliary source, linked by the ``* FROM CLIP NAME:`` comment, as Premiere and
    Resolve do) or, with ``reel="name"``, up to 8 characters of the file name; ``* SOURCE FILE:`` gives the
    path and ``* COMMENT:`` the rank, score, match kind, query and matched words.
    """
    if track not in EDL_TRACKS:
        raise InputError(f"track must be one of {', '.join(EDL_TRACKS)}, got {track!r}")
    if reel not in ("AX", "name"):
        raise InputError(f"reel must be 'AX' or 'name', got {reel!r}")
    if not (math.isfinite(record_start) and record_start >= 0):
        raise InputError(f"record_start must be a non-negative number of seconds, got {record_start}")
    pieces = cuts(hits, pad_before=pad_before, pad_after=pad_after)
    if fps is None:
        known = next((c.info.fps for c in pieces if c.info is not None and c.info.fps), None)
        fps = known or DEFAULT_FPS
    rate = frame_rate(fps)
    if drop_frame:
        timecode(0, rate, drop_frame=True)  # a rate without drop-frame timecode fails before any work
    name = one_line(title or (f"frameseek - {query}" if query else "frameseek"))[:TITLE_CHARS]
    reels = reel_names([str(c.hit.video) for c in pieces]) if reel == "name" else {}
    lines = [f"TITLE: {name}", f"FCM: {'DROP FRAME' if drop_frame else 'NON-DROP FRAME'}", ""]
    record = frame_number(record_start, rate)
    for event, piece in enumerate(pieces, 1):
        if event > 999:
            raise InputError("a CMX 3600 EDL holds at most 999 events")
        source_in, source_out = _frames(piece.first, piece.last, rate)
        record_out = record + source_out - source_in

        def tc(frames: int) -> str:
            return timecode(frames, rate, drop_frame=drop_frame)

        video = str(piece.hit.video)
        reel_name = reels.get(video, "AX")
        lines += [
            f"{event:03d}  {reel_name:<8} {track:<5} {'C':<8} "
            f"{tc(source_in)} {tc(source_out)} {tc(record)} {tc(record_out)}",
            f"* FROM CLIP NAME: {one_line(Path(video).name)}",
            f"* SOURCE FILE: {one_line(str(Path(video).resolve()))}",
            f"* COMMENT: {_describe(piece.hit, piece.rank, query)} · at {tc(frame_number(piece.hit.time, rate))}",
            "",
        ]
        record = record_out
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- OTIO


def _metadata(hit: MarkedHit, rank: int, query: str | None) -> dict[str, Any]:
    return {
        "rank": rank,
        "query": query,
        "score": float(hit.score),
        "match": hit.match,
        "text": hit.text,
        "time": float(hit.time),
        "start": float(hit.start),
        "end": float(hit.end),
    }


def _media(video: str, info: VideoInfo | None, rate: Fraction) -> Any:
    """An external reference to the source file (its whole length, when known)."""
    available = None
    if info is not None and info.duration:
        available = otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, float(rate)),
            otio.opentime.RationalTime(frame_number(info.duration, rate), float(rate)),
        )
    return otio.schema.ExternalReference(target_url=Path(video).resolve().as_uri(), available_range=available)


def _audible(video: str) -> bool:
    try:
        return has_audio(video)
    except FrameseekError:
        return False


def otio_timeline(
    hits: Sequence[MarkedHit],
    *,
    query: str | None = None,
    title: str | None = None,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
    fps: float = DEFAULT_FPS,
    audio: bool = True,
) -> Any:
    """An ``opentimelineio.schema.Timeline``: a video track (and an audio track) with one clip per hit.

    Each clip's media reference is its source file (``file://`` URL, whole length), its source range the
    hit's segment with its handles at the source's frame rate (``fps`` when unknown); a marker at the hit's
    frame carries the query, score, match kind and words (name, comment, colour, ``metadata["frameseek"]``).
    The audio track (``audio``) holds the same ranges, a gap where a source has no sound.
    """
    pieces = cuts(hits, pad_before=pad_before, pad_after=pad_after)
    default = frame_rate(fps)
    timeline = otio.schema.Timeline(name=one_line(title or (f"frameseek: {query}" if query else "frameseek")))
    timeline.global_start_time = otio.opentime.RationalTime(0, float(default))
    timeline.metadata["frameseek"] = {"query": query, "pad_before": pad_before, "pad_after": pad_after}
    picture = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    sound = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    audible: dict[str, bool] = {}
    for piece in pieces:
        hit, video = piece.hit, str(piece.hit.video)
        rate = frame_rate(piece.info.fps) if piece.info is not None and piece.info.fps else default
        r = float(rate)
        first, last = _frames(piece.first, piece.last, rate)
        span = otio.opentime.TimeRange(
            otio.opentime.RationalTime(first, r), otio.opentime.RationalTime(last - first, r)
        )
        name = f"#{piece.rank} {Path(video).stem} {timecode(frame_number(hit.time, rate), rate)}"
        clip = otio.schema.Clip(name=name, media_reference=_media(video, piece.info, rate), source_range=span)
        clip.metadata["frameseek"] = _metadata(hit, piece.rank, query)
        marker = otio.schema.Marker(
            name=one_line(query) if query else f"hit #{piece.rank}",
            marked_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(frame_number(hit.time, rate), r), otio.opentime.RationalTime(1, r)
            ),
            color=getattr(otio.schema.MarkerColor, MATCH_COLORS.get(hit.match.split("+")[0], "RED")),
            metadata={"frameseek": _metadata(hit, piece.rank, query)},
        )
        marker.comment = _describe(hit, piece.rank, query)
        clip.markers.append(marker)
        picture.append(clip)
        if audio:
            if video not in audible:
                audible[video] = _audible(video)
            if audible[video]:
                heard = otio.schema.Clip(
                    name=name, media_reference=_media(video, piece.info, rate), source_range=span
                )
                heard.metadata["frameseek"] = _metadata(hit, piece.rank, query)
                sound.append(heard)
            else:
                sound.append(otio.schema.Gap(source_range=span))
    timeline.tracks.append(picture)
    if audio:
        timeline.tracks.append(sound)
    return timeline


def otio_json(hits: Sequence[MarkedHit], **options: Any) -> str:
    """``otio_timeline(hits, **options)`` as ``.otio`` JSON (``opentimelineio.adapters.write_to_string``)."""
    return str(otio.adapters.write_to_string(otio_timeline(hits, **options), "otio_json"))


def markers_text(
    hits: Sequence[MarkedHit],
    kind: str,
    *,
    query: str | None = None,
    title: str | None = None,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
    fps: float | None = None,
) -> str:
    """The markers file for ``kind``: ``edl``, ``otio``, ``fcpxml`` or ``fcp7`` (``fps`` None: the EDL at the
    first source's rate, the other formats' clips at their own rates, 25 where unknown). ``fcpxml`` and
    ``fcp7`` hold two sequences: the rough cut (one clip per hit, a marker at each hit's frame) and each source
    whole with a marker over each hit's segment (``timelines.editor_timelines``)."""
    if kind in EDITOR_FORMATS:
        timeline = otio_timeline(
            hits, query=query, title=title, pad_before=pad_before, pad_after=pad_after, fps=fps or DEFAULT_FPS
        )
        return editor_text(timeline, kind)
    if kind == "edl":
        return edl(hits, fps=fps, title=title, query=query, pad_before=pad_before, pad_after=pad_after)
    if kind == "otio":
        return otio_json(
            hits, query=query, title=title, pad_before=pad_before, pad_after=pad_after, fps=fps or DEFAULT_FPS
        )
    raise InputError(f"markers must be one of {', '.join(MARKER_FORMATS)}, got {kind!r}")
