"""Keeping a library in step with the files: remove a video, prune what was deleted or changed, and
watch a folder so new and changed videos are indexed.

A library's list is rewritten atomically under its lock (``update_library``) and every index folder is
published atomically, so a scan killed at any moment — even with SIGKILL — leaves a valid library: the
videos indexed so far are in it, and running the same scan again resumes (stored indexes are reused,
a half-built one is discarded and rebuilt).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frameseek.errors import FrameseekError, InputError
from frameseek.storage.library import Entries, file_stamp, library_entries, update_library
from frameseek.video.sources import file_sha256, list_videos

MIN_ID_CHARS = 8
"""A video may be named by a prefix of its sha256 of at least this many characters (or by its path)."""


def _matches(entry: dict[str, Any], video: str) -> bool:
    sha = str(entry.get("video_sha256") or "")
    is_id = len(video) >= MIN_ID_CHARS and all(c in "0123456789abcdef" for c in video.lower())
    if is_id and sha.startswith(video.lower()):
        return True
    path = str(entry.get("path") or "")
    return bool(path) and Path(path) == Path(video).expanduser().resolve()


def remove_video(name: str, video: str) -> Entries:
    """Drop a video (sha256, a prefix of ≥ 8 characters, or its path) from a library; returns what went.

    Its stored indexes stay in the cache (another library may use them); InputError if nothing matched.
    """
    removed: Entries = []

    def change(entries: Entries) -> Entries:
        removed.extend(e for e in entries if _matches(e, video))
        return [e for e in entries if not _matches(e, video)]

    update_library(name, change)
    if not removed:
        raise InputError(
            f"library {name!r} has no video {video!r} (give its id from `frameseek library list`)"
        )
    return removed


@dataclass
class PruneReport:
    """What ``prune`` did: entries dropped (with why) and entries whose file was touched but is the same."""

    removed: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    refreshed: int = 0


def _stale(entry: dict[str, Any]) -> str | None:
    """Why an entry no longer matches its file ("missing", "changed"), or None if it still does."""
    path = str(entry.get("path") or "")
    stamp = file_stamp(path) if path else None
    if stamp is None:
        return "missing"
    if stamp == entry.get("file"):
        return None
    try:
        same = file_sha256(path) == entry.get("video_sha256")
    except OSError:
        return "missing"
    return None if same else "changed"


def prune(name: str, under: Path | None = None) -> PruneReport:
    """Drop entries whose file was deleted or whose content changed (only below ``under``, if given)."""
    report = PruneReport()
    root = under.expanduser().resolve() if under is not None else None

    def change(entries: Entries) -> Entries:
        kept: Entries = []
        for entry in entries:
            path = Path(str(entry.get("path") or ""))
            if root is not None and not path.is_relative_to(root):
                kept.append(entry)
                continue
            why = _stale(entry)
            if why is not None:
                report.removed.append((entry, why))
                continue
            stamp = file_stamp(path)
            if stamp != entry.get("file"):  # touched, same content: remember the new stamp
                report.refreshed += 1
                entry = {**entry, "file": stamp}
            kept.append(entry)
        return kept

    update_library(name, change)
    return report


@dataclass
class ScanEvent:
    """One thing a scan did: ``kind`` is "indexed", "failed", "removed" or "unchanged"."""

    kind: str
    path: str
    detail: str = ""


def pending_videos(name: str, folder: Path) -> list[Path]:
    """Videos under ``folder`` that the library does not hold as they are now (new or changed files)."""
    known = {
        str(e.get("path")): e.get("file") for e in library_entries(name) if e.get("path") and e.get("file")
    }
    return [p for p in list_videos(folder) if known.get(str(p.resolve())) != file_stamp(p)]


def scan(
    name: str,
    folder: Path,
    index_one: Callable[[Path], Any],
    *,
    stop: threading.Event | None = None,
    skip: Callable[[Path], bool] | None = None,
) -> Iterator[ScanEvent]:
    """One pass over ``folder``: prune what went away or changed below it, then index what is new or
    changed with ``index_one(path)`` (which adds it to the library). ``stop`` pauses between videos;
    ``skip(path)`` leaves a file out of this pass."""
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    for entry, why in prune(name, folder).removed:
        yield ScanEvent("removed", str(entry.get("path")), why)
    for path in pending_videos(name, folder):
        if stop is not None and stop.is_set():
            return
        if skip is not None and skip(path):
            continue
        try:
            index_one(path)
        except FrameseekError as err:
            yield ScanEvent("failed", str(path), str(err))
            continue
        yield ScanEvent("indexed", str(path))


def watch(
    name: str,
    folder: Path,
    index_one: Callable[[Path], Any],
    *,
    interval: float = 5.0,
    stop: threading.Event | None = None,
) -> Iterator[ScanEvent]:
    """Scan ``folder`` every ``interval`` seconds until ``stop`` is set (polling: it works on every file
    system, network shares included, where change notifications often do not). A file that failed is
    tried again only once it changes."""
    if not interval > 0:
        raise InputError(f"--interval must be positive, got {interval}")
    stop = stop or threading.Event()
    failed: dict[str, dict[str, int] | None] = {}

    def skip(path: Path) -> bool:
        return str(path) in failed and failed[str(path)] == file_stamp(path)

    while not stop.is_set():
        started = time.monotonic()
        for event in scan(name, folder, index_one, stop=stop, skip=skip):
            if event.kind == "failed":
                failed[event.path] = file_stamp(event.path)
            yield event
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
