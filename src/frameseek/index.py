"""Persistent frame indexes: one per (video content, model, sampling settings), plus libraries of videos."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from frameseek import settings
from frameseek.atomic import atomic_dir, atomic_path, write_text_atomic
from frameseek.errors import IndexError_, InputError

INDEX_FORMAT = 2  # bump when the on-disk layout or the sampling code changes meaning
ANN_MIN_FRAMES = 50_000  # below this a matrix product is faster than any ANN index


@dataclass(frozen=True)
class SamplingSettings:
    """How frames are sampled from a video; part of an index's identity."""

    fps: float = 1.0
    scene: bool = False
    scene_max_gap: float = 10.0
    start: float | None = None
    end: float | None = None
    max_frames: int | None = None
    max_side: int = 640
    # Skip decoding frames nothing depends on (most B-frames) when sampling at ≤ 1/4 of the frame rate.
    fast_decode: bool = True

    def validate(self) -> None:
        if not (0 < self.fps <= 120):
            raise InputError(f"--fps must be in (0, 120], got {self.fps}")
        if self.start is not None and self.start < 0:
            raise InputError(f"--start must be >= 0, got {self.start}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise InputError(f"--end ({self.end}) must be after --start ({self.start})")
        if self.max_frames is not None and self.max_frames <= 0:
            raise InputError(f"--max-frames must be positive, got {self.max_frames}")
        if self.scene_max_gap <= 0:
            raise InputError(f"scene max gap must be positive, got {self.scene_max_gap}")

    def key(self) -> str:
        """A short hash of the settings; equal settings give equal keys (``fps=1`` and ``fps=1.0`` too)."""
        values = asdict(self)
        for name in ("fps", "scene_max_gap", "start", "end"):
            if values[name] is not None:
                values[name] = float(values[name])
        for name in ("max_frames", "max_side"):
            if values[name] is not None:
                values[name] = int(values[name])
        values["scene"] = bool(values["scene"])
        payload = json.dumps({**values, "format": INDEX_FORMAT}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


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
    sampling: dict[str, Any]
    duration: float | None
    times: np.ndarray  # (n,) float64 seconds from PTS
    embeddings: np.ndarray  # (n, d) float32, L2-normalised
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)

    def thumbnail(self, i: int) -> Path:
        return self.folder / "thumbs" / f"{i:06d}.jpg"

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
            "video_path": self.video_path,
            "video_sha256": self.video_sha256,
            "title": self.title,
            "origin": self.origin,
            "model_name": self.model_name,
            "model_fingerprint": self.model_fingerprint,
            "sampling": self.sampling,
            "duration": self.duration,
            "frames": len(self.times),
            "extra": self.extra,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> VideoIndex:
        """Read an index folder; anything incomplete or inconsistent raises IndexError_."""
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            arrays = load_file(str(folder / "embeddings.safetensors"))
        except (OSError, json.JSONDecodeError, SafetensorError, UnicodeDecodeError) as exc:
            raise IndexError_(f"index at {folder} is unreadable: {exc}") from None
        if not isinstance(meta, dict):
            raise IndexError_(f"index at {folder} has a malformed meta.json")
        if meta.get("format") != INDEX_FORMAT:
            raise IndexError_(f"index at {folder} has format {meta.get('format')}, expected {INDEX_FORMAT}")
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
            index = cls(
                folder=folder,
                video_path=str(meta["video_path"]),
                video_sha256=str(meta["video_sha256"]),
                title=str(meta["title"]),
                origin=str(meta["origin"]),
                model_name=str(meta["model_name"]),
                model_fingerprint=str(meta["model_fingerprint"]),
                sampling=dict(meta["sampling"]),
                duration=None if meta["duration"] is None else float(meta["duration"]),
                times=times,
                embeddings=embeddings,
                extra=dict(meta.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexError_(f"index at {folder} has a malformed meta.json ({exc!r})") from None
        return index


def index_folder(video_sha256: str, model_fingerprint: str, sampling: SamplingSettings) -> Path:
    """Where the index for (video content, model, sampling) lives under the cache root."""
    return settings.indexes_dir() / video_sha256[:2] / video_sha256 / f"{model_fingerprint}-{sampling.key()}"


def try_load(folder: Path) -> VideoIndex | None:
    """Load a complete index, or None; a damaged one is removed so it gets rebuilt."""
    if not (folder / "meta.json").is_file():
        return None
    try:
        return VideoIndex.load(folder)
    except IndexError_:
        shutil.rmtree(folder, ignore_errors=True)
        return None


def lock_for(folder: Path) -> FileLock:
    """An inter-process lock for building one index (a second process waits, then reuses the result)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder) + ".lock")


def save_index(index: VideoIndex, thumbs_src: Path | None) -> VideoIndex:
    """Atomically publish an index folder: the final name appears only when every file is written."""
    with atomic_dir(index.folder) as tmp:
        if thumbs_src is not None and thumbs_src.is_dir():
            shutil.move(str(thumbs_src), str(tmp / "thumbs"))
        else:
            (tmp / "thumbs").mkdir()
        index.write(tmp)
    return index


# ---------------------------------------------------------------------------------------- libraries


def _library_file(name: str) -> Path:
    if not name or not all(ch.isalnum() or ch in "-_" for ch in name):
        raise InputError(f"library name must be letters, digits, '-' or '_', got {name!r}")
    return settings.libraries_dir() / name / "library.json"


def library_entries(name: str = "default") -> list[dict[str, Any]]:
    """The videos in a library: [{"video_sha256", "title", "path", "origin", "indexes": {model_fp: folder}}]."""
    path = _library_file(name)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexError_(f"library {name!r} is unreadable: {exc}") from None
    return list(data.get("videos", []))


def library_version(name: str) -> tuple[int, int, int] | None:
    """A stamp that changes whenever the library's list is rewritten (None: no such library yet)."""
    try:
        stat = _library_file(name).stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino  # rewrites are renames: a new inode each time


def add_to_library(index: VideoIndex, name: str = "default") -> None:
    """Record an index in a library (atomic rewrite under a lock)."""
    path = _library_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        entries = [e for e in library_entries(name) if e["index_folder"] != str(index.folder)]
        entries.append(
            {
                "video_sha256": index.video_sha256,
                "title": index.title,
                "path": index.video_path,
                "origin": index.origin,
                "model_fingerprint": index.model_fingerprint,
                "index_folder": str(index.folder),
                "frames": len(index),
            }
        )
        write_text_atomic(path, json.dumps({"videos": entries}, indent=2) + "\n")


@dataclass
class LibraryMatrix:
    """All frames of a library's videos (for one model) stacked for one search across them."""

    embeddings: np.ndarray
    times: np.ndarray
    video_ids: np.ndarray  # row → position in ``videos``
    videos: list[VideoIndex]
    ann: Any = None  # a FAISS index over ``embeddings`` when the library is large

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows by inner product: (scores, rows). Exact below ANN_MIN_FRAMES, FAISS IVF above."""
        k = min(k, len(self.embeddings))
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        if self.ann is not None:
            scores, rows = self.ann.search(query.reshape(1, -1).astype(np.float32), k)
            keep = rows[0] >= 0
            return scores[0][keep], rows[0][keep]
        return exact_top_k(self.embeddings, query, k)


def exact_top_k(embeddings: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product (a matrix product and a partial sort)."""
    scores = embeddings @ query.astype(np.float32)
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    part = np.argpartition(-scores, k - 1)[:k]
    order = part[np.argsort(-scores[part], kind="stable")]
    return scores[order], order


def build_ann(embeddings: np.ndarray, nlist: int | None = None, nprobe: int | None = None) -> Any:
    """A FAISS IVF-Flat inner-product index (exact distances inside the probed lists).

    ``nlist`` defaults to √n lists (at least 16), with at least 39 training points per list (FAISS's
    minimum for a stable k-means) and never more lists than vectors, so small libraries work too;
    ``nprobe`` to 16. Measured at 1M frames (BENCHMARKS.md): √n lists with nprobe 8 already gave
    recall@10 0.952 at p50 0.94 ms; 16 buys recall margin for about 1 ms more.
    """
    import faiss

    n, dim = embeddings.shape
    if n == 0:
        raise IndexError_("cannot build an ANN index over an empty library")
    if nlist is None:
        nlist = min(max(16, int(np.sqrt(n))), max(1, n // 39))
    nlist = max(1, min(nlist, n))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    sample = embeddings[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    index.add(np.ascontiguousarray(embeddings, dtype=np.float32))
    index.nprobe = max(1, min(nlist, nprobe or 16))
    return index


def load_library(name: str, model_fingerprint: str, use_ann: bool | None = None) -> LibraryMatrix:
    """Stack every indexed video of a library made with this model; ANN when large (or forced)."""
    videos = []
    for entry in library_entries(name):
        if entry.get("model_fingerprint") != model_fingerprint:
            continue
        index = try_load(Path(entry["index_folder"]))
        if index is not None and len(index):
            videos.append(index)
    if not videos:
        raise IndexError_(
            f"library {name!r} has no videos indexed with this model; run `frameseek index` first"
        )
    embeddings = np.concatenate([v.embeddings for v in videos])
    times = np.concatenate([v.times for v in videos])
    video_ids = np.concatenate([np.full(len(v), i, dtype=np.int64) for i, v in enumerate(videos)])
    large = len(embeddings) >= ANN_MIN_FRAMES
    ann = (
        cached_ann(name, model_fingerprint, videos, embeddings)
        if (use_ann if use_ann is not None else large)
        else None
    )
    return LibraryMatrix(embeddings, times, video_ids, videos, ann)


def cached_ann(name: str, model_fingerprint: str, videos: list[VideoIndex], embeddings: np.ndarray) -> Any:
    """The library's FAISS index, built once per set of member indexes and kept beside the library."""
    import faiss

    digest = hashlib.sha256(model_fingerprint.encode())
    for video in videos:
        digest.update(f"{video.folder}:{len(video)}\n".encode())
    path = _library_file(name).parent / f"ann-{digest.hexdigest()[:16]}.faiss"
    if path.is_file():
        try:
            ann = faiss.read_index(str(path))
            if ann.ntotal == len(embeddings):
                ann.nprobe = max(1, min(ann.nlist, 16))
                return ann
        except RuntimeError:
            pass  # unreadable: rebuild below
    ann = build_ann(embeddings)
    with atomic_path(path) as tmp:
        faiss.write_index(ann, str(tmp))
    for stale in path.parent.glob("ann-*.faiss"):
        if stale != path:
            stale.unlink(missing_ok=True)
    return ann
