"""Resolve what the user gave (a file, a folder, an http(s) link, an upload) to local video files.

Links go through yt-dlp (YouTube, other supported sites, and direct file links via its generic
extractor). Downloads are cached by URL in ``settings.downloads_dir()``: ``<key>/<file>`` plus a JSON
sidecar ``<key>.json`` (``key`` = sha256 of the URL). yt-dlp works in a temporary folder beside the
target that is renamed into place only once the file is complete and checked to be a video.

One module because files, folders, uploads and links all end in a ``VideoSource`` with a content hash,
and the link path's limits (size, time, schemes) are one policy. yt-dlp's shared options and messages are
in ``video/ytdlp.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import filelock

from frameseek import settings
from frameseek.errors import DecodeError, InputError, SourceError, one_line
from frameseek.system.atomic import (
    atomic_dir,
    discard_stale_temporaries,
    write_bytes_atomic,
    write_text_atomic,
)
from frameseek.video.decode import VideoInfo, probe
from frameseek.video.ytdlp import YtdlpLogger, ytdlp_one_line, ytdlp_options

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp"}
)
"""File extensions a folder listing picks up (case-insensitive); also the only ones kept for uploads."""

ALLOWED_SCHEMES = frozenset({"http", "https"})
ALLOWED_PROTOCOLS = frozenset(
    {
        "http",
        "https",
        "m3u8",
        "m3u8_native",
        "http_dash_segments",
        "http_dash_segments_generator",
        "ism",
        "f4m",
    }
)
"""yt-dlp download protocols that only fetch http(s) URLs with yt-dlp's own networking."""

MAX_URL_CHARS = 4096
_CHUNK = 1024 * 1024
_MB = 1024 * 1024
_HASH_CACHE_SIZE = 10_000
_LOCK_TIMEOUT_S = 3600.0
_URL_CHARS = 200
"""Characters of a link shown in an error message (a longer one ends in "...")."""
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")
_NON_HTTP_MARKERS = ("No connection adapters", "Unsupported url scheme", "is not allowed")
"""yt-dlp / requests / urllib wording when a link (or a redirect) leads to a non-http(s) URL."""

Progress = Callable[[int, int | None], None]
"""``progress(downloaded_bytes, total_bytes_or_None)``."""


@dataclass(frozen=True)
class DownloadStats:
    """How a download went: size, wall time and throughput (MB = 2**20 bytes, as in the limits)."""

    bytes: int
    seconds: float
    mb_per_s: float
    width: int | None = None  # the downloaded stream's picture size
    height: int | None = None


@dataclass(frozen=True)
class VideoSource:
    """A local video file and where it came from; ``download`` is set only when it was just fetched."""

    path: Path
    origin: str
    title: str
    sha256: str
    download: DownloadStats | None = None


# --- hashing ----------------------------------------------------------------------------------------

_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's content, read in 1 MiB chunks; memoised by (path, size, mtime_ns)."""
    p = Path(path).resolve()
    stat = p.stat()
    key = (str(p), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        cached = _hash_cache.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with open(p, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    _remember_hash(key, value)
    return value


def _remember_hash(key: tuple[str, int, int], value: str) -> None:
    """Store a hash, dropping the oldest entries beyond the cache size."""
    with _hash_lock:
        _hash_cache[key] = value
        while len(_hash_cache) > _HASH_CACHE_SIZE:
            del _hash_cache[next(iter(_hash_cache))]


# --- local files and folders ------------------------------------------------------------------------


def is_video_name(name: str) -> bool:
    """True if ``name`` ends with one of ``VIDEO_EXTENSIONS`` (case-insensitive)."""
    return Path(name).suffix.lower() in VIDEO_EXTENSIONS


def list_videos(folder: str | Path) -> list[Path]:
    """Video files under ``folder`` (recursive, hidden entries and symlinked folders skipped), sorted."""
    root = Path(folder)
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=None, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath, f) for f in filenames if not f.startswith(".") and is_video_name(f))
    return sorted((p for p in found if p.is_file()), key=lambda p: p.relative_to(root).as_posix())


