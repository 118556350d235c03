"""Query → embedding → a score for every sampled frame → top-k moments with segments."""

from __future__ import annotations

import functools
import itertools
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from frameseek import settings
from frameseek.atomic import discard_stale_temporaries
from frameseek.errors import FrameseekError, InputError
from frameseek.index import (
    LibraryMatrix,
    SamplingSettings,
    VideoIndex,
    add_to_library,
    index_folder,
    library_version,
    load_library,
    lock_for,
    save_index,
    try_load,
)
from frameseek.metrics import PipelineMetrics, ResourceMonitor
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.preprocess import ImageLike
from frameseek.models.registry import DEFAULT_MODEL, load_model
from frameseek.pipeline import Stage, batched, timed
from frameseek.temporal import segment_bounds, segment_times, temporal_nms
from frameseek.timecode import format_timecode
from frameseek.video.decode import Frame, iter_frames, probe
from frameseek.video.sources import VideoSource, resolve

# progress(stage, done, total): stage is "download", "index" (done/total in video seconds) or "encode".
Progress = Callable[[str, float, float | None], None]
THUMB_WIDTH = 320
DEFAULT_BATCH_SIZE = 8
"""Frames per encoder call: faster per frame than 16 or 32 on 1-2 CPU threads and less memory
(``benchmarks/encoder_throughput.py``, ``benchmarks/memory_vs_length.py``)."""


@dataclass(frozen=True)
class SearchResult:
    """One matching moment: where, when (seconds and HH:MM:SS.mmm), how well, and its segment."""

    video: str
    title: str
    time: float
    timecode: str
    score: float
    start: float
    end: float
    thumbnail: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Timeline:
    """A video's similarity over time for one query (the app's chart)."""

    video: str
    title: str
    times: np.ndarray
    scores: np.ndarray


@dataclass
class SearchResponse:
    """Results of one query, with the metrics of the run that produced them."""

    source: str
    model: str
    query: str | None
    results: list[SearchResult]
    metrics: dict[str, Any]
    notices: list[str] = field(default_factory=list)
    timelines: list[Timeline] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "model": self.model,
            "query": self.query,
            "results": [r.as_dict() for r in self.results],
            "metrics": self.metrics,
            "notices": self.notices,
        }


def clean_query(text: str | None, max_chars: int) -> tuple[str | None, list[str]]:
    """Strip and length-limit a text query; empty or whitespace-only is an error."""
    if text is None:
        return None, []
    cleaned = " ".join(text.split())
    if not cleaned:
        raise InputError("the query is empty; type a sentence such as 'a cyclist wearing a helmet'")
    if len(cleaned) > max_chars:
        return cleaned[:max_chars], [f"query truncated to its first {max_chars} characters"]
    return cleaned, []


