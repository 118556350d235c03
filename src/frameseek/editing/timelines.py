"""Timelines that editors open: Final Cut Pro X ``.fcpxml`` and Final Cut 7 XML ``.xml`` (Premiere, Resolve).

Both are written by OpenTimelineIO's maintained adapter plugins (``otio-fcpx-xml-adapter``,
``otio-fcp-adapter``) from the rough cut that ``markers.otio_timeline`` builds, as one file holding two
sequences:

- **rough cut**: one clip per hit (its segment with the handles), one after another, each clip carrying a
  marker at the hit's frame;
- **markers**: each source clip whole, once, in the order the hits first name it, with a marker over each
  hit's segment (name ``#rank query``, the comment saying score, match kind and words).

In the Final Cut 7 XML the markers are also sequence markers (on the timeline's ruler) and carry the
comment. Rates are conformed to what each format can say: FCPXML knows 23.976, 24, 25, 29.97, 30, 50,
59.94 and 60 fps, FCP7 XML the SMPTE timecode rates; a clip at another rate is put on a rate it divides
(12.5 → 25, 15 → 30), else on the nearest frames of 30 fps; in FCPXML every clip of a sequence is put on
its first clip's rate (the adapter times a sequence by one rate), and at the NTSC rates the sequences
carry no audio lane (the adapter would place it off the frame grid).
"""

from __future__ import annotations

import copy
import math
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import opentimelineio as otio

from frameseek.errors import InputError, one_line

EditorFormat = Literal["fcpxml", "fcp7"]
EDITOR_FORMATS: tuple[EditorFormat, ...] = ("fcpxml", "fcp7")
EDITOR_ADAPTERS = {"fcpxml": "fcpx_xml", "fcp7": "fcp_xml"}
"""OpenTimelineIO adapter name per format."""
EDITOR_SUFFIXES = {"fcpxml": ".fcpxml", "fcp7": ".xml"}
EDITOR_MIME = {"fcpxml": "application/xml", "fcp7": "application/xml"}
FCPX_RATES = (24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 50.0, 60000 / 1001, 60.0)
"""The frame rates FCPXML is written at (each has a ``frameDuration``); NTSC ones exact, as ``frame_rate``
gives them."""
_FCPX_NTSC = {24000 / 1001: "1001/24000s", 30000 / 1001: "1001/30000s", 60000 / 1001: "1001/60000s"}
"""The adapter's table keys NTSC rates by their rounded names (29.97): these are the exact rates. At 29.97
a clip's start would be written as ``n / 29.97`` s, off the 1001/30000 s frame grid that Final Cut checks."""
_TARGETS = (24, 25, 30, 50, 60)
"""Where a clip at a rate its format cannot say goes: the first of these its rate divides, else 30."""
ROUGH_CUT = "rough cut"
SOURCE_MARKERS = "markers"


def _sayable(rate: float, kind: str) -> bool:
    """Whether ``kind`` can write a clip at ``rate`` as it is."""
    if kind == "fcpxml":
        return any(abs(rate - known) < 1e-9 for known in FCPX_RATES)
    return bool(otio.opentime.RationalTime.is_smpte_timecode_rate(rate))  # FCP7 writes a timecode per file


def _conformed(rate: float, kind: str) -> float:
    """The rate ``kind`` writes a clip at ``rate`` with: ``rate`` itself where the format can say it."""
    if _sayable(rate, kind):
        return rate
    for target in _TARGETS:
        ratio = target / rate
        if abs(ratio - round(ratio)) < 1e-6:
            return float(target)
    return 30.0


def _teach_fcpx_ntsc() -> None:
    """Add the exact NTSC rates to the FCPXML adapter's ``frameDuration`` table (it has 29.97, not
    30000/1001; without them an NTSC clip gets no frame duration)."""
    table = otio.adapters.from_name(EDITOR_ADAPTERS["fcpxml"]).module().FRAMERATE_FRAMEDURATION
    for rate, duration in _FCPX_NTSC.items():  # the module OTIO's plugin loader runs, not a second import
        table.setdefault(rate, duration)


def _at(time: Any, rate: float) -> Any:
    """``time`` on the nearest frame at ``rate``."""
    return otio.opentime.RationalTime(round(time.value_rescaled_to(rate)), rate)


def _range_at(span: Any, rate: float) -> Any:
    start, end = _at(span.start_time, rate), _at(span.end_time_exclusive(), rate)
    return otio.opentime.TimeRange(start, otio.opentime.RationalTime(max(1, end.value - start.value), rate))