def _local_source(path: Path, origin: str) -> VideoSource:
    """A VideoSource for an existing local file."""
    try:
        digest = file_sha256(path)
    except OSError as err:
        raise SourceError(f"cannot read {path}: {err.strerror or err}") from None
    return VideoSource(path=path.resolve(), origin=origin, title=path.stem, sha256=digest)


def _resolve_local(path: Path, origin: str) -> list[VideoSource]:
    """One file, or every video in a folder."""
    if path.is_file():
        return [_local_source(path, origin)]
    if path.is_dir():
        videos = list_videos(path)
        if not videos:
            exts = " ".join(sorted(VIDEO_EXTENSIONS))
            raise SourceError(f"no videos found in folder {path} (looked for {exts})")
        return [_local_source(p, origin) for p in videos]
    if path.exists():
        raise SourceError(f"{path} is neither a file nor a folder")
    raise SourceError(f"no such file or folder: {path}")


# --- dispatch ---------------------------------------------------------------------------------------


def _scheme(text: str) -> str | None:
    """The URL scheme of ``text`` (lower case) if it looks like a link; None for a path (C:\\ included)."""
    match = _SCHEME.match(text)
    return match.group(1).lower() if match else None


def is_link(text: str) -> bool:
    """True if ``text`` (stripped) starts with a URL scheme (``https:``, ``ftp:``, ...): a link, not a path
    (a drive letter such as ``C:\\`` is a path)."""
    return _scheme(text.strip()) is not None


def check_url(url: str) -> str:
    """Return ``url`` stripped if it is an acceptable http(s) link, else raise SourceError."""
    url = url.strip()
    scheme = _scheme(url)
    if scheme not in ALLOWED_SCHEMES:
        raise SourceError(
            f"unsupported link {one_line(url, _URL_CHARS)!r}: only http:// and https:// links are accepted"
        )
    if len(url) > MAX_URL_CHARS or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise SourceError(f"not a valid link: {one_line(url, _URL_CHARS)!r}")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise SourceError(f"not a valid link: {one_line(url, _URL_CHARS)!r}") from None
    if not parts.hostname:
        raise SourceError(f"not a valid link (no host name): {one_line(url, _URL_CHARS)!r}")
    return url


DEFAULT_MIN_SHORT_SIDE = 448
"""Links download the smallest stream whose short side is at least this (2 × the models' 224 px input),
else the largest there is: fewer bytes and ~4× fewer pixels to decode than 720p, nothing lost at 224 px."""


def resolve(
    source: str | Path,
    *,
    progress: Progress | None = None,
    min_short_side: int = DEFAULT_MIN_SHORT_SIDE,
    guard: AbstractContextManager[object] | None = None,
) -> list[VideoSource]:
    """Local file -> one source; folder -> its videos (sorted); http(s) link -> the downloaded video.

    ``guard`` is entered around a link's download (see ``download``)."""
    if isinstance(source, Path):
        return _resolve_local(source.expanduser(), str(source))
    text = source.strip()
    if not text:
        raise SourceError("no video given (empty path or link)")
    if _scheme(text) is not None:
        return [download(text, progress=progress, min_short_side=min_short_side, guard=guard)]
    return _resolve_local(Path(text).expanduser(), source)


# --- uploads ----------------------------------------------------------------------------------------


def _safe_title(name: str, default: str) -> str:
    """A one-line display title from an untrusted file name (never used as a path)."""
    base = re.split(r"[\\/]", name)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    clean = " ".join("".join(ch for ch in stem if ch.isprintable()).split()).strip(". ")
    return clean[:200] or default