class Searcher:
    """Index videos and search them with one loaded model: ``Searcher("lite").search(video, "a dog")``."""

    def __init__(
        self,
        model: str | DualEncoder = DEFAULT_MODEL,
        *,
        sampling: SamplingSettings | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        encode_threads: int | None = None,
        decode_threads: int = 1,
        progress: Progress | None = None,
    ):
        self.model = load_model(model) if isinstance(model, str) else model
        self.model.eval()
        self.sampling = sampling or SamplingSettings()
        self.sampling.validate()
        self.batch_size = batch_size
        cores = torch.get_num_threads()
        self.encode_threads = encode_threads or default_encode_threads(self.model, cores, decode_threads)
        self.decode_threads = decode_threads
        self.progress = progress
        self.model.encode_texts(["warm up"])  # first-call setup belongs to start-up, not to query latency
        self.model.prepare_image_engine(self.encode_threads)  # export/load ONNX now, not in the first batch
        self._lock = threading.Lock()
        self._libraries: dict[tuple[str, bool | None], tuple[object, LibraryMatrix]] = {}

    # ---- queries ------------------------------------------------------------------------------
    def encode_query(
        self, text: str | None = None, image: ImageLike | None = None, text_weight: float = 0.5
    ) -> np.ndarray:
        """One unit vector for a text, an image, or both (weighted sum of the two embeddings)."""
        if text is None and image is None:
            raise InputError("give a text query, an image query, or both")
        parts, weights = [], []
        if text is not None:
            parts.append(self.model.encode_texts([text])[0])
            weights.append(text_weight if image is not None else 1.0)
        if image is not None:
            parts.append(self.model.encode_images([image])[0])
            weights.append(1.0 - text_weight if text is not None else 1.0)
        vector = np.sum([w * p for w, p in zip(weights, parts, strict=True)], axis=0)
        norm = float(np.linalg.norm(vector))
        if norm == 0:
            raise InputError("the text and image queries cancel out; change the weight")
        unit: np.ndarray = (vector / norm).astype(np.float32)
        return unit

    # ---- indexing -----------------------------------------------------------------------------
    def index(
        self, source: str | Path | VideoSource, metrics: PipelineMetrics | None = None
    ) -> list[VideoIndex]:
        """Index a file, link or folder (reusing stored indexes); returns one index per video."""
        metrics = metrics or PipelineMetrics()
        sources = self._resolve(source, metrics)
        return [self.index_source(src, metrics) for src in sources]

    def _resolve(self, source: str | Path | VideoSource, metrics: PipelineMetrics) -> list[VideoSource]:
        if isinstance(source, VideoSource):
            return [source]
        with metrics.stage("download"):
            sources = resolve(source, progress=self._download_progress)
        for src in sources:
            if src.download is not None:
                metrics.download_bytes += src.download.bytes
                metrics.download_seconds += src.download.seconds
        return sources

    def _download_progress(self, done: int, total: int | None) -> None:
        if self.progress:
            self.progress("download", float(done), float(total) if total else None)

    def index_source(self, src: VideoSource, metrics: PipelineMetrics | None = None) -> VideoIndex:
        """The index of one resolved video: loaded if stored, else built under an inter-process lock."""
        metrics = metrics or PipelineMetrics()
        folder = index_folder(src.sha256, self.model.fingerprint, self.sampling)
        existing = self._usable(try_load(folder))
        if existing is None:
            with lock_for(folder):
                existing = self._usable(try_load(folder))  # another process may have built it meanwhile
                if existing is None:
                    with metrics.stage("index"):
                        return self._build(src, folder, metrics)
        metrics.index_reused = True
        return existing

    def _frame_cap(self) -> int:
        limit = settings.limits().max_frames
        return min(self.sampling.max_frames or limit, limit)

    def _usable(self, index: VideoIndex | None) -> VideoIndex | None:
        """``index``, unless a smaller frame limit cut it short and this one would sample more."""
        if index is not None and "stopped_at" in index.extra and len(index) < self._frame_cap():
            return None
        return index

    def _build(self, src: VideoSource, folder: Path, metrics: PipelineMetrics) -> VideoIndex:
        info = probe(src.path)
        duration = info.duration
        # called under lock_for(folder): what a killed build of this folder left is stale, remove it
        discard_stale_temporaries(folder, f".thumbs-{folder.name}-")
        thumbs = Path(tempfile.mkdtemp(prefix=f".thumbs-{folder.name}-", dir=folder.parent))
        try:
            times, embeddings = self._decode_and_encode(src.path, thumbs, duration, metrics)
            if not times:
                raise InputError(f"no frames were sampled from {src.title} (check --start/--end)")
            # the stretch of video the sampled frames cover (less than the window when --max-frames cuts it)
            first = self.sampling.start or 0.0
            last = self.sampling.end if self.sampling.end is not None else (duration or times[-1])
            s = self.sampling
            reach = times[-1] + (s.scene_max_gap if s.scene else 1.0 / s.fps)
            metrics.video_seconds += max(0.0, min(last, duration or last, reach) - first)
            extra: dict[str, Any] = {
                "width": info.width,
                "height": info.height,
                "fps": info.fps,
                "codec": info.codec,
            }
            if len(times) >= self._frame_cap() and reach < min(last, duration or last) - 1e-6:
                extra["stopped_at"] = times[-1]  # the frame limit ended sampling before the video did
            index = VideoIndex(
                folder=folder,
                video_path=str(src.path),
                video_sha256=src.sha256,
                title=src.title,
                origin=src.origin,
                model_name=self.model.name,
                model_fingerprint=self.model.fingerprint,
                sampling=asdict(self.sampling),
                duration=duration,
                times=np.asarray(times, dtype=np.float64),
                embeddings=np.concatenate(embeddings).astype(np.float32),
                extra=extra,
            )
            with metrics.stage("write"):
                return save_index(index, thumbs)
        finally:
            shutil.rmtree(thumbs, ignore_errors=True)

    def _decode_and_encode(
        self, path: Path, thumbs: Path, duration: float | None, metrics: PipelineMetrics
    ) -> tuple[list[float], list[np.ndarray]]:
        """Three threads: decode ‖ prepare (thumbnail + preprocess) ‖ encode batches (this thread)."""
        frames = self._frames(path)  # opens the file now: bad input fails before any thread starts
        numbers = itertools.count()

        def decoded(frame: Frame) -> Frame:
            metrics.frames_decoded += 1
            return frame

        def prepare(frame: Frame) -> tuple[float, torch.Tensor]:
            started = time.perf_counter()
            image = Image.fromarray(frame.image)
            _write_thumbnail(image, thumbs / f"{next(numbers):06d}.jpg")
            pixels = self.model.preprocess([image])[0]
            metrics.add_time("prepare", time.perf_counter() - started)
            return frame.time, pixels

        times: list[float] = []
        embeddings: list[np.ndarray] = []
        stop = threading.Event()
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.encode_threads)
        decoding = Stage(
            timed(frames, functools.partial(metrics.add_time, "decode")),
            decoded,
            stop=stop,
            maxsize=self.batch_size,
            name="frameseek-decode",
        )
        preparing = Stage(decoding, prepare, stop=stop, maxsize=2 * self.batch_size, name="frameseek-prepare")
        try:
            for batch in batched(preparing, self.batch_size):
                batch_times = [t for t, _ in batch]
                with metrics.stage("encode"):
                    embeddings.append(self.model.encode_pixels(torch.stack([px for _, px in batch])).numpy())
                metrics.frames_encoded += len(batch)
                times.extend(batch_times)
                if self.progress:
                    self.progress("index", batch_times[-1], duration)
        finally:
            preparing.close()
            decoding.close()
            torch.set_num_threads(previous_threads)
        return times, embeddings

    def _frames(self, path: Path) -> Iterator[Frame]:
        s = self.sampling
        return iter_frames(
            path,
            fps=s.fps,
            start=s.start,
            end=s.end,
            max_frames=s.max_frames,
            scene=s.scene,
            scene_max_gap=s.scene_max_gap,
            max_side=s.max_side,
            threads=self.decode_threads,
            skip_nonref=s.fast_decode,
            skip_unneeded=True,  # bit-identical samples, only less decoding: also with --exact-frames
        )

    # ---- search -------------------------------------------------------------------------------
    def search(
        self,
        source: str | Path | VideoSource,
        query: str | None = None,
        *,
        image: ImageLike | None = None,
        text_weight: float = 0.5,
        top_k: int = 5,
        min_gap: float = 2.0,
        segment_keep: float = 0.5,
        library: str | None = None,
    ) -> SearchResponse:
        """Index ``source`` if needed (file, link or folder), then return its best-matching moments."""
        _check_top_k(top_k, min_gap)
        _check_query(query, image)  # before any download or decoding
        metrics = PipelineMetrics()
        monitor = ResourceMonitor()
        with monitor.watch(metrics):
            query, notices = clean_query(query, settings.limits().max_query_chars)
            indexes = self.index(source, metrics)
            notices += frame_limit_notices(indexes)
            if library is not None:
                for index in indexes:
                    add_to_library(index, library)
            with metrics.stage("search"):
                started = time.perf_counter()
                vector = self.encode_query(query, image, text_weight)
                results, timelines = rank_videos(indexes, vector, top_k, min_gap, segment_keep)
                metrics.search_seconds = time.perf_counter() - started
        return SearchResponse(
            source=str(source if not isinstance(source, VideoSource) else source.origin),
            model=self.model.name,
            query=query,
            results=results,
            metrics=metrics.as_dict(),
            notices=notices,
            timelines=timelines,
        )

    def add(
        self, sources: Sequence[str | Path], library: str = "default"
    ) -> tuple[list[VideoIndex], PipelineMetrics]:
        """Index files, links or folders into a library."""
        metrics = PipelineMetrics()
        indexes: list[VideoIndex] = []
        with ResourceMonitor().watch(metrics):
            for source in sources:
                for index in self.index(source, metrics):
                    add_to_library(index, library)
                    indexes.append(index)
        return indexes, metrics

    def _library(self, name: str, use_ann: bool | None) -> LibraryMatrix:
        """The library's stacked matrix, loaded once and kept until the library's list changes."""
        version = library_version(name)
        with self._lock:
            cached = self._libraries.get((name, use_ann))
        if cached is not None and cached[0] == version:
            return cached[1]
        matrix = load_library(name, self.model.fingerprint, use_ann)
        with self._lock:
            self._libraries[(name, use_ann)] = (version, matrix)
        return matrix

    def search_library(
        self,
        query: str | None = None,
        *,
        image: ImageLike | None = None,
        text_weight: float = 0.5,
        library: str = "default",
        top_k: int = 5,
        min_gap: float = 2.0,
        segment_keep: float = 0.5,
        use_ann: bool | None = None,
    ) -> SearchResponse:
        """One query across every video of a library (exact, or FAISS for large libraries)."""
        _check_top_k(top_k, min_gap)
        _check_query(query, image)
        metrics = PipelineMetrics()
        with ResourceMonitor().watch(metrics):
            query, notices = clean_query(query, settings.limits().max_query_chars)
            matrix = self._library(library, use_ann)
            metrics.index_reused = True
            with metrics.stage("search"):
                started = time.perf_counter()
                vector = self.encode_query(query, image, text_weight)
                results = rank_library(matrix, vector, top_k, min_gap, segment_keep)
                metrics.search_seconds = time.perf_counter() - started
        return SearchResponse(
            source=f"library:{library}",
            model=self.model.name,
            query=query,
            results=results,
            metrics=metrics.as_dict(),
            notices=notices,
        )


