"""The app's logic without Streamlit: inputs → a SearchResponse, progress with ETA, labels for the page.

``streamlit_app.py`` only draws; everything here is plain Python and is tested without a browser. One file
because it is the page's whole vocabulary (inputs, progress, results, transcript, metrics, downloads), each
section small, and the drawing side imports exactly one module; the sections below split it by topic.
"""

from __future__ import annotations

import html
import math
import os
import re
import string
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from frameseek.api import (
    DEFAULT_MODEL,
    FrameseekError,
    ImageLike,
    InputError,
    MomentQuery,
    Progress,
    Query,
    Sampling,
    Searcher,
    SearchResponse,
    SearchResult,
    TrackOptions,
    VideoSource,
    edit_file,
    edit_markers,
    export_frame,
    format_timecode,
    from_upload,
    highlight,
    hit_clip,
    library_entries,
    limits,
    load_query_image,
)

SOURCE_KINDS = ("Library", "Link", "Upload", "Local file")
UPLOAD_TYPES = ("mp4", "mkv", "webm", "mov", "avi", "m4v")
IMAGE_TYPES = ("png", "jpg", "jpeg", "webp")
MODEL_ENV = "FRAMESEEK_APP_MODEL"
"""Environment variable: the model the app selects at start (a preset name or a checkpoint folder)."""
LOCAL_FILES_ENV = "FRAMESEEK_APP_LOCAL_FILES"
"""Environment variable: ``1`` shows the "Local file" input even when the server is not on localhost."""
LOCAL_ADDRESSES = frozenset({"127.0.0.1", "localhost", "::1"})
"""Server addresses that only this machine can reach (Streamlit's default, no address, means all)."""

_VIDEO_MIME = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/webm",  # browsers play most MKV (VP8/VP9/H.264) when told it is WebM
    ".ogv": "video/ogg",
}


# ---------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Upload:
    """An uploaded file: its bytes and the name the browser gave (a display title only, never a path)."""

    data: bytes
    name: str


SourceInput = str | Upload
"""A link, a local path (a library entry is a local path), or an upload."""


@dataclass(frozen=True)
class QueryOptions:
    """What the sidebar sets: model, how many results, how frames are sampled, which text is searched."""

    model: str = DEFAULT_MODEL
    top_k: int = 5
    fps: float = 1.0
    scene: bool = False
    scene_gap: float = 10.0
    min_gap: float = 2.0
    text_weight: float = 0.5
    speech: bool = False
    """Recognise speech when a video has no subtitles (subtitles are always used when present)."""
    ocr: bool = False
    """Read the text shown on screen."""
    sub_lang: str = "en"
    extra: frozenset[str] = frozenset()
    """Further registered tracks to search (``faces``, ``sounds`` where installed)."""

    def sampling(self) -> Sampling:
        """The sampling these options ask for (validated: an impossible value is an InputError)."""
        return Sampling(fps=self.fps, scene=self.scene, scene_max_gap=self.scene_gap)

    def tracks(self) -> TrackOptions:
        """The text tracks these options ask for: subtitles always, speech and screen text when toggled
        (validated: a bad language code is an InputError worded for the page, not the CLI)."""
        try:
            return TrackOptions(
                subtitles=True,
                speech=self.speech,
                ocr=self.ocr,
                sub_lang=self.sub_lang.strip() or "en",
                extra=self.extra,
            )
        except InputError as exc:
            raise InputError(str(exc).replace("--sub-lang", "the subtitle language")) from None


def default_model() -> str:
    """The model selected when the page opens: ``$FRAMESEEK_APP_MODEL`` or the default preset."""
    return os.environ.get(MODEL_ENV, "").strip() or DEFAULT_MODEL


def local_files_allowed(server_address: str | None) -> bool:
    """Offer "a file on this machine" only when the server listens on localhost (or when enabled).

    ``frameseek app`` binds to 127.0.0.1; a bare ``streamlit run`` (no address) listens on every interface.
    """
    if os.environ.get(LOCAL_FILES_ENV, "").strip().lower() in ("1", "true", "yes"):
        return True
    return (server_address or "").strip() in LOCAL_ADDRESSES