def _safe_extension(name: str) -> str:
    """The lower-case extension of ``name`` if it is a known video extension, else ''."""
    base = re.split(r"[\\/]", name)[-1]
    suffix = ("." + base.rsplit(".", 1)[1].lower()) if "." in base else ""
    return suffix if suffix in VIDEO_EXTENSIONS else ""


def from_upload(data: bytes, filename: str) -> VideoSource:
    """Store uploaded bytes as ``uploads_dir()/<sha256><ext>`` (the user's file name is never a path)."""
    limit = settings.limits().max_upload_bytes
    if not data:
        raise SourceError(f"the upload {_safe_title(filename, 'upload')!r} is empty")
    if len(data) > limit:
        raise SourceError(f"the upload is too large: {_mb(len(data))} MB (limit {_mb(limit)} MB)")
    digest = hashlib.sha256(data).hexdigest()
    target = settings.uploads_dir() / f"{digest}{_safe_extension(filename)}"
    if not (target.is_file() and target.stat().st_size == len(data)):
        write_bytes_atomic(target, data)
    stat = target.stat()
    _remember_hash((str(target.resolve()), stat.st_size, stat.st_mtime_ns), digest)
    return VideoSource(
        path=target.resolve(), origin=filename, title=_safe_title(filename, "upload"), sha256=digest
    )


def _mb(n: int) -> str:
    """Bytes as MB (2**20, like ``FRAMESEEK_MAX_*_MB``) with one decimal."""
    return f"{n / _MB:.1f}"


# --- downloads --------------------------------------------------------------------------------------


def url_key(url: str) -> str:
    """Cache key of a link: the first 32 hex digits of its sha256."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


def _sidecar(root: Path, key: str) -> Path:
    """The JSON file that maps a link to its downloaded file."""
    return root / f"{key}.json"


def _cached(root: Path, key: str, url: str) -> VideoSource | None:
    """The cached download of ``url`` if its sidecar and complete file are present."""
    try:
        meta = json.loads(_sidecar(root, key).read_text(encoding="utf-8"))
        path = (root / meta["file"]).resolve()
        if (
            meta["url"] != url
            or not path.is_relative_to(root.resolve())
            or path.stat().st_size != meta["bytes"]
        ):
            return None
        return VideoSource(path=path, origin=url, title=str(meta["title"]), sha256=file_sha256(path))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class _TooLarge(Exception):
    """Raised from the progress hook to abort a download past the size or time limit."""


def _progress_hook(
    progress: Progress | None, limit: int, deadline_s: float | None = None
) -> Callable[[dict[str, Any]], None]:
    """A yt-dlp progress hook: forwards bytes, enforces the size limit (sums merged formats) and the
    overall download deadline (a server trickling bytes cannot keep a download going for ever)."""
    started = time.monotonic()
    done: dict[str, int] = {}
    totals: dict[str, int | None] = {}

    def hook(d: dict[str, Any]) -> None:
        if d.get("status") not in ("downloading", "finished"):
            return
        name = str(d.get("filename") or d.get("tmpfilename") or "")
        done[name] = int(d.get("downloaded_bytes") or 0)
        totals[name] = d.get("total_bytes") or d.get("total_bytes_estimate")
        got = sum(done.values())
        total = None if any(t is None for t in totals.values()) else sum(int(t or 0) for t in totals.values())
        if got > limit or (total is not None and total > limit):
            raise _TooLarge(_too_large())
        if deadline_s and time.monotonic() - started > deadline_s:
            raise _TooLarge(f"took longer than the download time limit of {deadline_s:g} s")
        if progress is not None:
            progress(got, total)

    return hook


def _format_urls(info: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(url, protocol) of the format(s) yt-dlp is about to download."""
    formats = info.get("requested_formats") or [info]
    for fmt in formats:
        yield str(fmt.get("url") or ""), str(fmt.get("protocol") or "")