def _conform(item: Any, kind: str, rate: float | None) -> None:
    """Put a clip or gap (its range, its media's range, its markers) on ``rate`` (None: the nearest rate
    ``kind`` can write)."""
    if item.source_range is None:
        return
    target = rate if rate is not None else _conformed(item.source_range.start_time.rate, kind)
    if target == item.source_range.start_time.rate:
        return
    item.source_range = _range_at(item.source_range, target)
    reference = getattr(item, "media_reference", None)
    if reference is not None and reference.available_range is not None:
        reference.available_range = _range_at(reference.available_range, target)
    for marker in item.markers:
        marker.marked_range = _range_at(marker.marked_range, target)


def _clip_name(text: str) -> str:
    """A clip name the FCPXML adapter can look up (it finds clips by name in an XPath between quotes)."""
    return one_line(text).replace("'", "’") or "clip"


def _label(meta: dict[str, Any]) -> str:
    """A marker's name: ``#rank`` and the query (else what matched)."""
    query = meta.get("query")
    return one_line(f"#{meta.get('rank', '?')} {query or meta.get('match', 'hit')}")


def _comment(marker: Any) -> str:
    return str(marker.comment or "")


def _marker(name: str, span: Any, color: str, comment: str, meta: dict[str, Any]) -> Any:
    """A marker with its comment where each format keeps one (OTIO's field, FCP7's ``<comment>``)."""
    made = otio.schema.Marker(name=name, marked_range=span, color=color)
    made.comment = comment
    made.metadata["fcp_xml"] = {"comment": comment}
    made.metadata["frameseek"] = dict(meta)
    return made


def _sequence_markers(timeline: Any) -> None:
    """Each clip's markers again on the sequence (the timeline's ruler), at their record time."""
    rate = timeline.global_start_time.rate
    for track in timeline.tracks:
        if track.kind != otio.schema.TrackKind.Video:
            continue
        for clip in track.find_clips():
            placed = clip.range_in_parent()
            for marker in clip.markers:
                offset = marker.marked_range.start_time - clip.source_range.start_time
                at = (placed.start_time + offset).rescaled_to(rate)
                span = otio.opentime.TimeRange(
                    otio.opentime.RationalTime(round(at.value), rate),
                    otio.opentime.RationalTime(
                        max(1, round(marker.marked_range.duration.value_rescaled_to(rate))), rate
                    ),
                )
                meta = dict(marker.metadata.get("frameseek", {}))
                timeline.tracks.markers.append(
                    _marker(marker.name, span, marker.color, _comment(marker), meta)
                )


def _rough_cut(timeline: Any, title: str) -> Any:
    cut = copy.deepcopy(timeline)
    cut.name = f"{title} - {ROUGH_CUT}"
    for clip in cut.find_clips():
        clip.name = _clip_name(clip.name)
        meta = clip.metadata.get("frameseek", {})
        for marker in clip.markers:
            marker.name = _label(meta)
            marker.metadata["fcp_xml"] = {"comment": _comment(marker)}
    return cut


def _source_markers(timeline: Any, title: str) -> Any:
    """Each source clip whole (once, in the order the hits first name it) with a marker over each hit."""
    sources: dict[str, list[Any]] = {}
    audible: dict[str, bool] = {}
    tracks = list(timeline.tracks)
    picture = [t for t in tracks if t.kind == otio.schema.TrackKind.Video]
    sound = [t for t in tracks if t.kind == otio.schema.TrackKind.Audio]
    heard = list(sound[0]) if sound else []
    for index, clip in enumerate(picture[0] if picture else []):
        if not isinstance(clip, otio.schema.Clip):
            continue
        url = clip.media_reference.target_url
        sources.setdefault(url, []).append(clip)
        audible[url] = audible.get(url, False) or (
            index < len(heard) and isinstance(heard[index], otio.schema.Clip)
        )
    out = otio.schema.Timeline(name=f"{title} - {SOURCE_MARKERS}")
    out.global_start_time = copy.deepcopy(timeline.global_start_time)
    out.metadata["frameseek"] = dict(timeline.metadata.get("frameseek", {}))
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    for url, clips in sources.items():
        whole = _whole(clips)
        name = _clip_name(Path(otio.url_utils.filepath_from_url(url)).stem)
        source = otio.schema.Clip(
            name=name, media_reference=copy.deepcopy(clips[0].media_reference), source_range=whole
        )
        rate = whole.start_time.rate
        for clip in clips:
            meta = dict(clip.metadata.get("frameseek", {}))
            first = _nearest_frame(meta.get("start", 0.0), rate)
            last = max(first + 1, _nearest_frame(meta.get("end", 0.0), rate))
            span = otio.opentime.TimeRange(
                otio.opentime.RationalTime(first, rate),
                otio.opentime.RationalTime(max(1, last - first), rate),
            )
            comment = next((_comment(m) for m in clip.markers), "")
            color = next((m.color for m in clip.markers), otio.schema.MarkerColor.RED)
            source.markers.append(_marker(_label(meta), span, color, comment, meta))
        video.append(source)
        if audible[url]:
            audio.append(
                otio.schema.Clip(
                    name=name, media_reference=copy.deepcopy(clips[0].media_reference), source_range=whole
                )
            )
        else:
            audio.append(otio.schema.Gap(source_range=whole))
    out.tracks.append(video)
    if sound:
        out.tracks.append(audio)
    return out


