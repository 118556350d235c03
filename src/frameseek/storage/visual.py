"""The visual track of a video's index: sampled frames' times, embeddings and thumbnails, on disk."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from frameseek.errors import IndexError_, InputError
from frameseek.video.sampling import Sampling

INDEX_FORMAT = 3
"""Bump when the on-disk layout or the sampling code changes meaning. 3: tracks under the video's hash."""

LEGACY_FORMATS = (2,)
"""Older visual-track folders that still read (format 2: the same files, one folder per index)."""


@dataclass
class VideoIndex:
    """Embeddings and timestamps of one video's sampled frames, with a JPEG thumbnail per frame."""

    folder: Path
    video_path: str
    video_sha256: str
    title: str
    origin: str
    model_name: str
    model_fingerprint: str
    sampling: Sampling
    duration: float | None
    times: np.ndarray  # (n,) float64 seconds from PTS
    embeddings: np.ndarray  # (n, d) float32, L2-normalised
    stopped_at: float | None = None
    """The last sampled time when the frame limit ended sampling before the video did; else None."""
    extra: dict[str, Any] = field(default_factory=dict)
    """What the probe learnt: width, height, fps, codec."""

    def __len__(self) -> int:
        return len(self.times)

    def thumbnail(self, i: int) -> Path:
        return self.folder / "thumbs" / f"{i:06d}.jpg"

    def thumbnail_if_present(self, i: int) -> str | None:
        """Frame ``i``'s thumbnail as a path string, or None if it is not on disk. The folder is listed
        once per index (a query listing every moment of an hour asks for thousands)."""
        cached: tuple[str, frozenset[str]] | None = self.__dict__.get("_thumbs")
        if cached is None:
            folder = self.folder / "thumbs"
            try:
                names = frozenset(entry.name for entry in os.scandir(folder))
            except OSError:
                names = frozenset()
            cached = self.__dict__["_thumbs"] = (str(folder), names)
        name = f"{i:06d}.jpg"
        return os.path.join(cached[0], name) if name in cached[1] else None

    @property
    def step(self) -> float:
        """How long one sampled frame stands for: 1/fps, or the median spacing in scene mode."""
        if self.sampling.scene and len(self) > 1:
            return float(np.median(np.diff(self.times)))
        return 1.0 / self.sampling.fps

    @property
    def last_time(self) -> float | None:
        """Where the sampled part of the video ends: its duration, or the sampling window's end if sooner."""
        end = self.sampling.end
        if end is None:
            return self.duration
        return end if self.duration is None else min(end, self.duration)

    def write(self, tmp: Path) -> None:
        """Write the index's files into a (temporary) folder; thumbnails are already in ``tmp/thumbs``."""
        save_file(
            {
                "times": np.ascontiguousarray(self.times, dtype=np.float64),
                "embeddings": np.ascontiguousarray(self.embeddings, dtype=np.float32),
            },
            str(tmp / "embeddings.safetensors"),
        )
        meta = {
            "format": INDEX_FORMAT,
            "track": "visual",
            "video_path": self.video_path,
            "video_sha256": self.video_sha256,
            "title": self.title,
            "origin": self.origin,
            "model_name": self.model_name,
            "model_fingerprint": self.model_fingerprint,
            "sampling": self.sampling.as_dict(),
            "duration": self.duration,
            "frames": len(self.times),
            "stopped_at": self.stopped_at,
            "extra": self.extra,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, embeddings: np.ndarray | None = None) -> VideoIndex:
        """Read an index folder (this format or a legacy one); incomplete or inconsistent: IndexError_.

        ``embeddings``: this index's vectors, kept elsewhere (a large library's vector store, see
        ``frameseek.storage.vectors``); then only the times are read from the folder."""
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            if embeddings is None:
                arrays = load_file(str(folder / "embeddings.safetensors"))
            else:
                with safe_open(str(folder / "embeddings.safetensors"), framework="np") as handle:
                    arrays = {"times": handle.get_tensor("times"), "embeddings": embeddings}
        except (OSError, json.JSONDecodeError, SafetensorError, UnicodeDecodeError) as exc:
            raise IndexError_(f"index at {folder} is unreadable: {exc}") from None
        if not isinstance(meta, dict):
            raise IndexError_(f"index at {folder} has a malformed meta.json")
        version = meta.get("format")
        if version != INDEX_FORMAT and version not in LEGACY_FORMATS:
            raise IndexError_(f"index at {folder} has format {version}, expected {INDEX_FORMAT}")
        times, embeddings = arrays.get("times"), arrays.get("embeddings")
        if (
            times is None
            or embeddings is None
            or times.ndim != 1
            or embeddings.ndim != 2
            or not len(times) == len(embeddings) == meta.get("frames")
        ):
            raise IndexError_(f"index at {folder} is inconsistent")
        try:
            extra = dict(meta.get("extra") or {})
            stopped_at = meta.get("stopped_at", extra.pop("stopped_at", None))  # format 2 kept it in extra
            index = cls(
                folder=folder,
                video_path=str(meta["video_path"]),
                video_sha256=str(meta["video_sha256"]),
                title=str(meta["title"]),
                origin=str(meta["origin"]),
                model_name=str(meta["model_name"]),
                model_fingerprint=str(meta["model_fingerprint"]),
                sampling=Sampling.from_dict(dict(meta["sampling"])),
                duration=None if meta["duration"] is None else float(meta["duration"]),
                times=times,
                embeddings=embeddings,
                stopped_at=None if stopped_at is None else float(stopped_at),
                extra=extra,
            )
        except (KeyError, TypeError, ValueError, InputError) as exc:
            raise IndexError_(f"index at {folder} has a malformed meta.json ({exc!r})") from None
        return index