def _match_filter(rejected: list[str]) -> Callable[..., str | None]:
    """A yt-dlp match filter that refuses non-http(s) media URLs and protocols outside the allowed set."""

    def check(info: dict[str, Any], *, incomplete: bool = False) -> str | None:
        if incomplete:
            return None
        for url, protocol in _format_urls(info):
            scheme = (_scheme(url) or "") if url else "http"
            protocols = set(protocol.split("+")) if protocol else {"http"}
            if scheme not in ALLOWED_SCHEMES or not protocols <= ALLOWED_PROTOCOLS:
                reason = f"the media is served over {scheme}/{protocol or '?'}, only http(s) is allowed"
                rejected.append(reason)
                return reason
        return None

    return check


def _ytdlp_options(
    work: Path,
    hook: Callable[[dict[str, Any]], None],
    logger: YtdlpLogger,
    rejected: list[str],
    min_short_side: int,
) -> dict[str, Any]:
    """yt-dlp options (``ytdlp_options``) for a video: bounded in size, one merged mp4, no subtitles.

    ``+res:N`` sorts formats by their short side, preferring the smallest at or above N and, when none
    reaches N, the largest below it (yt-dlp's format sorting; checked on 144p…1080p ladders).
    """
    return ytdlp_options(
        work,
        logger,
        hook,
        format="bv*+ba/b",
        format_sort=[f"+res:{int(min_short_side)}"],
        outtmpl={"default": "video.%(ext)s"},
        max_filesize=settings.limits().max_download_bytes,
        fragment_retries=1,
        match_filter=_match_filter(rejected),
        merge_output_format="mp4",
        hls_prefer_native=True,
        continuedl=False,
        writesubtitles=False,
    )


def _explain(url: str, err: BaseException | str, logger: YtdlpLogger) -> SourceError:
    """Map a yt-dlp failure to a one-line SourceError."""
    reason = ytdlp_one_line(err) or logger.last()
    if "Unsupported URL" in reason:
        return SourceError(f"{one_line(url, _URL_CHARS)} is not a video (no video found at that address)")
    if any(marker in reason for marker in _NON_HTTP_MARKERS):
        return SourceError(
            f"could not download {one_line(url, _URL_CHARS)}: it leads to a non-http(s) address ({reason})"
        )
    return SourceError(f"could not download {one_line(url, _URL_CHARS)}: {one_line(reason, 300)}")


def _run_ytdlp(url: str, work: Path, progress: Progress | None, min_short_side: int) -> dict[str, Any]:
    """Download ``url`` into ``work`` with yt-dlp; return its info dict or raise SourceError."""
    import yt_dlp  # slow import: only when a link is given

    logger = YtdlpLogger()
    rejected: list[str] = []
    lim = settings.limits()
    hook = _progress_hook(progress, lim.max_download_bytes, lim.download_timeout_s)
    options = _ytdlp_options(work, hook, logger, rejected, min_short_side)
    try:
        with yt_dlp.YoutubeDL(options) as ydl:  # type: ignore[arg-type]
            info = ydl.extract_info(url, download=True)
    except _TooLarge as err:
        raise SourceError(f"could not download {one_line(url, _URL_CHARS)}: {err}") from None
    except Exception as err:  # yt-dlp raises many types (DownloadError, RequestError, OSError, ...)
        raise _explain(url, err, logger) from None
    if rejected:
        raise SourceError(f"could not download {one_line(url, _URL_CHARS)}: {rejected[0]}")
    if any("larger than max-filesize" in m for m in logger.messages):
        raise SourceError(f"could not download {one_line(url, _URL_CHARS)}: {_too_large()}")
    if not isinstance(info, dict):
        raise SourceError(f"{one_line(url, _URL_CHARS)} is not a video (no video found at that address)")
    if info.get("_type") in ("playlist", "multi_video"):
        entries = [e for e in info.get("entries") or [] if isinstance(e, dict)]
        info = entries[0] if entries else info
    return info


