"""Libraries: named lists of indexed videos, stacked into one matrix (exact or FAISS) for one search;
from ``STORE_MIN_FRAMES`` frames their vectors live in a compressed ``VectorStore`` on disk instead."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from frameseek import settings
from frameseek.errors import IndexError_, InputError
from frameseek.storage.store import try_load, video_folder
from frameseek.storage.visual import VideoIndex
from frameseek.system.atomic import atomic_path, write_text_atomic

ANN_MIN_FRAMES = 50_000  # below this a matrix product is faster than any ANN index
DEFAULT_NPROBE = 16
STORE_MIN_FRAMES = 2_000_000
"""From this many frames of one model (1536-d: 12 GB as float32) the library's vectors live in a
``frameseek.storage.vectors.VectorStore`` beside it: IVF-PQ codes + float16 originals on disk."""


def _library_file(name: str) -> Path:
    if not name or not all(ch.isalnum() or ch in "-_" for ch in name):
        raise InputError(f"library name must be letters, digits, '-' or '_', got {name!r}")
    return settings.libraries_dir() / name / "library.json"


def check_library_name(name: str) -> str:
    """``name`` if it is a valid library name, else an InputError."""
    _library_file(name)
    return name


def library_entries(name: str = "default") -> list[dict[str, Any]]:
    """The videos in a library: [{"video_sha256", "title", "path", "origin", "model_fingerprint", ...}]."""
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


Entries = list[dict[str, Any]]


def update_library(name: str, change: Callable[[Entries], Entries]) -> Entries:
    """Rewrite a library's list as ``change(entries)`` under its lock, atomically (a kill at any moment
    leaves the old list or the new one, never a mix); returns the new list."""
    path = _library_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        entries = change(library_entries(name))
        write_text_atomic(path, json.dumps({"videos": entries}, indent=2) + "\n")
    return entries


def file_stamp(path: str | Path) -> dict[str, int] | None:
    """Size and modification time of a file (how a library notices a changed file), None if missing."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def add_to_library(index: VideoIndex, name: str = "default") -> None:
    """Record an index in a library (atomic rewrite under a lock)."""
    entry = {
        "video_sha256": index.video_sha256,
        "title": index.title,
        "path": index.video_path,
        "origin": index.origin,
        "model_fingerprint": index.model_fingerprint,
        "index_folder": str(index.folder),
        "frames": len(index),
        "file": file_stamp(index.video_path),
    }
    update_library(
        name, lambda entries: [*(e for e in entries if e["index_folder"] != entry["index_folder"]), entry]
    )
    _add_to_store(name, index)


def _entry_index(entry: dict[str, Any]) -> VideoIndex | None:
    """The visual index a library entry names; an entry from format 2 finds its index where it moved."""
    index = try_load(Path(entry["index_folder"]))
    if index is not None:
        return index
    sha, fingerprint = str(entry.get("video_sha256") or ""), str(entry.get("model_fingerprint") or "")
    if not sha or not fingerprint:
        return None
    old_name = Path(entry["index_folder"]).name  # "<fingerprint>-<format-2 key>"
    for candidate in sorted((video_folder(sha) / "visual").glob(f"{fingerprint}-*")):
        moved = try_load(candidate)
        if moved is not None and f"{fingerprint}-{moved.sampling.key(2)}" == old_name:
            return moved
    return None


