"""Thumbnails and clips served by id: the ids a search result carries (``tokens.Signer``), never paths.

A thumbnail id names a file below FRAMESEEK_HOME/indexes by its relative path, which must also match the
index layout (``<sha[:2]>/<sha>/visual/<model>-<key>/thumbs/<n>.jpg``) and resolve inside that folder. A
clip id names a hit's video, its size and modification time when the id was issued (a video that changed
since is a 404) and its segment; the MP4 (H.264 + AAC, cut by the one clip rule, ``frameseek.api.hit_clip``,
and at most ``CLIP_MAX_SIDE`` pixels wide) is made once, kept under FRAMESEEK_HOME/service/clips (the newest
``KEEP_CLIPS``), and made one at a time.

Scope: ids are issued only for hits whose video lies under the server's current ``--media`` folders (or is
one of its own downloads, FRAMESEEK_HOME/downloads), and that is checked again each time an id is used
(``GET /clips``, ``GET /thumbnails``, ``POST /edits``): after a restart with narrower ``--media`` an older id
for a video outside them is a 403. Ids also expire (``tokens.Signer``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from frameseek.api import InputError, Moment, downloads_dir, hit_clip, indexes_dir
from frameseek.service.errors import Forbidden, NotFound
from frameseek.service.tokens import Signer, well_formed

CLIP_MAX_SIDE = 720
KEEP_CLIPS = 200
CLIP_RULE = "1"
"""Part of a kept clip's file name: a change to the clip rule (``frameseek.editing.edits``) bumps it, so no
clip cut by an older rule is served again."""

_THUMB = re.compile(r"[0-9a-f]{2}/[0-9a-f]{64}/(?:visual/)?[A-Za-z0-9._-]{1,200}/thumbs/[0-9]{6}\.jpg")


class MediaFiles:
    """Issues ids for a result's thumbnail and clip, and turns valid ids back into files."""

    def __init__(self, signer: Signer, clips_dir: Path, roots: tuple[Path, ...] = ()) -> None:
        self.signer = signer
        self.clips_dir = clips_dir
        self.roots = roots
        """The (resolved) ``--media`` folders: ids name only videos under them or the server's downloads."""
        self._clip_lock = threading.Lock()

    def in_scope(self, video: str) -> bool:
        """True if ``video`` (symlinks followed) lies under a ``--media`` folder or the downloads folder."""
        real = Path(os.path.realpath(video))
        allowed = (*self.roots, Path(os.path.realpath(downloads_dir())))
        return any(real == root or real.is_relative_to(root) for root in allowed)

    def _check_scope(self, video: str, kind: str) -> None:
        if not self.in_scope(video):
            raise Forbidden(f"this {kind}'s video is outside the server's --media folders")

    # ---- ids -----------------------------------------------------------------------------------
    def thumbnail_id(self, path: str | None, video: str) -> str | None:
        if not path or not self.in_scope(video):
            return None
        root = Path(os.path.realpath(indexes_dir()))
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(root):
            return None
        relative = real.relative_to(root).as_posix()
        return self.signer.issue("thumb", {"p": relative, "v": video}) if _THUMB.fullmatch(relative) else None

    def clip_id(
        self,
        video: str,
        start: float,
        end: float,
        time: float | None = None,
        score: float = 0.0,
        match: str = "",
        text: str | None = None,
    ) -> str | None:
        """An id for the hit's clip, and for it in ``POST /edits``: its video as it is now, its segment, and
        what its markers say (time, score, what matched, the matched words)."""
        if not self.in_scope(video):
            return None
        try:
            stat = os.stat(video)
        except OSError:
            return None
        payload = {"v": video, "n": stat.st_size, "m": stat.st_mtime_ns, "a": start, "b": end}
        payload.update(t=start if time is None else time, s=score, k=match)
        if text:
            payload["x"] = text
        return self.signer.issue("clip", payload)

    def add_ids(self, data: dict[str, Any]) -> dict[str, Any]:
        """A search answer's hits with ``thumbnail_id`` / ``clip_id`` and their URLs (relative)."""
        for hit in data.get("results", []):
            thumb = self.thumbnail_id(hit.get("thumbnail"), str(hit["video"]))
            clip = self.clip_id(
                str(hit["video"]),
                float(hit["start"]),
                float(hit["end"]),
                float(hit["time"]),
                float(hit.get("score") or 0.0),
                str(hit.get("match") or "visual"),
                hit.get("text") if isinstance(hit.get("text"), str) else None,
            )
            hit["thumbnail_id"], hit["thumbnail_url"] = thumb, f"/thumbnails/{thumb}" if thumb else None
            hit["clip_id"], hit["clip_url"] = clip, f"/clips/{clip}" if clip else None
        return data

    def _open(self, kind: str, token: str) -> dict[str, Any]:
        if not well_formed(token):
            raise InputError(f"not a valid {kind} id")
        payload = self.signer.open("thumb" if kind == "thumbnail" else kind, token)
        if payload is None:
            raise NotFound(f"no such {kind} (an unknown or expired id: search again for a new one)")
        return payload

    # ---- files ---------------------------------------------------------------------------------
    def thumbnail(self, token: str) -> Path:
        """The JPEG an id names; InputError for a malformed id, NotFound for any other bad one."""
        payload = self._open("thumbnail", token)
        relative, video = payload.get("p"), payload.get("v")
        if not isinstance(relative, str) or not _THUMB.fullmatch(relative) or not isinstance(video, str):
            raise NotFound("no such thumbnail")
        self._check_scope(video, "thumbnail")
        root = Path(os.path.realpath(indexes_dir()))
        real = Path(os.path.realpath(root / relative))
        if not real.is_relative_to(root) or not real.is_file():
            raise NotFound("no such thumbnail (its index was removed or rebuilt)")
        return real

    def segment(self, token: str) -> Moment:
        """The hit a clip id names, checked against its video (gone or changed since: NotFound)."""
        payload = self._open("clip", token)
        try:
            video, size, mtime = str(payload["v"]), int(payload["n"]), int(payload["m"])
            start, end = float(payload["a"]), float(payload["b"])
            hit = Moment(
                video=video,
                title=Path(video).stem,
                time=float(payload.get("t", start)),
                start=start,
                end=end,
                score=float(payload.get("s", 0.0)),
                match=str(payload.get("k") or "visual"),
                text=str(payload["x"]) if payload.get("x") else None,
            )
        except (KeyError, TypeError, ValueError):
            raise NotFound("no such clip") from None
        self._check_scope(video, "clip")
        try:
            stat = os.stat(video)
        except OSError:
            raise NotFound("no such clip: its video is gone") from None
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime):
            raise NotFound("no such clip: its video changed since the search")
        return hit

    def clip(self, token: str) -> Path:
        """The MP4 of a hit's segment, with its sound (made now if it is not kept yet)."""
        payload = self._open("clip", token)
        hit = self.segment(token)
        named = json.dumps({**payload, "rule": CLIP_RULE}, sort_keys=True).encode()
        name = hashlib.sha256(named).hexdigest()[:32] + ".mp4"
        target = self.clips_dir / name
        with self._clip_lock:
            if not target.is_file():
                self.clips_dir.mkdir(parents=True, exist_ok=True)
                hit_clip(hit, target, max_side=CLIP_MAX_SIDE)
                self._prune()
        return target

    def _prune(self) -> None:
        clips = sorted(self.clips_dir.glob("*.mp4"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in clips[KEEP_CLIPS:]:
            old.unlink(missing_ok=True)