HEAVY_IMAGE_ENCODER_PARAMETERS = 10_000_000
"""Above this many image-backbone parameters indexing is limited by the encoder, not by decoding."""


def default_encode_threads(model: DualEncoder, cores: int, decode_threads: int) -> int:
    """Torch threads for encoding while indexing: every core for a heavy image encoder, else the cores the
    decoder leaves. Measured on 2 cores at 720p (BENCHMARKS.md, breakdown): resnet50-distilbert (23.5M
    image parameters) indexes 1.35× faster with 2 torch threads than with 1; lite (3.4M) is
    decode-limited and gains nothing from a second thread competing with the decoder."""
    backbone = getattr(model, "image_backbone", None)
    size = sum(p.numel() for p in backbone.parameters()) if isinstance(backbone, torch.nn.Module) else 0
    if size >= HEAVY_IMAGE_ENCODER_PARAMETERS:
        return max(1, cores)
    return max(1, cores - decode_threads)


def frame_limit_notices(indexes: Sequence[VideoIndex]) -> list[str]:
    """One notice per video whose sampling stopped at the frame limit before the video ended."""
    return [
        f"{index.title}: only the first {len(index)} sampled frames (up to "
        f"{format_timecode(float(index.extra['stopped_at']))}) are indexed; raise --max-frames or "
        "FRAMESEEK_MAX_FRAMES to index the rest"
        for index in indexes
        if "stopped_at" in index.extra
    ]