def make_query(text: str | None, image: ImageLike | None, text_weight: float = 0.5) -> Query:
    """The page's query: a blank sentence beside an image means "search by the image"; empty input is an
    InputError (the same checks as the CLI and the Python API: ``Query.of``)."""
    return Query.of(
        "" if text is None else text,
        image,
        text_weight=text_weight,
        max_chars=limits().max_query_chars,
        image_only_if_blank=True,
    )


PAGE_WORDS = (
    ("--then step", "the 'then' sentence"),
    ("--then", "'then'"),
    ("--within", "'within'"),
    ("--min-duration", "'at least'"),
    ("--while", "'while'"),
    ("--first", "'first'"),
    ("--last", "'last'"),
    ("--count", "'count'"),
)
"""How the page names the CLI's options in a message."""


def make_moment_query(
    text: str | None,
    *,
    then: str = "",
    within: float | None = None,
    while_: str = "",
    at_least: float | None = None,
) -> MomentQuery | None:
    """The page's "then / while / at least" builder: A, then B (within N s); A while B; A lasting at
    least N s. None when none of them is filled in (a plain query); a blank field counts as not filled
    in; an invalid combination is one InputError worded for the page (the checks of ``MomentQuery.of``)."""
    then, while_ = then.strip(), while_.strip()
    if not then and not while_ and at_least is None and within is None:
        return None
    try:
        return MomentQuery.of(
            text or "",
            then=[then] if then else [],
            within=within,
            min_duration=at_least,
            while_=while_ or None,
            max_chars=limits().max_query_chars,
        )
    except InputError as exc:
        message = str(exc)
        for option, words in PAGE_WORDS:
            message = message.replace(option, words)
        raise InputError(message) from None


def check_source(source: SourceInput | None, kind: str) -> SourceInput:
    """The chosen source, or an InputError saying what to give for this kind of input."""
    if isinstance(source, Upload):
        return source
    if source is None or not source.strip():
        hint = {
            "Link": "paste a YouTube or web link",
            "Upload": "upload a video file",
            "Library": "pick a video from the library",
            "Local file": "type the path of a video file or folder",
        }.get(kind, "choose a video")
        raise InputError(f"no video chosen; {hint}")
    return source.strip()


def to_source(source: SourceInput) -> str | VideoSource:
    """An upload becomes a stored file (named by its sha256); links and paths go to the Searcher as is."""
    if isinstance(source, Upload):
        return from_upload(source.data, source.name)
    return source


def query_image(upload: Upload) -> Image.Image:
    """An uploaded query image as RGB (``frameseek.api.load_query_image``: transparency on white, within the
    pixel limit); anything unreadable is an InputError that names the file as the user gave it."""
    return load_query_image(upload.data, limits().max_pixels, name=upload.name)


def run_query(
    searcher: Searcher,
    source: SourceInput,
    query: Query | MomentQuery,
    options: QueryOptions,
    *,
    progress: Progress | None = None,
    library: str | None = "default",
) -> SearchResponse:
    """Resolve the source (upload / link / path), index it if needed and search it.

    ``searcher`` is the process's one Searcher for the chosen model (the app caches it, so the model is
    loaded and warmed up once); the sampling and progress are this query's. The stored index of a video is
    reused, so a second query on the same video costs one text encoding and a matrix product. Searched
    videos are recorded in ``library`` (None: not recorded), so the app can offer them again.
    """
    return searcher.search(
        to_source(source),
        query,
        top_k=options.top_k,
        min_gap=options.min_gap,
        library=library,
        sampling=options.sampling(),
        tracks=options.tracks(),
        progress=progress,
    )


def error_message(exc: BaseException) -> str:
    """One line for the page: a FrameseekError as is, anything else named (the traceback goes to the log)."""
    if isinstance(exc, FrameseekError):
        return str(exc)
    detail = " ".join(str(exc).split())
    return f"unexpected {type(exc).__name__}: {detail}" if detail else f"unexpected {type(exc).__name__}"


# ---------------------------------------------------------------------------------------- progress

STAGE_LABELS = {
    "download": "Downloading the video",
    "index": "Extracting and encoding frames",
    "encode": "Encoding frames",
    "speech": "Transcribing speech",
    "screen": "Reading on-screen text",
}