def _nearest_frame(seconds: float, rate: float) -> int:
    """The frame nearest ``seconds`` (halves up, seconds to the microsecond), as ``markers.frame_number``."""
    exact = Fraction(seconds).limit_denominator(1_000_000) * Fraction(rate).limit_denominator(1001)
    return math.floor(exact + Fraction(1, 2))


def _whole(clips: list[Any]) -> Any:
    """The source's whole length (its media's range), else from 0 to the last frame the hits use."""
    known = clips[0].media_reference.available_range
    if known is not None:
        return copy.deepcopy(known)
    rate = clips[0].source_range.start_time.rate
    end = max(c.source_range.end_time_exclusive().value_rescaled_to(rate) for c in clips)
    return otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(end, rate))


def editor_timelines(timeline: Any, kind: str = "fcp7") -> Any:
    """The rough cut and the source markers as one ``SerializableCollection`` of two timelines, each on the
    rates ``kind`` can write (``timeline``: a rough cut made by ``markers.otio_timeline``)."""
    check_editor_format(kind)
    title = one_line(timeline.name or "frameseek")
    collection = otio.schema.SerializableCollection(name=title)
    for made in (_rough_cut(timeline, title), _source_markers(timeline, title)):
        first = next(iter(made.find_clips()), None)
        rate = _conformed(first.source_range.start_time.rate, kind) if first is not None else None
        for item in made.find_children():
            if isinstance(item, otio.schema.Clip | otio.schema.Gap):
                # FCPXML: the adapter times a sequence by one rate, so every clip goes on it; FCP7 XML keeps
                # each clip at its own rate where it can
                _conform(item, kind, rate if kind == "fcpxml" else None)
        if rate is not None:  # the sequence at its first clip's rate, from zero
            made.global_start_time = otio.opentime.RationalTime(0, rate)
        if kind == "fcpxml" and rate is not None and rate != round(rate):
            # the adapter places connected audio by whole frames per second (29, not 29.97): off Final
            # Cut's frame grid at the NTSC rates, so there the rough cut and markers carry the picture only
            for track in [t for t in made.tracks if t.kind == otio.schema.TrackKind.Audio]:
                made.tracks.remove(track)
        if kind == "fcp7":
            _sequence_markers(made)
        collection.append(made)
    return collection


def check_editor_format(kind: str) -> EditorFormat:
    """``kind`` if it is one of ``EDITOR_FORMATS``, else one InputError naming them."""
    for known in EDITOR_FORMATS:
        if kind == known:
            return known
    raise InputError(f"the editor format must be one of {', '.join(EDITOR_FORMATS)}, got {kind!r}")


def editor_text(timeline: Any, kind: str) -> str:
    """``timeline`` (a rough cut) as ``fcpxml`` (Final Cut Pro X) or ``fcp7`` (Final Cut 7 XML: Premiere Pro,
    DaVinci Resolve) text, through OpenTimelineIO's adapter for the format."""
    check_editor_format(kind)
    if kind == "fcpxml":
        _teach_fcpx_ntsc()
    return str(otio.adapters.write_to_string(editor_timelines(timeline, kind), EDITOR_ADAPTERS[kind]))


def read_editor_text(text: str, kind: str) -> list[Any]:
    """The timelines of an ``.fcpxml`` or FCP7 ``.xml``, read back with the same adapter (the rough cut,
    then the source markers, for a file this module wrote); an InputError when the adapter cannot read it.

    Each timeline is a copy that owns itself: a child of a collection that is gone crashes OpenTimelineIO.
    """
    check_editor_format(kind)
    try:
        read = otio.adapters.read_from_string(text, EDITOR_ADAPTERS[kind])
    except Exception as err:  # the adapters raise ValueError, ParseError, AttributeError … on bad XML
        raise InputError(f"not a readable {kind} file: {one_line(str(err)) or type(err).__name__}") from None
    if isinstance(read, otio.schema.Timeline):
        return [read]
    return [copy.deepcopy(item) for item in read if isinstance(item, otio.schema.Timeline)]
