"""The app's logic without Streamlit: inputs → a SearchResponse, progress with ETA, labels for the page.

``streamlit_app.py`` only draws; everything here is plain Python and is tested without a browser.
"""

from __future__ import annotations

import io
import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from frameseek import settings
from frameseek.errors import FrameseekError, InputError
from frameseek.index import SamplingSettings, library_entries
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.registry import DEFAULT_MODEL
from frameseek.search import Progress, Searcher, SearchResponse, SearchResult, clean_query
from frameseek.timecode import format_timecode
from frameseek.video.sources import VideoSource, from_upload

SOURCE_KINDS = ("Link", "Upload", "Library", "Local file")
UPLOAD_TYPES = ("mp4", "mkv", "webm", "mov", "avi", "m4v")
IMAGE_TYPES = ("png", "jpg", "jpeg", "webp")
MODEL_ENV = "FRAMESEEK_APP_MODEL"
"""Environment variable: the model the app selects at start (a preset name or a checkpoint folder)."""
LOCAL_FILES_ENV = "FRAMESEEK_APP_LOCAL_FILES"
"""Environment variable: ``1`` shows the "Local file" input even when the server is not on localhost."""
LOCAL_ADDRESSES = frozenset({"127.0.0.1", "localhost", "::1"})
"""Server addresses that only this machine can reach (Streamlit's default, no address, means all)."""
MIN_CLIP_SECONDS = 1.0

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
    """What the sidebar sets: model, how many results, how frames are sampled."""

    model: str = DEFAULT_MODEL
    top_k: int = 5
    fps: float = 1.0
    scene: bool = False
    scene_gap: float = 10.0
    min_gap: float = 2.0
    text_weight: float = 0.5

    def sampling(self) -> SamplingSettings:
        sampling = SamplingSettings(fps=self.fps, scene=self.scene, scene_max_gap=self.scene_gap)
        sampling.validate()
        return sampling


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


def check_query(text: str | None, has_image: bool) -> str | None:
    """The cleaned text query (None when only an image is given); empty input is an InputError."""
    if text is None or not text.strip():
        if has_image:
            return None
        raise InputError("the query is empty; type a sentence such as 'a cyclist wearing a helmet'")
    cleaned, _ = clean_query(text, settings.limits().max_query_chars)
    return cleaned


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


def load_query_image(data: bytes) -> Image.Image:
    """An uploaded query image as RGB, within the pixel limit; anything unreadable is an InputError."""
    max_pixels = settings.limits().max_pixels
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > max_pixels:
                raise InputError(
                    f"the query image is too large ({image.width}×{image.height}; limit {max_pixels} pixels)"
                )
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"cannot read the query image: {' '.join(str(exc).split())}") from None


def run_query(
    model: str | DualEncoder,
    source: SourceInput,
    query: str | None,
    options: QueryOptions,
    *,
    image: Image.Image | None = None,
    progress: Progress | None = None,
    library: str | None = "default",
) -> SearchResponse:
    """Validate the query, resolve the source (upload / link / path), index it if needed and search it.

    ``model`` is a loaded model (the app caches one per process) or a name; the stored index of a video is
    reused, so a second query on the same video costs one text encoding and a matrix product. Searched
    videos are recorded in ``library`` (None: not recorded), so the app can offer them again.
    """
    text = check_query(query, image is not None)
    sampling = options.sampling()
    searcher = Searcher(model, sampling=sampling, progress=progress)
    return searcher.search(
        to_source(source),
        query if text is not None else None,  # the raw text: the Searcher truncates it with a notice
        image=image,
        text_weight=options.text_weight,
        top_k=options.top_k,
        min_gap=options.min_gap,
        library=library,
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
    else:
        amount = f"{hms(done)}" + (f" of {hms(total)}" if total else "") + " of video"
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


def video_mime(path: str | Path) -> str:
    return _VIDEO_MIME.get(Path(path).suffix.lower(), "video/mp4")


def player_video(response: SearchResponse) -> str | None:
    """The video the player opens with: the best hit's, else the first searched video's."""
    if response.results:
        return response.results[0].video
    return response.timelines[0].video if response.timelines else None


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
            "Search latency", num("search_latency_ms", "ms"), "Query encoding plus scoring every frame"
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


def clip_window(hit: SearchResult) -> tuple[float, float]:
    """The hit's segment, widened around the hit to at least MIN_CLIP_SECONDS."""
    start, end = max(0.0, hit.start), hit.end
    if end - start < MIN_CLIP_SECONDS:
        start = max(0.0, hit.time - MIN_CLIP_SECONDS / 2)
        end = start + MIN_CLIP_SECONDS
    return start, end


def frame_jpeg(hit: SearchResult) -> bytes:
    """The hit's frame at full resolution as JPEG bytes."""
    from frameseek.video.export import export_frame

    with tempfile.TemporaryDirectory(prefix="frameseek-frame-") as tmp:
        out = export_frame(Path(hit.video), hit.time, Path(tmp) / "frame.jpg")
        return out.read_bytes()


def clip_mp4(hit: SearchResult) -> bytes:
    """The hit's segment as MP4 bytes."""
    from frameseek.video.export import export_clip

    start, end = clip_window(hit)
    with tempfile.TemporaryDirectory(prefix="frameseek-clip-") as tmp:
        out = export_clip(Path(hit.video), start, end, Path(tmp) / "clip.mp4")
        return out.read_bytes()