@dataclass(frozen=True)
class ProgressView:
    """What the progress bar shows for one callback."""

    stage: str
    label: str
    fraction: float | None
    eta_seconds: float | None
    text: str


class ProgressTracker:
    """Turns ``progress(stage, done, total)`` into a label, a fraction and an ETA (from elapsed / done).

    ``update`` returns None for callbacks that come too soon after the previous one (``min_interval``),
    so a fast pipeline does not flood the page; stage changes and completion always get through.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, min_interval: float = 0.1):
        self.clock = clock
        self.min_interval = min_interval
        self.stage: str | None = None
        self.stage_started = 0.0
        self.last_shown = -math.inf

    def update(self, stage: str, done: float, total: float | None) -> ProgressView | None:
        now = self.clock()
        if stage != self.stage:
            self.stage, self.stage_started, self.last_shown = stage, now, -math.inf
        fraction = min(1.0, max(0.0, done / total)) if total and total > 0 else None
        finished = fraction is not None and fraction >= 1.0
        if not finished and now - self.last_shown < self.min_interval:
            return None
        self.last_shown = now
        elapsed = now - self.stage_started
        eta = elapsed * (1 - fraction) / fraction if fraction and elapsed > 0 else None
        label = STAGE_LABELS.get(stage, stage.capitalize())
        return ProgressView(
            stage, label, fraction, eta, _progress_text(stage, label, done, total, fraction, eta)
        )


def _progress_text(
    stage: str, label: str, done: float, total: float | None, fraction: float | None, eta: float | None
) -> str:
    if stage == "download":
        amount = f"{done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else "")
    else:  # "speech" counts audio seconds; "index", "encode" and "screen" count video seconds
        medium = "audio" if stage == "speech" else "video"
        amount = f"{hms(done)}" + (f" of {hms(total)}" if total else "") + f" of {medium}"
    parts = [label, amount]
    if fraction is not None:
        parts.append(f"{fraction:.0%}")
    if eta is not None and fraction is not None and fraction < 1:
        parts.append(f"ETA {format_duration(eta)}")
    return " · ".join(parts)


def format_duration(seconds: float) -> str:
    """A short human duration: ``4 s``, ``2 min 05 s``, ``1 h 03 min``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


# ---------------------------------------------------------------------------------------- results


def hms(seconds: float) -> str:
    """``HH:MM:SS`` (the whole second the moment falls in)."""
    if not math.isfinite(seconds) or seconds < 0:
        seconds = 0.0
    return format_timecode(math.floor(seconds))[:8]


def segment_label(hit: SearchResult) -> str:
    return f"{hms(hit.start)}–{hms(hit.end)}"


def results_heading(response: SearchResponse) -> str:
    """The line above the moments: "Top N moments for …" when one matches well, else that nothing does
    (the closest moments are still shown below it)."""
    query = f"“{response.query}”" if response.query else "the image"
    if not response.found:
        return f"Nothing matches {query} well: the closest {len(response.results)} moments"
    if response.count is not None:  # an order, duration or overlap query: how many moments match
        one = response.count == 1
        return f"{response.count} moment{'' if one else 's'} match{'es' if one else ''} {query}"
    return f"Top {len(response.results)} moments for {query}"


def video_mime(path: str | Path) -> str:
    return _VIDEO_MIME.get(Path(path).suffix.lower(), "video/mp4")


def player_video(response: SearchResponse) -> str | None:
    """The video the player opens with: the best hit's, else the first searched video's."""
    if response.results:
        return response.results[0].video
    return response.timelines[0].video if response.timelines else None


_YOUTUBE = re.compile(r"^https?://(?:www\.|m\.)?(?:youtube\.com/(?:watch\?|shorts/|embed/)|youtu\.be/)", re.I)


def embed_link(response: SearchResponse, video: str | None) -> str | None:
    """The original YouTube link of ``video`` when it was downloaded from one: the player embeds it at the
    hit's time, so the viewer sees the full-quality original while frameseek indexed a small stream."""
    for line in response.timelines:
        if line.video == video and _YOUTUBE.match(line.origin or ""):
            return line.origin
    return None


