"""Write a search hit's picture (JPEG) and its segment (MP4 with sound), and a folder of them, atomically.

The MP4 writing lives in ``clips`` (a segment, a supercut), the edit markers in ``markers`` (EDL, OTIO);
``export_hits`` / ``export_for_editing`` are what ``frameseek search --export`` writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from frameseek.editing.clips import check_pads, clip_encoder, export_clip, export_supercut
from frameseek.editing.markers import MARKER_FORMATS, MARKER_SUFFIXES, MarkedHit, markers_text
from frameseek.errors import InputError
from frameseek.system.atomic import atomic_path, write_text_atomic
from frameseek.video.decode import frame_at

__all__ = ["clip_encoder", "export_clip", "export_for_editing", "export_frame", "export_hits", "hit_stem"]

SUPERCUT_NAME = "supercut.mp4"
MARKERS_STEM = "markers"


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


def hit_stem(rank: int, video: str | Path, time: float) -> str:
    """File name stem for the ``rank``-th hit: ``01-<video stem>-4.040s``."""
    return f"{rank:02d}-{Path(video).stem}-{time:.3f}s"


HitRow = tuple[str | Path, float, float, float]
"""A hit as ``(video, time, start, end)``."""


def export_hits(
    hits: Sequence[HitRow | MarkedHit],
    folder: Path,
    *,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
    audio: bool = True,
) -> list[dict[str, str]]:
    """Each hit's frame (JPEG) and segment clip (MP4 with its sound, ``pad_before`` / ``pad_after``
    seconds of handles), ranked, into ``folder``; a hit is ``(video, time, start, end)`` or a SearchResult."""
    check_pads(pad_before, pad_after)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, hit in enumerate(hits, 1):
        video, time, start, end = hit if isinstance(hit, tuple) else (hit.video, hit.time, hit.start, hit.end)
        stem = hit_stem(rank, video, time)
        frame = export_frame(Path(video), time, folder / f"{stem}.jpg")
        clip = export_clip(
            Path(video),
            start,
            end,
            folder / f"{stem}.mp4",
            pad_before=pad_before,
            pad_after=pad_after,
            audio=audio,
        )
        written.append({"frame": str(frame), "clip": str(clip)})
    return written


def export_for_editing(
    hits: Sequence[MarkedHit],
    folder: Path,
    *,
    supercut: bool = False,
    markers: str | None = None,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
    query: str | None = None,
) -> dict[str, str]:
    """``supercut.mp4`` (every hit, in order, with handles and sound) and ``markers.edl`` / ``markers.otio``
    into ``folder``, as asked; returns ``{"supercut": path, "markers": path}`` for what was written (no
    supercut without hits). The EDL is at the first source's frame rate, the OTIO clips at their own."""
    if markers is not None and markers not in MARKER_FORMATS:
        raise InputError(f"--markers must be one of {', '.join(MARKER_FORMATS)}, got {markers!r}")
    check_pads(pad_before, pad_after)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    if supercut and hits:
        out = export_supercut(hits, folder / SUPERCUT_NAME, pad_before=pad_before, pad_after=pad_after)
        written["supercut"] = str(out)
    if markers is not None:
        target = folder / f"{MARKERS_STEM}{MARKER_SUFFIXES[markers]}"
        text = markers_text(hits, markers, query=query, pad_before=pad_before, pad_after=pad_after)
        write_text_atomic(target, text)
        written["markers"] = str(target)
    return written