def _downloaded_file(url: str, work: Path, info: dict[str, Any]) -> Path:
    """The single complete media file yt-dlp left in ``work``."""
    candidates = [
        Path(d["filepath"])
        for d in info.get("requested_downloads") or []
        if isinstance(d, dict) and d.get("filepath")
    ]
    candidates = [p for p in candidates if p.is_file() and p.resolve().parent == work.resolve()]
    if not candidates:
        candidates = sorted(
            p for p in work.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))
        )
    if not candidates:
        raise SourceError(f"could not download {one_line(url, _URL_CHARS)}: no file was produced")
    return candidates[0]


def _too_large() -> str:
    """The reason given when a download exceeds ``Limits.max_download_bytes``."""
    return f"larger than the download limit of {_mb(settings.limits().max_download_bytes)} MB"


def _check_video(url: str, path: Path) -> VideoInfo:
    """The video's probe, or SourceError unless ``path`` is a decodable video within the size limit."""
    if path.stat().st_size > settings.limits().max_download_bytes:
        raise SourceError(f"could not download {one_line(url, _URL_CHARS)}: {_too_large()}")
    try:
        return probe(path)
    except (DecodeError, SourceError) as err:
        reason = str(err).replace(str(path), "the file")
        raise SourceError(f"{one_line(url, _URL_CHARS)} is not a video ({reason})") from None


def download(
    url: str,
    *,
    progress: Progress | None = None,
    min_short_side: int = DEFAULT_MIN_SHORT_SIDE,
    guard: AbstractContextManager[object] | None = None,
) -> VideoSource:
    """Fetch an http(s) link through yt-dlp into the download cache (or reuse the cached copy).

    ``guard`` is entered around yt-dlp's run: every request, redirect and fragment happens inside it
    (the service's ``ConnectionGuard`` checks each connection's address there and may replace the
    download's error with its own)."""
    url = check_url(url)
    if min_short_side < 1:
        raise InputError(f"min_short_side must be positive, got {min_short_side}")
    root = settings.downloads_dir()
    root.mkdir(parents=True, exist_ok=True)
    key = url_key(url)
    try:
        locks = root / ".locks"
        locks.mkdir(exist_ok=True)
        with filelock.FileLock(str(locks / f"{key}.lock"), timeout=_LOCK_TIMEOUT_S):
            return _cached(root, key, url) or _fetch(url, root, key, progress, min_short_side, guard)
    except filelock.Timeout:
        raise SourceError(f"another download of {one_line(url, _URL_CHARS)} is still running") from None


def _fetch(
    url: str,
    root: Path,
    key: str,
    progress: Progress | None,
    min_short_side: int,
    guard: AbstractContextManager[object] | None = None,
) -> VideoSource:
    """Download into a temporary folder, check it, rename it to ``<key>/`` and write the sidecar."""
    discard_stale_temporaries(root / key)  # what a killed earlier download left (we hold the URL's lock)
    started = time.monotonic()
    with atomic_dir(root / key) as work:
        with guard or contextlib.nullcontext():
            info = _run_ytdlp(url, work, progress, min_short_side)
        produced = _downloaded_file(url, work, info)
        for leftover in work.iterdir():
            if leftover != produced and leftover.is_file():
                leftover.unlink()
        video = _check_video(url, produced)
        name = produced.name
    seconds = max(time.monotonic() - started, 1e-6)
    path = (root / key / name).resolve()
    size = path.stat().st_size
    title = " ".join(str(info.get("title") or "").split())[:200] or path.stem
    meta = {
        "url": url,
        "file": f"{key}/{name}",
        "title": title,
        "bytes": size,
        "extractor": info.get("extractor"),
    }
    write_text_atomic(_sidecar(root, key), json.dumps(meta, indent=2))
    stats = DownloadStats(
        bytes=size, seconds=seconds, mb_per_s=size / _MB / seconds, width=video.width, height=video.height
    )
    return VideoSource(path=path, origin=url, title=title, sha256=file_sha256(path), download=stats)