def jump_points(response: SearchResponse, video: str | None) -> list[tuple[int, SearchResult]]:
    """(rank, hit) of the hits in ``video``, in time order: the player's jump list."""
    hits = [(rank, hit) for rank, hit in enumerate(response.results, 1) if hit.video == video]
    return sorted(hits, key=lambda item: item[1].time)


def timeline_rows(response: SearchResponse) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows for the similarity chart: every sampled frame, and the hits (marked)."""
    curve = [
        {"video": line.title, "time": float(t), "score": float(s)}
        for line in response.timelines
        for t, s in zip(line.times, line.scores, strict=True)
    ]
    hits = [
        {
            "video": hit.title,
            "time": hit.time,
            "score": hit.score,
            "rank": f"#{rank}",
            "timestamp": hms(hit.time),
            "segment": segment_label(hit),
        }
        for rank, hit in enumerate(response.results, 1)
    ]
    return curve, hits


@dataclass(frozen=True)
class MetricCard:
    label: str
    value: str
    help: str


def metric_cards(metrics: dict[str, Any]) -> list[MetricCard]:
    """The metrics panel: one card per measure, ``—`` when a stage did not run (e.g. a reused index)."""
    reused = bool(metrics.get("index_reused"))

    def num(key: str, unit: str, digits: int = 1) -> str:
        value = metrics.get(key)
        if value is None:
            return "—"
        return f"{float(value):,.{digits}f} {unit}".strip()

    def times(key: str) -> str:  # × real time
        value = metrics.get(key)
        return "—" if value is None else f"{float(value):,.1f}×"

    return [
        MetricCard(
            "Download",
            num("download_mb_per_s", "MB/s", 2),
            "Download throughput of a link (— for files, uploads, cached links)",
        ),
        MetricCard(
            "Extraction",
            num("extraction_frames_per_s", "frames/s"),
            "Frames decoded, resized and thumbnailed per second (— when the stored index was reused)",
        ),
        MetricCard(
            "Encoding FPS",
            num("encoding_frames_per_s", "frames/s"),
            "Frames embedded by the image encoder per second",
        ),
        MetricCard(
            "Frames processed",
            f"{int(metrics.get('frames_processed') or 0):,}",
            "Frames sampled and encoded in this run (0 when the index was reused)",
        ),
        MetricCard(
            "Transcription speed",
            times("transcription_audio_seconds_per_s"),
            "Speech recognition's speed in × real time: seconds of audio transcribed per second (— when it did "
            "not run: the video had subtitles, its transcript was reused, or Search speech is off)",
        ),
        MetricCard(
            "OCR",
            num("ocr_frames_per_s", "frames/s"),
            f"Frames read for on-screen text per second ({int(metrics.get('ocr_frames_read') or 0):,} read; "
            "— when it did not run: reused, or Search on-screen text is off)",
        ),
        MetricCard(
            "Search latency",
            num("search_latency_ms", "ms"),
            "Query encoding plus scoring every frame and every line of text",
        ),
        MetricCard(
            "CPU", num("cpu_percent", "%"), "CPU time of this process over wall time (100% = one core)"
        ),
        MetricCard("Peak memory", num("peak_rss_mb", "MB", 0), "Peak resident memory of the app process"),
        MetricCard(
            "Index",
            "reused" if reused else "built",
            f"Whole run: {float(metrics.get('wall_seconds') or 0):.2f} s",
        ),
    ]


# ---------------------------------------------------------------------------------------- text

MATCH_TEXT_CHARS = 220
"""A result card shows at most this much of the matched words (cut around the first match)."""
TRANSCRIPT_MAX_ROWS = 2000
"""The transcript panel draws at most this many lines (one button each: more would slow every rerun)."""
TRANSCRIPT_HEIGHT = 300
"""Pixels: the transcript panel scrolls inside this height (it sits under the docked player), less for a
few lines."""
TRANSCRIPT_ROW_HEIGHT = 48

_MARKDOWN_PUNCTUATION = re.compile(f"([{re.escape(string.punctuation)}])")
_MARKDOWN_ENTITIES = str.maketrans({c: f"&#{ord(c)};" for c in "\\`*_[]{}()!|~$:^="})
"""Characters Markdown or Streamlit's extensions (math, directives, emoji) act on, as HTML entities; none of
them occurs in what ``html.escape`` writes, so the two compose."""


BadgeColor = Literal["blue", "orange", "violet", "gray", "green", "red"]


@dataclass(frozen=True)
class Badge:
    """A result card's "what matched" badge (``st.badge`` arguments)."""

    label: str
    icon: str
    color: BadgeColor
    help: str


