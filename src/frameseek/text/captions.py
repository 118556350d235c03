"""Captions published with a link (YouTube's, a page's ``<track>``), fetched with yt-dlp without the video."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from frameseek.errors import InputError, SourceError, one_line
from frameseek.text.subtitles import max_subtitle_bytes
from frameseek.video.sources import ALLOWED_PROTOCOLS, ALLOWED_SCHEMES, check_url
from frameseek.video.ytdlp import YtdlpLogger, ytdlp_one_line, ytdlp_options

CAPTION_FORMATS = ("vtt", "srt", "ass", "ssa")
"""Formats ``frameseek.text.subtitles`` reads, in order of preference (YouTube offers vtt for every track)."""

_URL_CHARS = 200
"""Characters of a link shown in an error message (as ``video/sources.py``)."""

_LANG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


class _TooLarge(Exception):
    """Raised from the progress hook to stop a caption download past the subtitle size limit."""


def _size_hook(limit: int) -> Callable[[dict[str, Any]], None]:
    def hook(d: dict[str, Any]) -> None:
        got = int(d.get("downloaded_bytes") or 0)
        total = d.get("total_bytes") or d.get("total_bytes_estimate")
        if got > limit or (total is not None and int(total) > limit):
            raise _TooLarge()

    return hook


def _options(work: Path, lang: str, logger: YtdlpLogger, limit: int) -> dict[str, Any]:
    """yt-dlp options (``ytdlp_options``) for captions only: no video, manual and automatic tracks."""
    return ytdlp_options(
        work,
        logger,
        _size_hook(limit),
        skip_download=True,
        writesubtitles=True,
        writeautomaticsub=True,
        subtitleslangs=[lang, f"{re.escape(lang)}.*"],
        subtitlesformat="/".join(CAPTION_FORMATS),
        ignore_no_formats_error=True,  # a page may offer captions and a format yt-dlp cannot use
        outtmpl={"default": "captions.%(ext)s", "subtitle": "captions.%(ext)s"},
    )


def _fetchable(fmt: dict[str, Any]) -> bool:
    """True for inline caption text or an http(s) URL fetched with yt-dlp's own networking."""
    if fmt.get("data") is not None:
        return True
    url = str(fmt.get("url") or "")
    protocol = str(fmt.get("protocol") or "")
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return False
    return scheme in ALLOWED_SCHEMES and (not protocol or set(protocol.split("+")) <= ALLOWED_PROTOCOLS)


def _best_format(formats: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The caption file in the first of ``CAPTION_FORMATS`` on offer (the last listed of that format)."""
    for ext in CAPTION_FORMATS:
        matches = [f for f in formats if isinstance(f, dict) and f.get("ext") == ext and _fetchable(f)]
        if matches:
            return matches[-1]
    return None


def choose_captions(info: dict[str, Any], lang: str) -> tuple[str, dict[str, Any]] | None:
    """(language key, format) to fetch: manual before automatic, ``lang`` exactly before ``lang-*``."""
    for pool in (info.get("subtitles") or {}, info.get("automatic_captions") or {}):
        keys = [k for k in pool if k == lang] + sorted(k for k in pool if k != lang and k.startswith(lang))
        for key in keys:
            fmt = _best_format(pool[key] or [])
            if fmt is not None:
                return key, fmt
    return None


def _too_large(url: str, limit: int) -> str:
    return f"the captions of {one_line(url, _URL_CHARS)} are larger than {limit // (1024 * 1024)} MB; skipped"


def _written(work: Path, fmt: dict[str, Any]) -> Path | None:
    """The caption file yt-dlp left in ``work``."""
    path = fmt.get("filepath")
    if path and Path(path).is_file() and Path(path).resolve().parent == work.resolve():
        return Path(path)
    found = sorted(p for p in work.glob("captions.*") if p.is_file() and not p.name.endswith(".part"))
    return found[0] if found else None


def fetch_captions(url: str, dest: Path, lang: str = "en") -> Path | None:
    """Fetch a link's captions in ``lang`` into folder ``dest`` as ``captions.<lang>.<ext>``; None if none.

    SourceError when the link is refused or cannot be read; InputError when the captions are over
    ``FRAMESEEK_MAX_SUBTITLE_MB``.
    """
    import yt_dlp  # type: ignore[import-untyped]  # slow import: only when a link is given

    url = check_url(url)
    lang = lang.strip()
    if not _LANG.fullmatch(lang):
        raise InputError(f"not a language code: {lang!r} (use e.g. en, fr, pt-BR)")
    limit = max_subtitle_bytes()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    logger = YtdlpLogger()
    with tempfile.TemporaryDirectory(prefix=".captions.", dir=dest) as tmp:
        work = Path(tmp)
        try:
            with yt_dlp.YoutubeDL(_options(work, lang, logger, limit)) as ydl:
                info = ydl.extract_info(url, download=False)
                if isinstance(info, dict) and info.get("_type") in ("playlist", "multi_video"):
                    entries = [e for e in info.get("entries") or [] if isinstance(e, dict)]
                    info = entries[0] if entries else None
                if not isinstance(info, dict):
                    return None
                chosen = choose_captions(info, lang)
                if chosen is None:
                    return None
                key, fmt = chosen
                info["requested_subtitles"] = {key: fmt}  # only this one file is written
                ydl.process_info(info)
        except _TooLarge:
            raise InputError(_too_large(url, limit)) from None
        except Exception as err:  # yt-dlp raises many types (DownloadError, RequestError, OSError, ...)
            reason = ytdlp_one_line(err) or logger.last()
            if "Unsupported URL" in reason:
                raise SourceError(
                    f"{one_line(url, _URL_CHARS)} is not a video (no video found at that address)"
                ) from None
            raise SourceError(
                f"could not fetch the captions of {one_line(url, _URL_CHARS)}: {one_line(reason, 300)}"
            ) from None
        produced = _written(work, fmt)
        if produced is None:
            return None
        if produced.stat().st_size > limit:
            raise InputError(_too_large(url, limit))
        name = key if _LANG.fullmatch(key) else lang  # the key comes from the site: never a path
        target = dest / f"captions.{name}.{produced.suffix.lstrip('.').lower()}"
        os.replace(produced, target)
    return target
