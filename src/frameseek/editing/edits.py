"""What every door makes for editors from chosen hits, cut by one rule: frames, clips, a supercut, markers.

The clip rule (``clip_bounds``, then ``clip_window``): a hit's segment, kept inside its video
``[0, duration]``; widened around the hit's time to at least ``MIN_CLIP_SECONDS`` (a one-frame segment is no
clip to play or cut), within the video; cut to at most ``MAX_CLIP_SECONDS``; then the handles
(``pad_before`` / ``pad_after``) around it, clamped to the video again (``clips.padded_window``).

``frameseek search --export`` (``export_hits``, ``export_for_editing``), the app's Clip / Supercut /
Markers buttons and the service's ``GET /clips`` and ``POST /edits`` all cut through this module, so the
same hits give the same clips, supercut and EDL / OTIO text at every door (``tests/test_export_doors.py``).
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image

from frameseek.editing.clips import check_pads, export_clip, export_supercut, padded_window
from frameseek.editing.folders import writable_folder, write_markers
from frameseek.editing.markers import MARKER_FORMATS, MARKER_MIME, MARKER_SUFFIXES, MarkedHit, markers_text
from frameseek.errors import FrameseekError, InputError
from frameseek.system.atomic import atomic_path
from frameseek.video.decode import frame_at, probe

MIN_CLIP_SECONDS = 1.0
"""A clip is at least this long (when its video is): a hit's segment can be one sampled frame."""
MAX_CLIP_SECONDS = 120.0
"""A clip is at most this long (before its handles): a segment can span most of a long video."""
SUPERCUT_NAME = "supercut.mp4"
MARKERS_STEM = "markers"

EditFormat = Literal["mp4", "edl", "otio", "fcpxml", "fcp7"]
EDIT_FORMATS: tuple[EditFormat, ...] = ("mp4", *MARKER_FORMATS)

HitRow = tuple[str | Path, float, float, float]
"""A hit as ``(video, time, start, end)``."""
HitLike = MarkedHit | HitRow
"""What the exports take: a ``SearchResult`` (or any object with its fields), or a ``HitRow``."""


@dataclass(frozen=True)
class Moment:
    """A hit as the exports cut it: its video, its time, its segment, and what the markers say of it."""

    video: str
    title: str
    time: float
    start: float
    end: float
    score: float = 0.0
    match: str = "visual"
    text: str | None = None

    @classmethod
    def of(cls, hit: HitLike) -> Moment:
        """A ``SearchResult`` (or a ``Moment``, or any object with its fields) or a ``HitRow`` as a Moment."""
        if isinstance(hit, tuple):
            video, time, start, end = hit
            return cls(str(video), Path(video).stem, float(time), float(start), float(end))
        return cls(
            str(hit.video), hit.title, hit.time, hit.start, hit.end, float(hit.score), hit.match, hit.text
        )


@dataclass(frozen=True)
class EditFile:
    """A supercut or a markers file in memory: its bytes, media type and file name."""

    data: bytes
    media_type: str
    name: str


# ---------------------------------------------------------------------------------------- the rule


def clip_bounds(hit: HitLike, duration: float | None = None) -> tuple[float, float]:
    """The segment of ``hit`` that is cut (before handles): inside ``[0, duration]`` (``duration`` None or
    0: unknown, no end), at least ``MIN_CLIP_SECONDS`` around the hit's time where the video allows, at most
    ``MAX_CLIP_SECONDS``. An InputError for a segment that is not numbers or starts after the video ends."""
    moment = Moment.of(hit)
    start, end, time = moment.start, moment.end, moment.time
    if not all(math.isfinite(v) for v in (start, end, time)) or end < start:
        raise InputError(f"a hit's segment must satisfy start <= end, got start={start} end={end}")
    last = duration if duration is not None and math.isfinite(duration) and duration > 0 else math.inf
    if start >= last:
        raise InputError(f"the hit at {start:.3f} s is after the end of {moment.video} ({last:.3f} s)")
    start, end = max(0.0, start), min(last, end)
    if end - start < MIN_CLIP_SECONDS:
        centre = min(max(time, 0.0), last)
        start = max(0.0, min(centre - MIN_CLIP_SECONDS / 2, last - MIN_CLIP_SECONDS))
        end = min(last, start + MIN_CLIP_SECONDS)
    return start, min(end, start + MAX_CLIP_SECONDS)


def clip_window(
    hit: HitLike, *, pad_before: float = 0.0, pad_after: float = 0.0, duration: float | None = None
) -> tuple[float, float]:
    """The in and out points of ``hit``'s clip: ``clip_bounds`` with the handles, clamped to the video."""
    start, end = clip_bounds(hit, duration)
    return padded_window(start, end, pad_before=pad_before, pad_after=pad_after, duration=duration)


def _duration(video: str) -> float | None:
    try:
        return probe(video).duration
    except FrameseekError:  # unreadable now: markers still list it, a clip of it fails when it is cut
        return None


def edit_moments(hits: Sequence[HitLike]) -> list[Moment]:
    """The hits with their segments as they are cut (``clip_bounds``, each video probed once)."""
    durations: dict[str, float | None] = {}
    found = []
    for hit in hits:
        moment = Moment.of(hit)
        if moment.video not in durations:
            durations[moment.video] = _duration(moment.video)
        start, end = clip_bounds(moment, durations[moment.video])
        found.append(dataclasses.replace(moment, start=start, end=end))
    return found


# ---------------------------------------------------------------------------------------- exports