MATCH_BADGES = {
    "visual": Badge("Visual", ":material/image:", "blue", "The picture matches the query"),
    "speech": Badge(
        "Speech", ":material/record_voice_over:", "orange", "Words said (subtitles or speech) match the query"
    ),
    "screen": Badge(
        "On screen", ":material/screenshot_monitor:", "violet", "Text on screen matches the query"
    ),
    "sounds": Badge("Sound", ":material/music_note:", "green", "What is heard matches the query"),
    "faces": Badge("Face", ":material/face:", "red", "This person is seen here"),
}
KIND_ICONS = {"speech": MATCH_BADGES["speech"].icon, "screen": MATCH_BADGES["screen"].icon}
"""The transcript panel's icon for a line said and a line read on screen."""


def match_badges(match: str) -> list[Badge]:
    """A badge per part of ``SearchResult.match`` (``"speech+visual"`` → Speech, Visual), strongest first."""
    badges: list[Badge] = []
    for part in (p.strip().lower() for p in match.split("+")):
        badge = MATCH_BADGES.get(part) or (
            Badge(markdown_text(part.capitalize()), ":material/label:", "gray", "") if part else None
        )
        if badge is not None and badge not in badges:
            badges.append(badge)
    return badges


def markdown_text(text: str) -> str:
    """Untrusted text (subtitles, OCR) as literal Markdown for a widget label: whitespace collapsed and every
    ASCII punctuation mark backslash-escaped, so it can make no link, image, emphasis, code, math or icon."""
    return _escape_markdown(" ".join(text.split()))


def _escape_markdown(text: str) -> str:
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)


def html_text(text: str) -> str:
    """Untrusted text as HTML text: ``html.escape`` (tags, quotes, ``&``), plus Markdown's active characters
    as entities, so ``st.markdown(..., unsafe_allow_html=True)`` shows it literally."""
    return html.escape(text, quote=True).translate(_MARKDOWN_ENTITIES)