@dataclass
class LibraryMatrix:
    """All frames of a library's videos (for one model) stacked for one search across them."""

    embeddings: np.ndarray
    times: np.ndarray
    video_ids: np.ndarray  # row → position in ``videos``
    videos: list[VideoIndex]
    ann: Any = None  # a FAISS index over ``embeddings`` (or a VectorStore) when the library is large

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows by inner product: (scores, rows). Exact below ANN_MIN_FRAMES, FAISS IVF above
        (``ann``: a FAISS index, or the library's VectorStore from STORE_MIN_FRAMES)."""
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
    index.nprobe = max(1, min(nlist, nprobe or DEFAULT_NPROBE))
    return index


def load_library(name: str, model_fingerprint: str, use_ann: bool | None = None) -> LibraryMatrix:
    """Stack every indexed video of a library made with this model; ANN when large (or forced); from
    STORE_MIN_FRAMES frames (unless ``use_ann`` is False) the vectors come from the library's VectorStore."""
    entries = [e for e in library_entries(name) if e.get("model_fingerprint") == model_fingerprint]
    if use_ann is not False and sum(int(e.get("frames") or 0) for e in entries) >= STORE_MIN_FRAMES:
        return _store_library(name, model_fingerprint, entries)
    videos = []
    for entry in entries:
        index = _entry_index(entry)
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
                ivf = faiss.extract_index_ivf(ann)
                ivf.nprobe = max(1, min(ivf.nlist, DEFAULT_NPROBE))
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


# --------------------------------------------------------------------- large libraries: a vector store


def _store_folder(name: str, model_fingerprint: str) -> Path:
    digest = hashlib.sha256(model_fingerprint.encode()).hexdigest()[:16]
    return _library_file(name).parent / f"vectors-{digest}"


def _add_to_store(name: str, index: VideoIndex) -> None:
    """Add a video's vectors to the library's store for its model, if it has one (under the library's lock;
    removals reach the store at the next ``load_library``, which brings it in step with the list)."""
    from frameseek.storage.vectors import VectorStore

    folder = _store_folder(name, index.model_fingerprint)
    if not VectorStore.exists(folder) or not len(index):
        return
    with FileLock(str(_library_file(name)) + ".lock"):
        try:
            store = VectorStore.open(folder)
        except IndexError_:
            shutil.rmtree(folder, ignore_errors=True)  # damaged: the next load_library builds it again
            return
        key = str(index.folder)
        span = store.span(key)
        if span is not None and span[1] == len(index):
            return
        if span is not None:
            store.remove(key)
        store.add(key, index.embeddings)
        store.save()


def _store_library(name: str, model_fingerprint: str, entries: list[dict[str, Any]]) -> LibraryMatrix:
    """A large library: vectors from its VectorStore (created, or brought up to date with the list, under
    the library's lock); each video's times read from its folder, its embeddings a view of the store's."""
    with FileLock(str(_library_file(name)) + ".lock"):
        store = _open_or_create_store(_store_folder(name, model_fingerprint), entries)
        videos: dict[str, VideoIndex] = {}
        for entry in entries:
            key = str(entry["index_folder"])
            span = store.span(key)
            index = None
            if span is not None and span[1]:
                try:  # already in the store: read only meta.json and the times
                    view = store.originals[span[0] : span[0] + span[1]]
                    index = VideoIndex.load(Path(key), embeddings=view)
                except IndexError_:
                    index = None
            if index is None:
                index = _entry_index(entry)
                if index is None or not len(index) or str(index.folder) in videos:
                    continue
                key = str(index.folder)
                span = store.span(key)
                if span is None or span[1] != len(index):
                    if span is not None:
                        store.remove(key)
                    store.add(key, index.embeddings)
            videos[key] = index
        for gone in [key for key in store.videos if key not in videos]:
            store.remove(gone)
        store.save()
    if not videos:
        raise IndexError_(
            f"library {name!r} has no videos indexed with this model; run `frameseek index` first"
        )
    ordered = sorted(videos, key=lambda key: store.videos[key][0])  # rows of a video are contiguous
    times = np.zeros(store.rows, dtype=np.float64)
    first = np.full(store.rows, -1, dtype=np.int64)
    for i, key in enumerate(ordered):
        start, n = store.videos[key]
        videos[key].embeddings = store.originals[start : start + n]  # float16, memory-mapped
        times[start : start + n] = videos[key].times
        first[start] = i
    # each row's video; rows of removed videos get the video before them, so the ids stay sorted
    video_ids = np.maximum.accumulate(first) if store.rows else first
    return LibraryMatrix(store.originals, times, video_ids, [videos[k] for k in ordered], ann=store)


def _open_or_create_store(folder: Path, entries: list[dict[str, Any]]) -> Any:
    """The store in ``folder``, or a new one trained on frames sampled across the library's videos."""
    from frameseek.storage.vectors import VectorStore, default_nlist, train_size

    if VectorStore.exists(folder):
        try:
            return VectorStore.open(folder)
        except IndexError_:
            shutil.rmtree(folder, ignore_errors=True)
    total = sum(int(e.get("frames") or 0) for e in entries)
    want = train_size(default_nlist(total, total))
    per_video = max(64, -(-want // max(1, len(entries))))
    rng = np.random.default_rng(0)
    parts: list[np.ndarray] = []
    for i in rng.permutation(len(entries)):
        index = _entry_index(entries[int(i)])
        if index is not None and len(index):
            rows = rng.choice(len(index), size=min(per_video, len(index)), replace=False)
            parts.append(np.asarray(index.embeddings[np.sort(rows)], dtype=np.float32))
        if sum(len(p) for p in parts) >= want:
            break
    if not parts:
        raise IndexError_("cannot build a vector store: no readable video in the library")
    return VectorStore.create(folder, np.concatenate(parts), expected=total)