def _check_top_k(top_k: int, min_gap: float) -> None:
    if top_k < 1:
        raise InputError(f"--top-k must be at least 1, got {top_k}")
    if min_gap < 0:
        raise InputError(f"--min-gap must be >= 0, got {min_gap}")


def _check_query(text: str | None, image: ImageLike | None) -> None:
    if text is None and image is None:
        raise InputError("give a text query, an image query, or both")


def _write_thumbnail(image: Image.Image, path: Path) -> None:
    width, height = image.size
    if width > THUMB_WIDTH:
        image = image.resize(
            (THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width))), Image.Resampling.BILINEAR
        )
    image.save(path, format="JPEG", quality=82)


def _step(index: VideoIndex) -> float:
    """How long one sampled frame stands for: 1/fps, or the median spacing in scene mode."""
    if index.sampling.get("scene") and len(index) > 1:
        return float(np.median(np.diff(index.times)))
    return 1.0 / float(index.sampling.get("fps") or 1.0)


def _last_time(index: VideoIndex) -> float | None:
    """Where the sampled part of the video ends: its duration, or the sampling window's end if sooner."""
    end = index.sampling.get("end")
    if end is None:
        return index.duration
    return float(end) if index.duration is None else min(float(end), index.duration)


def make_result(index: VideoIndex, scores: np.ndarray, peak: int, segment_keep: float) -> SearchResult:
    """A result for frame ``peak`` of ``index`` with its segment."""
    first, last = segment_bounds(scores, peak, segment_keep)
    start, end = segment_times(index.times, first, last, _last_time(index), _step(index))
    thumb = index.thumbnail(peak)
    t = float(index.times[peak])
    return SearchResult(
        video=index.video_path,
        title=index.title,
        time=round(t, 6),
        timecode=format_timecode(t),
        score=round(float(scores[peak]), 6),
        start=round(start, 6),
        end=round(end, 6),
        thumbnail=str(thumb) if thumb.is_file() else None,
    )