def _excerpt(text: str, ranges: list[tuple[int, int]], limit: int) -> tuple[str, list[tuple[int, int]]]:
    """At most ``limit`` characters of ``text`` around its first range (``…`` where cut), ranges moved."""
    if len(text) <= limit:
        return text, ranges
    anchor = ranges[0][0] if ranges else 0
    start = max(0, min(anchor - limit // 4, len(text) - limit))
    end = start + limit
    head = "…" if start > 0 else ""
    moved = [
        (max(a, start) - start + len(head), min(b, end) - start + len(head))
        for a, b in ranges
        if b > start and a < end
    ]
    return head + text[start:end] + ("…" if end < len(text) else ""), moved


def _marked(text: str, query: str | None, limit: int | None = None) -> list[tuple[str, bool]]:
    """``text`` (whitespace collapsed, cut to ``limit``) as pieces, each flagged when it matched ``query``."""
    text = " ".join(text.split())
    ranges = highlight(text, query) if query else []
    if limit is not None:
        text, ranges = _excerpt(text, ranges, limit)
    pieces: list[tuple[str, bool]] = []
    at = 0
    for start, end in ranges:
        pieces += [(text[at:start], False), (text[start:end], True)]
        at = end
    pieces.append((text[at:], False))
    return [(piece, matched) for piece, matched in pieces if piece]


def highlight_html(text: str, query: str | None, limit: int = MATCH_TEXT_CHARS) -> str:
    """The matched words of a result card as safe HTML: every character of ``text`` escaped, the parts that
    matched ``query`` in ``<mark>``, long text cut around the first match.

    One ``<div>`` on one line (whitespace collapsed): Markdown passes an HTML block through untouched, so
    nothing in the text is read as Markdown either.
    """
    body = "".join(
        f"<mark>{html_text(p)}</mark>" if hit else html_text(p) for p, hit in _marked(text, query, limit)
    )
    return f'<div class="frameseek-said">“{body}”</div>'


@dataclass(frozen=True)
class TranscriptRow:
    """One line of the transcript panel."""

    start: float
    end: float
    text: str
    kind: str
    """``speech`` (said: subtitles, speech recognition) or ``screen`` (read on screen)."""
    icon: str
    label: str
    """Markdown: the timecode and the escaped words, the parts that matched the query in bold."""
    matched: bool


def transcript_rows(response: SearchResponse, video: str | None) -> list[TranscriptRow]:
    """Every span of ``video``'s text tracks, in time order (said before shown at the same time)."""
    rows: list[TranscriptRow] = []
    for span in response.transcripts.get(video or "", []):
        try:
            start, end = float(span["start"]), float(span["end"])
            text, kind = str(span["text"]), str(span.get("kind") or "speech")
        except (KeyError, TypeError, ValueError):
            continue  # a malformed span is left out, never a traceback
        if not math.isfinite(start) or not text.strip():
            continue
        pieces = _marked(text, response.query)
        words = "".join(f"**{_escape_markdown(p)}**" if hit else _escape_markdown(p) for p, hit in pieces)
        rows.append(
            TranscriptRow(
                start,
                end,
                " ".join(text.split()),
                kind,
                KIND_ICONS.get(kind, ":material/notes:"),
                f"`{hms(start)}` {words}",
                any(hit for _, hit in pieces),
            )
        )
    return sorted(rows, key=lambda r: (r.start, r.kind != "speech", r.end))


def active_row(rows: list[TranscriptRow], seconds: float) -> int | None:
    """Index of the line the player is at (the latest started one still running at ``seconds``, a whole
    second as the player keeps it), or None."""
    found = None
    for i, row in enumerate(rows):
        first = math.floor(row.start)
        if first <= seconds < max(row.end, first + 1):
            found = i
    return found


def transcript_height(rows: int) -> int:
    """The transcript panel's height in pixels: its lines' (one line of text each), at most TRANSCRIPT_HEIGHT."""
    return max(TRANSCRIPT_ROW_HEIGHT * 2, min(TRANSCRIPT_HEIGHT, 40 + TRANSCRIPT_ROW_HEIGHT * rows))


def transcript_note(rows: list[TranscriptRow]) -> str:
    """The caption above the transcript panel: how many lines, of which kinds, and whether it is cut."""
    said = sum(r.kind == "speech" for r in rows)
    kinds = [f"{said:,} said" if said else "", f"{len(rows) - said:,} on screen" if len(rows) > said else ""]
    note = " · ".join(k for k in kinds if k) + " · click a line to play from there"
    if len(rows) > TRANSCRIPT_MAX_ROWS:
        note = f"The first {TRANSCRIPT_MAX_ROWS:,} of {len(rows):,} lines · " + note
    return note


# ---------------------------------------------------------------------------------------- library


@dataclass(frozen=True)
class LibraryVideo:
    title: str
    path: str
    frames: int

    @property
    def label(self) -> str:
        name = Path(self.path).name
        where = "uploaded" if re.fullmatch(r"[0-9a-f]{64}", Path(self.path).stem) else name
        return f"{self.title} ({where})"


def library_videos(name: str = "default") -> list[LibraryVideo]:
    """The library's videos whose files still exist, one per video content, sorted by title."""
    seen: dict[str, LibraryVideo] = {}
    for entry in library_entries(name):
        path = str(entry.get("path") or "")
        sha = str(entry.get("video_sha256") or path)
        if not path or sha in seen or not Path(path).is_file():
            continue
        seen[sha] = LibraryVideo(
            str(entry.get("title") or Path(path).stem), path, int(entry.get("frames") or 0)
        )
    return sorted(seen.values(), key=lambda v: (v.title.lower(), v.path))


# ---------------------------------------------------------------------------------------- downloads


def download_name(hit: SearchResult, suffix: str) -> str:
    """A safe file name for a hit's frame or clip: ``<title>-00h00m09s.jpg``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", hit.title).strip("-._")[:60] or "video"
    return f"{stem}-{hms(hit.time).replace(':', '')}{suffix}"


def frame_jpeg(hit: SearchResult) -> bytes:
    """The hit's frame at full resolution as JPEG bytes."""
    with tempfile.TemporaryDirectory(prefix="frameseek-frame-") as tmp:
        out = export_frame(Path(hit.video), hit.time, Path(tmp) / "frame.jpg")
        return out.read_bytes()


def clip_mp4(hit: SearchResult, pad_before: float = 0.0, pad_after: float = 0.0) -> bytes:
    """The hit's clip (the one clip rule, ``frameseek.api.clip_window``, with ``pad_before`` / ``pad_after``
    seconds of handles) as MP4 bytes with sound."""
    with tempfile.TemporaryDirectory(prefix="frameseek-clip-") as tmp:
        out = hit_clip(hit, Path(tmp) / "clip.mp4", pad_before=pad_before, pad_after=pad_after)
        return out.read_bytes()


# ---------------------------------------------------------------------------------------- for editors

PAD_MAX_SECONDS = 10.0
"""The pad sliders' range: handles of up to this many seconds before and after each segment."""
PAD_KEYS = ("pad_before", "pad_after")
MARKER_CHOICES = {
    "EDL (CMX 3600)": "edl",
    "OTIO (OpenTimelineIO)": "otio",
    "Final Cut Pro (FCPXML)": "fcpxml",
    "Premiere / Resolve (FCP7 XML)": "fcp7",
}
"""The markers format picker: label → ``frameseek.editing.markers`` format."""
_MARKER_FILES = {
    "edl": (".edl", "text/plain"),
    "otio": (".otio", "application/json"),
    "fcpxml": (".fcpxml", "application/xml"),
    "fcp7": (".xml", "application/xml"),
}


PICK_PREFIX = "pick-"


def pick_key(rank: int) -> str:
    """The session-state key of a result card's "Select" checkbox."""
    return f"{PICK_PREFIX}{rank}"


def picked_hits(response: SearchResponse, state: Any) -> list[SearchResult]:
    """The hits whose card is selected (every card is, until unticked), in rank order."""
    return [hit for rank, hit in enumerate(response.results, 1) if state.get(pick_key(rank), True)]


def pads(state: Any) -> tuple[float, float]:
    """The pad sliders' seconds (before, after): 0 until moved, clamped to [0, PAD_MAX_SECONDS]."""
    values = []
    for key in PAD_KEYS:
        try:
            value = float(state.get(key, 0.0) or 0.0)
        except (TypeError, ValueError):
            value = 0.0
        values.append(min(PAD_MAX_SECONDS, max(0.0, value)) if math.isfinite(value) else 0.0)
    return values[0], values[1]


def supercut_mp4(hits: list[SearchResult], pad_before: float = 0.0, pad_after: float = 0.0) -> bytes:
    """The hits' clips (with handles) one after another in one MP4 with sound (``frameseek.api.edit_file``,
    the same cut as the Clip buttons, the command line and the service)."""
    if not hits:
        raise InputError("select at least one moment for the supercut")
    return edit_file(hits, "mp4", pad_before=pad_before, pad_after=pad_after).data


def markers_file(
    hits: list[SearchResult], kind: str, query: str | None, pad_before: float = 0.0, pad_after: float = 0.0
) -> bytes:
    """The hits as edit markers: ``edl`` (CMX 3600), ``otio`` (OpenTimelineIO), ``fcpxml`` (Final Cut Pro X)
    or ``fcp7`` (Final Cut 7 XML: Premiere Pro, DaVinci Resolve), UTF-8 bytes; the same cut as ``supercut_mp4``."""
    return edit_markers(hits, kind, query=query, pad_before=pad_before, pad_after=pad_after).encode("utf-8")


def markers_download(kind: str) -> tuple[str, str]:
    """(file suffix, MIME type) of a markers file."""
    return _MARKER_FILES.get(kind, _MARKER_FILES["edl"])


def edit_name(response: SearchResponse, suffix: str) -> str:
    """A safe file name for the supercut or the markers: ``supercut-<query>.mp4``."""
    words = re.sub(r"[^A-Za-z0-9._-]+", "-", response.query or "image-query").strip("-._")[:40]
    return f"supercut-{words or 'moments'}{suffix}"