def export_frame(
    path_video: str | Path,
    time: float,
    out_jpeg: str | Path,
    *,
    max_side: int | None = None,
    quality: int = 90,
) -> Path:
    """Save the frame on screen at ``time`` seconds as a JPEG (upright, scaled to ``max_side``)."""
    frame = frame_at(path_video, time, max_side=max_side)
    target = Path(out_jpeg)
    with atomic_path(target) as tmp:
        Image.fromarray(frame.image).save(tmp, format="JPEG", quality=quality)
    return target


def hit_clip(
    hit: HitLike,
    out_mp4: str | Path,
    *,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
    audio: bool = True,
    max_side: int | None = None,
) -> Path:
    """``hit``'s clip (the rule, with its handles) as an MP4 with its sound."""
    (moment,) = edit_moments([hit])
    return export_clip(
        moment.video,
        moment.start,
        moment.end,
        out_mp4,
        pad_before=pad_before,
        pad_after=pad_after,
        audio=audio,
        max_side=max_side,
    )


def edit_markers(
    hits: Sequence[HitLike],
    kind: str,
    *,
    query: str | None = None,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
) -> str:
    """The hits as ``edl`` (CMX 3600), ``otio`` (OpenTimelineIO), ``fcpxml`` (Final Cut Pro X) or ``fcp7``
    (Final Cut 7 XML: Premiere Pro, DaVinci Resolve) text: the same cut as the supercut."""
    check_pads(pad_before, pad_after)
    return markers_text(edit_moments(hits), kind, query=query, pad_before=pad_before, pad_after=pad_after)


def supercut_file(
    hits: Sequence[HitLike],
    out_mp4: str | Path,
    *,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
    audio: bool = True,
    max_side: int | None = None,
) -> Path:
    """The hits' clips (the rule, with handles), one after another, as one MP4 with sound."""
    check_pads(pad_before, pad_after)
    return export_supercut(
        edit_moments(hits),
        out_mp4,
        pad_before=pad_before,
        pad_after=pad_after,
        audio=audio,
        max_side=max_side,
    )


def edit_file(
    hits: Sequence[HitLike],
    kind: str,
    *,
    query: str | None = None,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
    workdir: Path | None = None,
) -> EditFile:
    """A supercut (``mp4``) or markers (``edl``, ``otio``) of the hits, in memory (``workdir``: where the
    supercut is written before it is read; default: the system's temporary folder)."""
    if kind not in EDIT_FORMATS:
        raise InputError(f"the format must be one of {', '.join(EDIT_FORMATS)}, got {kind!r}")
    if kind != "mp4":
        text = edit_markers(hits, kind, query=query, pad_before=pad_before, pad_after=pad_after)
        return EditFile(text.encode("utf-8"), MARKER_MIME[kind], f"{MARKERS_STEM}{MARKER_SUFFIXES[kind]}")
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".supercut-", dir=workdir) as tmp:
        out = supercut_file(hits, Path(tmp) / SUPERCUT_NAME, pad_before=pad_before, pad_after=pad_after)
        return EditFile(out.read_bytes(), "video/mp4", SUPERCUT_NAME)


def hit_stem(rank: int, video: str | Path, time: float) -> str:
    """File name stem for the ``rank``-th hit: ``01-<video stem>-4.040s``."""
    return f"{rank:02d}-{Path(video).stem}-{time:.3f}s"


def export_hits(
    hits: Sequence[HitLike],
    folder: Path,
    *,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
    audio: bool = True,
) -> list[dict[str, str]]:
    """Each hit's frame (JPEG) and clip (MP4 with its sound: the rule, with ``pad_before`` / ``pad_after``
    seconds of handles), ranked, into ``folder``; a hit is a ``SearchResult`` or ``(video, time, start, end)``."""
    check_pads(pad_before, pad_after)
    writable_folder(folder)
    written = []
    for rank, moment in enumerate(edit_moments(hits), 1):
        stem = hit_stem(rank, moment.video, moment.time)
        frame = export_frame(moment.video, moment.time, folder / f"{stem}.jpg")
        clip = export_clip(
            moment.video,
            moment.start,
            moment.end,
            folder / f"{stem}.mp4",
            pad_before=pad_before,
            pad_after=pad_after,
            audio=audio,
        )
        written.append({"frame": str(frame), "clip": str(clip)})
    return written


def export_for_editing(
    hits: Sequence[HitLike],
    folder: Path,
    *,
    supercut: bool = False,
    markers: str | None = None,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
    query: str | None = None,
) -> dict[str, str]:
    """``supercut.mp4`` (every hit, in order, with handles and sound) and ``markers.edl`` / ``.otio`` /
    ``.fcpxml`` / ``.xml`` (fcp7) into ``folder``, as asked; returns ``{"supercut": path, "markers": path}`` for what was written (no
    supercut without hits). The EDL is at the first source's frame rate, the OTIO clips at their own."""
    if markers is not None and markers not in MARKER_FORMATS:
        raise InputError(f"--markers must be one of {', '.join(MARKER_FORMATS)}, got {markers!r}")
    check_pads(pad_before, pad_after)
    writable_folder(folder)
    moments = edit_moments(hits)
    written: dict[str, str] = {}
    if supercut and moments:
        out = export_supercut(moments, folder / SUPERCUT_NAME, pad_before=pad_before, pad_after=pad_after)
        written["supercut"] = str(out)
    if markers is not None:
        target = folder / f"{MARKERS_STEM}{MARKER_SUFFIXES[markers]}"
        text = markers_text(moments, markers, query=query, pad_before=pad_before, pad_after=pad_after)
        write_markers(target, text)
        written["markers"] = str(target)
    return written
