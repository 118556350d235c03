"""Subtitles that come with a video: sidecar files (SRT, WebVTT, ASS/SSA) and text streams in the container.

Every time is in seconds from the video stream's start (``frameseek.video.decode``'s frame clock), so a
subtitle span and a frame with the same time show together.

One module because the three text formats share one cue model, one clean-up (tags, repeats, order, clamping)
and one decoding fallback, and the sidecar and embedded paths end in the same ``TextTrack``.
"""

from __future__ import annotations

import codecs
import html
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import av
import av.container
import av.subtitles.stream

from frameseek.errors import DecodeError, FrameseekError, InputError, SourceError
from frameseek.settings import env_int
from frameseek.text.spans import TextSpan, TextTrack
from frameseek.video.decode import error_reason
from frameseek.video.packets import decoded_packets

log = logging.getLogger(__name__)

SUBTITLE_EXTENSIONS = (".srt", ".vtt", ".ass", ".ssa")
"""Sidecar extensions ``find_sidecars`` picks up (case-insensitive), in order of preference."""

DEFAULT_MAX_SUBTITLE_MB = 20
"""A subtitle file larger than this (``FRAMESEEK_MAX_SUBTITLE_MB``) is skipped: a 2-hour film's SRT is
~100 KB, so 20 MB is only ever a wrong or hostile file."""

_MB = 1024 * 1024
_OPEN_OPTIONS = {"protocol_whitelist": "file"}
"""As in ``frameseek.video.decode``: a local file may not make FFmpeg open network URLs."""

_DEFAULT_CUE_S = 5.0
"""Length given to an embedded cue without a duration (end = next cue's start, at most this)."""

_TOUCH_S = 0.05
"""Cues this close (or overlapping) are one caption continuing: repeated leading lines are dropped."""


_FORCED_TOKENS = frozenset({"forced"})
_MODIFIER_TOKENS = frozenset({"forced", "sdh", "cc", "hi", "default", "full"})
"""Words allowed between a video's name and a sidecar's extension besides a language tag."""

_LANG_TAG = re.compile(r"[a-z]{2,3}(?:[-_][a-z0-9]{2,8})*", re.IGNORECASE)
_ISO639_2B = {
    "alb": "sq", "arm": "hy", "baq": "eu", "bur": "my", "chi": "zh", "cze": "cs", "dut": "nl", "fre": "fr",
    "geo": "ka", "ger": "de", "gre": "el", "ice": "is", "mac": "mk", "mao": "mi", "may": "ms", "per": "fa",
    "rum": "ro", "slo": "sk", "tib": "bo", "wel": "cy",
}  # fmt: skip
"""ISO 639-2 bibliographic codes (MKV/MP4 often use them: ffmpeg writes ``fre``) -> ISO 639-1."""

_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d+)?)"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_ASS_TIME = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*$")
_HTML_TAG = re.compile(r"</?(?:[A-Za-z][^<>\n]*|\d[\d:.]*)>")
"""``<i>``, ``<font color=..>``, ``<c.yellow>``, ``<v Roger>``, WebVTT word times ``<00:00:01.500>``."""
_ASS_OVERRIDE = re.compile(r"\{\\[^}]*\}")
_ASS_BLOCK = re.compile(r"\{[^}]*\}")
_ASS_BREAK = re.compile(r"\\[Nnh]")
_VTT_BLOCKS = ("NOTE", "STYLE", "REGION")
_ASS_DEFAULT_FORMAT = (
    "layer", "start", "end", "style", "name", "marginl", "marginr", "marginv", "effect", "text",
)  # fmt: skip
"""ASS ``[Events]`` fields when no ``Format:`` line says otherwise (SSA's ``Marked`` is ``Layer``)."""


# --- limits and decoding ------------------------------------------------------------------------------------


def max_subtitle_bytes() -> int:
    """The largest subtitle file read: ``$FRAMESEEK_MAX_SUBTITLE_MB`` (default 20) MB."""
    return env_int("FRAMESEEK_MAX_SUBTITLE_MB", DEFAULT_MAX_SUBTITLE_MB, minimum=0) * _MB


def _check_size(size: int, name: str) -> None:
    """InputError when a subtitle file of ``size`` bytes is over the limit."""
    limit = max_subtitle_bytes()
    if size > limit:
        raise InputError(
            f"{name} is larger than {limit // _MB} MB; skipped (FRAMESEEK_MAX_SUBTITLE_MB raises the limit)"
        )


