"""Where a video's index tracks live: one folder per video content hash, one entry per track and key.

```
indexes/<sha[:2]>/<sha>/visual/<model fingerprint>-<sampling key>/   meta.json, embeddings, thumbs/
indexes/<sha[:2]>/<sha>/speech/<key>.json                            what is said (a TextTrack)
indexes/<sha[:2]>/<sha>/screen/<key>.json                            what is written on screen
indexes/<sha[:2]>/<sha>/<kind>/<key>.json                            any other registered track
```

Each track has its own key: the visual track depends on the image model and the sampling, a transcript
only on how it was obtained (subtitles, or which speech model), so changing the image model reuses it.
Every entry is written atomically and built under an inter-process lock (``get_or_build``: one call); a
damaged entry is removed and rebuilt. Format-2 visual indexes (``<sha>/<fingerprint>-<key>/``) are moved
into place when found.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from filelock import FileLock

from frameseek import settings
from frameseek.errors import IndexError_, InputError
from frameseek.storage.visual import INDEX_FORMAT, VideoIndex
from frameseek.system.atomic import atomic_dir, write_text_atomic
from frameseek.text.spans import SpanKind, TextTrack
from frameseek.video.sampling import Sampling


def video_folder(video_sha256: str) -> Path:
    """Every track of one video (by content) lives below this folder."""
    return settings.indexes_dir() / video_sha256[:2] / video_sha256


def index_folder(video_sha256: str, model_fingerprint: str, sampling: Sampling) -> Path:
    """Where the visual track for (video content, model, sampling) lives."""
    key = sampling.key(INDEX_FORMAT)
    return video_folder(video_sha256) / "visual" / f"{model_fingerprint}-{key}"


def legacy_index_folder(video_sha256: str, model_fingerprint: str, sampling: Sampling) -> Path:
    """Where format 2 kept the same index."""
    return video_folder(video_sha256) / f"{model_fingerprint}-{sampling.key(2)}"


def try_load(folder: Path) -> VideoIndex | None:
    """Load a complete index, or None; a damaged one is removed so it gets rebuilt."""
    if not (folder / "meta.json").is_file():
        return None
    try:
        return VideoIndex.load(folder)
    except IndexError_:
        shutil.rmtree(folder, ignore_errors=True)
        return None


def lock_for(path: Path) -> FileLock:
    """An inter-process lock for building one track entry (a second process waits, then reuses it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock")


T = TypeVar("T")


def get_or_build(path: Path, load: Callable[[], T | None], build: Callable[[], T]) -> tuple[T, bool]:
    """The entry at ``path`` as ``load()`` finds it, else ``build()`` under ``path``'s inter-process lock.

    ``load`` runs again once the lock is held (a racing process may have built the entry meanwhile: this
    one waits, then reuses it). ``build`` writes the entry (atomically) and returns it. Returns the entry
    and whether this call built it.
    """
    found = load()
    if found is not None:
        return found, False
    with lock_for(path):
        found = load()
        if found is not None:
            return found, False
        return build(), True


def save_index(index: VideoIndex, thumbs_src: Path | None) -> VideoIndex:
    """Atomically publish an index folder: the final name appears only when every file is written."""
    with atomic_dir(index.folder) as tmp:
        if thumbs_src is not None and thumbs_src.is_dir():
            shutil.move(str(thumbs_src), str(tmp / "thumbs"))
        else:
            (tmp / "thumbs").mkdir()
        index.write(tmp)
    return index


def migrate_legacy(video_sha256: str, model_fingerprint: str, sampling: Sampling) -> VideoIndex | None:
    """Move a format-2 index of the same video, model and sampling into place; None if there is none.

    Call under ``lock_for(index_folder(...))``. The files are the same; only meta.json is rewritten.
    """
    old = legacy_index_folder(video_sha256, model_fingerprint, sampling)
    legacy = try_load(old)
    if legacy is None:
        return None
    new = index_folder(video_sha256, model_fingerprint, sampling)
    new.parent.mkdir(parents=True, exist_ok=True)
    if new.exists():
        shutil.rmtree(new, ignore_errors=True)
    os.replace(old, new)
    legacy.folder = new
    meta = json.loads((new / "meta.json").read_text(encoding="utf-8"))
    meta.update(
        format=INDEX_FORMAT,
        track="visual",
        sampling=legacy.sampling.as_dict(),
        stopped_at=legacy.stopped_at,
        extra=legacy.extra,
    )
    write_text_atomic(new / "meta.json", json.dumps(meta, indent=2) + "\n")
    return legacy


# ---------------------------------------------------------------------------------------- text tracks


_TRACK_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_TRACK_KEY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def track_path(video_sha256: str, kind: str, key: str) -> Path:
    """Where a video's track of ``kind`` (``speech``, ``screen``, a registered track's name) built with
    ``key`` (a short lower-case key, e.g. a hash) lives."""
    if kind == "visual" or not _TRACK_NAME.fullmatch(kind) or not _TRACK_KEY.fullmatch(key):
        raise InputError(f"a track is stored under a short lower-case name and key, got {kind!r}/{key!r}")
    return video_folder(video_sha256) / kind / f"{key}.json"


def text_track_path(video_sha256: str, kind: SpanKind, key: str) -> Path:
    """Where a video's text track of ``kind`` built with ``key`` lives."""
    return track_path(video_sha256, kind, key)


def load_text_track(path: Path) -> TextTrack | None:
    """A stored text track, or None; a damaged one is removed so it gets rebuilt."""
    if not path.is_file():
        return None
    try:
        return TextTrack.from_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)
        return None


def save_text_track(path: Path, track: TextTrack) -> TextTrack:
    """Atomically write a text track (a half-written transcript never appears under its name)."""
    write_text_atomic(path, track.to_json() + "\n")
    return track


def stored_text_tracks(video_sha256: str) -> list[TextTrack]:
    """Every non-empty text track stored for a video: per kind, subtitles before recognised speech, then
    the newest (what a library search matches against)."""
    found: list[TextTrack] = []
    for kind in ("speech", "screen"):
        folder = video_folder(video_sha256) / kind
        paths = sorted(folder.glob("*.json"), key=lambda p: -p.stat().st_mtime) if folder.is_dir() else []
        tracks = [t for t in (load_text_track(p) for p in paths) if t is not None and t.spans]
        tracks.sort(key=lambda t: not t.origin.startswith("subtitles"))
        found += tracks[:1]
    return found