def rank_videos(
    indexes: Sequence[VideoIndex], query: np.ndarray, top_k: int, min_gap: float, segment_keep: float
) -> tuple[list[SearchResult], list[Timeline]]:
    """Exact scores for every frame of every video; NMS within each video; best ``top_k`` overall."""
    results: list[SearchResult] = []
    timelines: list[Timeline] = []
    for index in indexes:
        if not len(index):
            continue
        scores = index.embeddings @ query
        timelines.append(Timeline(index.video_path, index.title, index.times, scores))
        for peak in temporal_nms(index.times, scores, top_k, min_gap):
            results.append(make_result(index, scores, peak, segment_keep))
    results.sort(key=lambda r: -r.score)
    return results[:top_k], timelines


def rank_library(
    matrix: LibraryMatrix, query: np.ndarray, top_k: int, min_gap: float, segment_keep: float
) -> list[SearchResult]:
    """Candidates from the library matrix (exact or ANN), then per-video NMS and segments.

    When NMS leaves fewer than ``top_k`` hits among the candidates (one long video holding every good
    frame), the candidate pool grows until it covers the whole library.
    """
    total = len(matrix.embeddings)
    pool = max(top_k * 20, 100)
    while True:
        _, rows = matrix.search(query, pool)
        results = _library_hits(matrix, rows, query, top_k, min_gap, segment_keep)
        if len(results) >= top_k or pool >= total:
            return results
        pool *= 4


def _library_hits(
    matrix: LibraryMatrix,
    rows: np.ndarray,
    query: np.ndarray,
    top_k: int,
    min_gap: float,
    segment_keep: float,
) -> list[SearchResult]:
    """Greedy per-video NMS over candidate rows (best first)."""
    results: list[SearchResult] = []
    taken: dict[int, list[float]] = {}
    video_scores: dict[int, np.ndarray] = {}
    for row in rows:
        vid = int(matrix.video_ids[row])
        t = float(matrix.times[row])
        if any(abs(t - other) < min_gap for other in taken.get(vid, [])):
            continue
        taken.setdefault(vid, []).append(t)
        index = matrix.videos[vid]
        if vid not in video_scores:
            video_scores[vid] = index.embeddings @ query
        local = int(row) - int(np.searchsorted(matrix.video_ids, vid))  # rows of a video are contiguous
        results.append(make_result(index, video_scores[vid], local, segment_keep))
        if len(results) == top_k:
            break
    return results


__all__ = ["FrameseekError", "SearchResponse", "SearchResult", "Searcher", "Timeline"]