def decode_text(data: bytes) -> tuple[str, str | None]:
    """Subtitle bytes as text, and the fallback encoding used (None for UTF-8 or a UTF-16 with BOM)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace"), None
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    try:  # Windows subtitle tools write cp1252; 5 bytes are undefined in it, latin-1 takes any byte
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


# --- parsing ------------------------------------------------------------------------------------------------


@dataclass
class _Cue:
    start: float
    end: float | None
    lines: list[str]


def _seconds(hours: str | None, minutes: str, seconds: str) -> float:
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds.replace(",", "."))


def _clean_line(line: str, *, ass: bool) -> list[str]:
    """One cue line without markup, split at ASS line breaks; blank pieces dropped."""
    line = (_ASS_BLOCK if ass else _ASS_OVERRIDE).sub("", line)
    line = html.unescape(_HTML_TAG.sub("", line))
    pieces = _ASS_BREAK.split(line)
    return [" ".join(p.split()) for p in pieces if p.strip()]


def _clean_lines(lines: Iterable[str], *, ass: bool = False) -> list[str]:
    return [piece for line in lines for piece in _clean_line(line, ass=ass)]


def _parse_cues(text: str) -> tuple[list[_Cue], int]:
    """SRT / WebVTT cues (an ``a --> b`` line, then text up to a blank line) and the timing lines seen.

    Read line by line, so a file that lost the blank lines between cues still parses (a cue's trailing
    number line is then the next cue's SRT index and is dropped).
    """
    cues: list[_Cue] = []
    raw: list[list[str]] = []
    current: list[str] | None = None
    timings = 0
    block_start, skipping = True, False
    for line in text.split("\n"):
        if not line.strip():
            current, block_start, skipping = None, True, False
            continue
        if block_start and line.lstrip().startswith(_VTT_BLOCKS):
            skipping = True  # NOTE / STYLE / REGION blocks hold no cue
        block_start = False
        if skipping:
            continue
        if "-->" in line:
            timings += 1
            if current and current[-1].strip().isdigit():
                current.pop()
            match = _TIMING.match(line)
            current = None
            if match:
                g = match.groups()
                current = []
                cues.append(_Cue(_seconds(g[0], g[1], g[2]), _seconds(g[3], g[4], g[5]), []))
                raw.append(current)
        elif current is not None:
            current.append(line)
    for cue, lines in zip(cues, raw, strict=True):
        cue.lines = _clean_lines(lines)
    return cues, timings


def _ass_seconds(value: str) -> float | None:
    match = _ASS_TIME.match(value)
    return _seconds(*match.groups()) if match else None


def _parse_ass(text: str) -> tuple[list[_Cue], int]:
    """ASS / SSA ``Dialogue:`` lines (fields as the ``[Events]`` ``Format:`` line says)."""
    fields: tuple[str, ...] = _ASS_DEFAULT_FORMAT
    cues: list[_Cue] = []
    seen = 0
    for raw in text.split("\n"):
        key, _, value = raw.partition(":")
        key = key.strip().lower()
        if key == "format":
            declared = tuple(f.strip().lower() for f in value.split(","))
            if {"start", "end", "text"} <= set(declared):  # not the ``[V4+ Styles]`` section's Format line
                fields = declared
        elif key == "dialogue":
            seen += 1
            parts = value.strip().split(",", len(fields) - 1)
            if len(parts) != len(fields):
                continue
            row = dict(zip(fields, parts, strict=True))
            start, end = _ass_seconds(row["start"]), _ass_seconds(row["end"])
            if start is not None and end is not None:
                cues.append(_Cue(start, end, _clean_lines([row["text"]], ass=True)))
    return cues, seen


def _looks_like_ass(text: str) -> bool:
    head = text[:4096].lower()
    return "[script info]" in head or "[events]" in head


def _finish(cues: list[_Cue], duration: float | None) -> list[TextSpan]:
    """Spans sorted by start: empty and zero-length cues dropped, clamped to ``duration``, repeats merged.

    Overlapping cues keep their own times. A cue touching the previous one that repeats its trailing
    lines (roll-up captions such as YouTube's automatic ones) keeps only its new lines; one with nothing
    new extends the previous span instead.
    """
    limit = float(duration) if duration is not None and math.isfinite(duration) else None
    ordered = sorted(
        (c for c in cues if c.end is not None and math.isfinite(c.start) and math.isfinite(c.end)),
        key=lambda c: (c.start, c.end),
    )
    spans: list[TextSpan] = []
    before: list[str] = []
    before_end = -math.inf
    for cue in ordered:
        start, end = max(cue.start, 0.0), float(cue.end or 0.0)
        if limit is not None:
            if start >= limit:
                continue
            end = min(end, limit)
        if end <= start or not cue.lines:
            continue
        new = _new_lines(before, cue.lines) if start <= before_end + _TOUCH_S else cue.lines
        before, before_end = cue.lines, end
        if new:
            spans.append(TextSpan(start, end, " ".join(new)))
        elif spans and end > spans[-1].end:
            last = spans[-1]
            spans[-1] = TextSpan(last.start, end, last.text, last.kind)
    return spans


def _new_lines(before: list[str], after: list[str]) -> list[str]:
    """``after`` without its leading lines that repeat the trailing lines of ``before``."""
    for k in range(min(len(before), len(after)), 0, -1):
        if before[-k:] == after[:k]:
            return after[k:]
    return after


def _parse(data: bytes, name: str, duration: float | None) -> tuple[list[TextSpan], str | None]:
    """Spans of a subtitle file's bytes and the fallback encoding used, if any."""
    _check_size(len(data), name)
    text, fallback = decode_text(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        raise InputError(f"{name} is not a subtitle file (it holds binary data)")
    if _looks_like_ass(text) and not text.lstrip().startswith("WEBVTT"):
        cues, seen = _parse_ass(text)
    else:
        cues, seen = _parse_cues(text)
        if not seen:
            cues, seen = _parse_ass(text)  # bare ``Dialogue:`` lines without the section headers
    if not seen and not text.strip():
        return [], fallback
    if not cues:
        what = (
            "no SRT, WebVTT or ASS cues found" if not seen else f"none of its {seen} cue times could be read"
        )
        raise InputError(f"{name} is not a subtitle file ({what})")
    return _finish(cues, duration), fallback


def parse_subtitles(data: bytes, name: str, *, duration: float | None = None) -> list[TextSpan]:
    """Spans of an SRT, WebVTT or ASS/SSA file (detected by content); InputError naming ``name`` if not."""
    spans, fallback = _parse(data, name, duration)
    if fallback:
        log.info("%s is not UTF-8; read as %s", name, fallback)
    return spans


def read_subtitle_file(path: Path, *, duration: float | None = None) -> tuple[list[TextSpan], list[str]]:
    """Spans of a subtitle file and one-line notices (encoding fallback); InputError if unusable."""
    try:
        _check_size(path.stat().st_size, path.name)  # before reading: never load a huge file
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read {path.name}: {err.strerror or err}") from None
    spans, fallback = _parse(data, path.name, duration)
    notices = [f"{path.name} is not UTF-8; read as {fallback}"] if fallback else []
    return spans, notices


# --- languages ----------------------------------------------------------------------------------------------


def normalize_language(tag: str | None) -> str | None:
    """ISO 639-1 code (``en``) of a tag such as ``en``, ``en-US``, ``eng``, ``fre``; None if unknown."""
    if not tag:
        return None
    primary = tag.strip().lower().replace("_", "-").split("-")[0]
    if len(primary) == 2 and primary.isalpha():
        return primary
    if len(primary) == 3 and primary not in ("und", "mul", "zxx", "mis"):
        if primary in _ISO639_2B:
            return _ISO639_2B[primary]
        from yt_dlp.utils import ISO639Utils  # type: ignore[import-untyped]  # ISO 639-2/T codes

        short = ISO639Utils.long2short(primary)
        return str(short) if short else None
    return None


def _language_rank(tag: str | None, lang: str) -> int:
    """0: the tag is ``lang`` exactly; 1: the same language (another region or code); 2: no tag; 3: other."""
    if not tag:
        return 2
    if tag.lower().replace("_", "-") == lang.lower().replace("_", "-"):
        return 0
    wanted = normalize_language(lang)
    return 1 if wanted is not None and normalize_language(tag) == wanted else 3


# --- sidecar files ------------------------------------------------------------------------------------------


def _sidecar_tags(video: Path, candidate: Path) -> tuple[str | None, bool] | None:
    """(language tag, forced) when ``candidate`` is a subtitle file of ``video``, else None."""
    name, stem = candidate.name, video.stem
    suffix = candidate.suffix.lower()
    if suffix not in SUBTITLE_EXTENSIONS or not name.casefold().startswith(stem.casefold() + "."):
        return None
    middle = name[len(stem) + 1 : len(name) - len(suffix)]
    tokens = [t for t in middle.split(".") if t] if middle else []
    lang: str | None = None
    forced = False
    for token in tokens:
        low = token.lower()
        if low in _MODIFIER_TOKENS:
            forced = forced or low in _FORCED_TOKENS
        elif lang is None and _LANG_TAG.fullmatch(token):
            lang = token
        else:
            return None  # ``talk.part2.srt`` belongs to ``talk.part2.mp4``, not to ``talk.mp4``
    return lang, forced


def find_sidecars(video: Path, lang: str = "en") -> list[Path]:
    """Subtitle files beside ``video``: ``lang`` first, then the plain name, then other languages."""
    video = Path(video)
    try:
        entries = list(video.parent.iterdir())
    except OSError:
        return []
    ranked: list[tuple[int, bool, int, str, int, str, Path]] = []
    for entry in entries:
        tags = _sidecar_tags(video, entry)
        if tags is None or not entry.is_file():
            continue
        tag, forced = tags
        rank = _language_rank(tag, lang)
        group = 0 if rank <= 1 else rank - 1  # the language (forced ones last), no tag, other languages
        ext_rank = SUBTITLE_EXTENSIONS.index(entry.suffix.lower())
        other = (tag or "").lower() if group == 2 else ""  # other languages: grouped by language
        ranked.append((group, forced, rank, other, ext_rank, entry.name, entry))
    return [r[-1] for r in sorted(ranked, key=lambda r: r[:6])]


# --- embedded streams ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubtitleStreamInfo:
    """A text subtitle stream inside a container: its index, codec, language tag and title."""

    index: int
    codec: str
    language: str | None
    title: str | None
    forced: bool
    default: bool


def open_media(path: Path) -> av.container.InputContainer:
    """Open a local media file for reading (no network protocols); SourceError / DecodeError."""
    p = Path(path)
    if not p.exists():
        raise SourceError(f"video file not found: {p}")
    if p.is_dir():
        raise SourceError(f"{p} is a folder, not a video file")
    try:
        return av.open(str(p), mode="r", options=dict(_OPEN_OPTIONS), metadata_errors="ignore")
    except PermissionError as err:
        raise SourceError(f"cannot read {p}: {err.strerror or err}") from None
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as err:
        raise DecodeError(f"{p} is not a readable video: {error_reason(err)}") from None


def video_start(container: av.container.InputContainer) -> float:
    """Seconds at which the (first non-cover-art) video stream starts: time 0 of every frame and span."""
    for stream in container.streams.video:
        if int(stream.disposition) & int(av.stream.Disposition.attached_pic):
            continue
        if stream.start_time is not None and stream.time_base is not None:
            return float(stream.start_time * stream.time_base)
        return 0.0
    return 0.0


def _is_text_stream(stream: av.subtitles.stream.SubtitleStream) -> bool:
    try:
        ctx = stream.codec_context
        return ctx is not None and bool(ctx.codec.text_sub)
    except (av.FFmpegError, ValueError, AttributeError):
        return False


def _stream_info(stream: av.subtitles.stream.SubtitleStream) -> SubtitleStreamInfo:
    meta = stream.metadata or {}
    disposition = int(stream.disposition)
    language = stream.language or meta.get("language")
    return SubtitleStreamInfo(
        index=stream.index,
        codec=stream.codec_context.name,
        language=None if not language or language.lower() == "und" else language,
        title=meta.get("title") or None,
        forced=bool(disposition & int(av.stream.Disposition.forced)),
        default=bool(disposition & int(av.stream.Disposition.default)),
    )


def embedded_subtitle_streams(video: Path) -> list[SubtitleStreamInfo]:
    """The text subtitle streams in ``video`` (mov_text, subrip, webvtt, ass/ssa); bitmap ones left out."""
    with open_media(video) as container:
        return [_stream_info(s) for s in container.streams.subtitles if _is_text_stream(s)]


def _pick_stream(streams: list[SubtitleStreamInfo], lang: str) -> SubtitleStreamInfo:
    """``lang`` first (full before forced), then the default stream, then the first."""
    return min(
        streams, key=lambda s: (_language_rank(s.language, lang) > 1, s.forced, not s.default, s.index)
    )


def _subtitle_text(item: object) -> list[str]:
    """Lines of one decoded subtitle rectangle (ASS dialogue or plain text)."""
    raw = getattr(item, "dialogue", None) or getattr(item, "text", None)
    if not raw:
        return []
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    return _clean_lines(text.replace("\r\n", "\n").split("\n"), ass=True)


def _pts(packet: av.Packet) -> int | None:
    return packet.pts if packet.pts is not None else packet.dts


def _read_stream(
    container: av.container.InputContainer, stream: av.subtitles.stream.SubtitleStream, label: str
) -> list[_Cue]:
    """Cues of one subtitle stream, timed from the video stream's start."""
    origin = video_start(container)
    time_base = stream.time_base
    cues: list[_Cue] = []

    def corrupt(bad: int, err: av.FFmpegError) -> None:
        raise DecodeError(f"{label}: its subtitle stream {stream.index} is corrupt") from None

    if time_base is None:
        return cues  # no packet can be timed
    timed = (p for p in container.demux(stream) if _pts(p) is not None and p.size)
    for packet, items in decoded_packets(timed, corrupt):
        pts = _pts(packet) or 0  # never None here: untimed packets are skipped above
        lines = [line for item in items for line in _subtitle_text(item)]
        if not lines:
            continue  # mov_text writes an empty sample to clear the screen
        start = float(pts * time_base) - origin
        end = start + float(packet.duration * time_base) if packet.duration else None
        cues.append(_Cue(start, end, lines))
    cues.sort(key=lambda c: c.start)
    for position, cue in enumerate(cues):
        following = cues[position + 1] if position + 1 < len(cues) else None  # none after the last (or none)
        if cue.end is None:
            limit = cue.start + _DEFAULT_CUE_S
            cue.end = min(limit, following.start) if following and following.start > cue.start else limit
    return cues


def _embedded(
    video: Path, lang: str, duration: float | None
) -> tuple[list[TextSpan], SubtitleStreamInfo] | None:
    with open_media(video) as container:
        streams = {s.index: s for s in container.streams.subtitles if _is_text_stream(s)}
        if not streams:
            return None
        chosen = _pick_stream([_stream_info(s) for s in streams.values()], lang)
        cues = _read_stream(container, streams[chosen.index], video.name)
    return _finish(cues, duration), chosen


def _embedded_origin(info: SubtitleStreamInfo) -> str:
    return f"subtitles:embedded stream {info.index} ({info.codec}, {info.language or 'und'})"


def read_embedded_subtitles(
    video: Path, lang: str = "en", duration: float | None = None
) -> tuple[list[TextSpan], str] | None:
    """Spans of the best text subtitle stream in ``video`` (``lang`` preferred) and their origin, or None."""
    found = _embedded(Path(video), lang, duration)
    return None if found is None else (found[0], _embedded_origin(found[1]))


def load_subtitles(
    video: Path, lang: str = "en", duration: float | None = None
) -> tuple[TextTrack | None, list[str]]:
    """The video's subtitles (sidecar first, then embedded) as a speech track, and one-line notices."""
    video = Path(video)
    notices: list[str] = []
    for path in find_sidecars(video, lang):
        try:
            spans, notes = read_subtitle_file(path, duration=duration)
        except InputError as err:
            notices.append(str(err))
            continue
        notices.extend(notes)
        if not spans:
            notices.append(f"{path.name} has no cues; skipped")
            continue
        tag = _sidecar_tags(video, path)
        language = normalize_language(tag[0]) if tag else None
        return TextTrack("speech", tuple(spans), f"subtitles:sidecar {path.name}", language), notices
    try:
        found = _embedded(video, lang, duration)
    except FrameseekError as err:
        notices.append(f"embedded subtitles of {video.name} skipped: {err}")
        return None, notices
    if found is None:
        return None, notices
    spans, info = found
    if not spans:
        notices.append(f"the embedded subtitles of {video.name} have no cues; skipped")
        return None, notices
    track = TextTrack("speech", tuple(spans), _embedded_origin(info), normalize_language(info.language))
    return track, notices
