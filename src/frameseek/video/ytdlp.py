"""yt-dlp, configured once: the options every run shares, the logger that keeps its messages, and its
messages made one clean line. Used by video downloads (``video/sources.py``) and caption fetches
(``text/captions.py``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from frameseek import settings
from frameseek.errors import one_line

log = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

ProgressHook = Callable[[dict[str, Any]], None]
"""A yt-dlp progress hook: called with yt-dlp's status dict; raising from it stops the run."""


def ytdlp_one_line(msg: object) -> str:
    """A yt-dlp message as one clean line: no colours, no 'ERROR:' / '[extractor] id:' prefix, no
    'caused by' tail (``frameseek.errors.one_line`` after yt-dlp's own decorations are stripped)."""
    text = one_line(_ANSI.sub("", str(msg)))
    text = re.sub(r"^(ERROR:\s*)+", "", text)
    text = re.sub(r"^\[[^\]]+\]\s+(?:[^\s:]+:\s+)?", "", text)
    return re.sub(r"\s*\(caused by .*\)\s*$", "", text)


class YtdlpLogger:
    """Collects yt-dlp's messages (to the ``logging`` module, never stdout) to explain failures."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def _keep(self, msg: str) -> None:
        self.messages = [*self.messages[-50:], ytdlp_one_line(msg)]
        log.debug("yt-dlp: %s", ytdlp_one_line(msg))

    def debug(self, msg: str) -> None:
        self._keep(msg)

    def info(self, msg: str) -> None:
        self._keep(msg)

    def warning(self, msg: str) -> None:
        self._keep(msg)

    def error(self, msg: str) -> None:
        self._keep(msg)

    def last(self, default: str = "unknown error") -> str:
        """The last message yt-dlp gave, or ``default``."""
        return self.messages[-1] if self.messages else default


def ytdlp_options(work: Path, logger: YtdlpLogger, hook: ProgressHook, **extra: Any) -> dict[str, Any]:
    """yt-dlp options for one run in folder ``work``: quiet (messages go to ``logger``), bounded (one
    item, no retries, the connect timeout of ``settings.limits()``, ``hook`` on every progress report),
    no local files, no cache folder, nothing written beside what is asked. ``extra`` adds what the run
    fetches (a video's format, captions' languages) and may override any of these."""
    return {
        "paths": {"home": str(work), "temp": str(work)},
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": logger,
        "noplaylist": True,
        "playlist_items": "1",
        "socket_timeout": settings.limits().connect_timeout_s,
        "retries": 0,
        "extractor_retries": 0,
        "file_access_retries": 0,
        "progress_hooks": [hook],
        "enable_file_urls": False,
        "cachedir": False,
        "overwrites": True,
        "updatetime": False,
        "consoletitle": False,
        "writethumbnail": False,
        "writeinfojson": False,
        **extra,
    }
