"""The Python API: ``Searcher("lite").search("video.mp4", "a dog")`` — a thin front over the stages.

One ``Searcher`` holds one loaded model and serves every query: the sampling, the query and the
progress callback are per call. Indexing runs through ``frameseek.indexing`` (reader → preparer →
encoder → writer, placed by a distributor), ranking through ``frameseek.moments.ranking``. It is one module
because it is the one public door: every method is a few lines of wiring over those packages.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from frameseek import settings
from frameseek.errors import FrameseekError, InputError
from frameseek.indexing.distributor import Distributor, IndexJob, InProcessDistributor, JobOutcome
from frameseek.indexing.encoder import FrameEncoder
from frameseek.indexing.runner import IndexRunner
from frameseek.indexing.spec import RunnerSpec
from frameseek.indexing.text_tracks import TrackOptions
from frameseek.indexing.tracks import TrackQuery, registered, track_candidates
from frameseek.metrics import PipelineMetrics, ResourceMonitor
from frameseek.models.handle import ModelHandle
from frameseek.models.preprocess import ImageLike
from frameseek.models.registry import DEFAULT_MODEL
from frameseek.moments.confidence import Calibration
from frameseek.moments.fusion import merge_moments
from frameseek.moments.ranking import (
    check_ranking,
    confident,
    is_found,
    rank_library,
    rank_videos,
)
from frameseek.moments.refine import refine_hit
from frameseek.moments.sequence import MomentAnswer, answer_videos
from frameseek.progress import Progress
from frameseek.query import MomentQuery, Query
from frameseek.results import SearchResponse, SearchResult, Timeline
from frameseek.storage.library import LibraryMatrix, add_to_library, library_version, load_library
from frameseek.storage.store import stored_text_tracks
from frameseek.storage.visual import VideoIndex
from frameseek.system.devices import check_requested_device
from frameseek.text.matching import SpanMatcher
from frameseek.text.spans import SpanKind, TextTrack
from frameseek.timecode import format_timecode
from frameseek.video.sampling import Sampling
from frameseek.video.sources import VideoSource, resolve

if TYPE_CHECKING:
    from frameseek.models.dual_encoder import DualEncoder

SourceLike = str | Path | VideoSource
MATCHER_CACHE = 256
"""Text tracks whose span embeddings a Searcher keeps in memory (a transcript of an hour: ~1,000 spans)."""


class Searcher:
    """Index videos and search them with one loaded model: ``Searcher("lite").search(video, "a dog")``."""

    def __init__(
        self,
        model: str | DualEncoder | ModelHandle = DEFAULT_MODEL,
        *,
        sampling: Sampling | None = None,
        batch_size: int | None = None,
        encode_threads: int | None = None,
        decode_threads: int = 1,
        progress: Progress | None = None,
        limits: settings.Limits | None = None,
        distributor: Distributor | None = None,
        warm_up: bool = False,
        device: str | None = None,
    ):
        """``model``: a name, a checkpoint folder or a loaded model; ``device`` (for a name or folder):
        ``auto`` | ``cpu`` | ``cuda[:N]`` | ``mps`` (``create_model``). On a GPU frames are encoded in
        batches of ``devices.GPU_BATCH_SIZE`` and a CUDA device decodes with NVDEC where FFmpeg can."""
        if distributor is None and isinstance(model, str | Path):  # a name or folder: created here
            check_requested_device(device)  # a GPU asked for and not here: one error, before any work
        # the model is created when something needs it: a text query on an indexed video does not
        # (its embedding comes from the exported query engine, see frameseek.models.handle)
        self.handle = model if isinstance(model, ModelHandle) else ModelHandle(model, device=device)
        if self.handle.loaded:
            self.handle.model.eval()
        self.sampling = sampling or Sampling()  # the default for calls that pass none
        self.progress = progress  # the default for calls that pass none
        self.limits = limits or settings.limits()  # read once, here at the edge
        # what every distributor builds its runners from; this process's runner reuses the handle's model
        # (encode threads: as given, else decided when frames are first encoded, FrameEncoder.threads)
        self.spec = RunnerSpec(
            _model_reference(model, self.handle),
            device=device,
            limits=self.limits,
            sampling=self.sampling,
            batch_size=batch_size,
            encode_threads=encode_threads or None,
            decode_threads=decode_threads,
        )
        self.runner: IndexRunner = self.spec.build(self.handle)
        self.distributor: Distributor = distributor or InProcessDistributor()
        self._lock = threading.Lock()
        self._libraries: dict[tuple[str, bool | None], tuple[object, LibraryMatrix]] = {}
        self._matchers: dict[str, SpanMatcher] = {}
        if warm_up:
            self.warm_up()

    @property
    def model(self) -> DualEncoder:
        """The loaded model (created now if it was not yet)."""
        return self.handle.model

    @property
    def calibration(self) -> Calibration:
        """The model's confidence calibration (``frameseek.moments.confidence``; stored beside its weights),
        else the uncalibrated stand-in."""
        return calibration_of(self.handle)

    @property
    def encoder(self) -> FrameEncoder:
        """This process's frame encoder (its runner's)."""
        return self.runner.encoder

    def warm_up(self) -> None:
        """Pay the first-call costs now, before a first query is timed (a long-running process): one text
        encoding, the image backbone and its engine. Nothing needs it: a query on an indexed video builds
        only what it uses, and indexing prepares the image engine before its first batch."""
        self.model.encode_texts(["warm up"])
        self.encoder.prepare()

    @property
    def encode_threads(self) -> int:
        return self.encoder.threads

    # ---- queries ------------------------------------------------------------------------------
    def query(
        self, text: str | None = None, image: ImageLike | None = None, text_weight: float = 0.5
    ) -> Query:
        """A validated ``Query`` (within this process's query-length limit)."""
        return Query.of(text, image, text_weight=text_weight, max_chars=self.limits.max_query_chars)

    def encode_query(
        self, query: Query | str | None = None, image: ImageLike | None = None, text_weight: float = 0.5
    ) -> np.ndarray:
        """One unit vector for a text, an image, or both (weighted sum of the two embeddings)."""
        q = query if isinstance(query, Query) else self.query(query, image, text_weight)
        parts, weights = [], []
        if q.text is not None:
            parts.append(self.handle.encode_texts([q.text])[0])
            weights.append(q.text_weight if q.image is not None else 1.0)
        if q.image is not None:
            parts.append(self.model.encode_images([q.image])[0])
            weights.append(1.0 - q.text_weight if q.text is not None else 1.0)
        vector = np.sum([w * p for w, p in zip(weights, parts, strict=True)], axis=0)
        norm = float(np.linalg.norm(vector))
        if norm == 0:
            raise InputError("the text and image queries cancel out; change the weight")
        unit: np.ndarray = (vector / norm).astype(np.float32)
        return unit

    # ---- indexing -----------------------------------------------------------------------------
    def resolve(
        self,
        source: SourceLike,
        metrics: PipelineMetrics | None = None,
        progress: Progress | None = None,
        *,
        guard: AbstractContextManager[object] | None = None,
    ) -> list[VideoSource]:
        """A file, link or folder as local video files (links are downloaded, timed as ``download``, in
        the stream the model needs; ``guard`` is entered around a download, see ``video.sources``)."""
        metrics = metrics if metrics is not None else PipelineMetrics()
        if isinstance(source, VideoSource):
            return [source]
        report = progress or self.progress

        def downloaded(done: int, total: int | None) -> None:
            if report:
                report("download", float(done), float(total) if total else None)

        with metrics.stage("download"):
            sources = resolve(
                source,
                progress=downloaded,
                min_short_side=2 * self.handle.config.image.image_size,
                guard=guard,
            )
        for src in sources:
            if src.download is not None:
                metrics.download_bytes += src.download.bytes
                metrics.download_seconds += src.download.seconds
                if src.download.width and src.download.height:
                    metrics.download_resolution = f"{src.download.width}x{src.download.height}"
        return sources

    def index(
        self,
        source: SourceLike,
        metrics: PipelineMetrics | None = None,
        *,
        sampling: Sampling | None = None,
        tracks: TrackOptions | None = None,
        progress: Progress | None = None,
    ) -> list[JobOutcome]:
        """Index a file, link or folder (reusing what is stored): one outcome per video, with its visual
        index and the text tracks ``tracks`` asks for (speech, screen text). ``add`` also lists them in a
        library."""
        metrics = metrics or PipelineMetrics()
        sources = self.resolve(source, metrics, progress)
        return self._run_jobs(sources, metrics, sampling or self.sampling, tracks, progress)

    def _run_jobs(
        self,
        sources: Sequence[VideoSource],
        metrics: PipelineMetrics,
        sampling: Sampling,
        tracks: TrackOptions | None,
        progress: Progress | None,
    ) -> list[JobOutcome]:
        jobs = self._jobs(sources, sampling, tracks)
        report = progress or self.progress
        return list(self.distributor.run(self._spec_now(), jobs, metrics, report, local=self.runner))

    def _jobs(
        self, sources: Sequence[VideoSource], sampling: Sampling | None, tracks: TrackOptions | None
    ) -> list[IndexJob]:
        """One job per video: this call's sampling (else the Searcher's), text tracks (else none)."""
        spec = self._spec_now()
        return [IndexJob(src, sampling or spec.sampling, tracks or spec.tracks) for src in sources]

    def _spec_now(self) -> RunnerSpec:
        """The spec with this Searcher's current default sampling (``sampling`` may be set after start)."""
        if self.spec.sampling != self.sampling:
            self.spec = self.spec.but(sampling=self.sampling)
        return self.spec

    def needs_indexing(
        self, source: VideoSource, sampling: Sampling | None = None, tracks: TrackOptions | None = None
    ) -> bool:
        """True if searching ``source`` would build something heavy first (a visual index, speech, OCR)."""
        if self.runner.stored(source, sampling or self.sampling) is None:
            return True
        if tracks is not None and (tracks.speech or tracks.ocr):
            kinds = {t.kind for t in stored_text_tracks(source.sha256)}
            return (tracks.speech and "speech" not in kinds) or (tracks.ocr and "screen" not in kinds)
        return False

    @property
    def model_name(self) -> str:
        """The model's name (a preset or a checkpoint folder), without loading it."""
        return self.handle.name

    def prepare_query_engine(self) -> None:
        """Export the query engine once the model is loaded, so later processes answer text queries
        without it (nothing happens if the model was never loaded or the engine exists)."""
        self.handle.prepare_query_engine()

    # ---- search -------------------------------------------------------------------------------
    def search(
        self,
        source: SourceLike,
        query: MomentQuery | Query | str | None = None,
        *,
        image: ImageLike | None = None,
        text_weight: float = 0.5,
        top_k: int = 5,
        min_gap: float = 2.0,
        segment_keep: float = 0.5,
        library: str | None = None,
        sampling: Sampling | None = None,
        tracks: TrackOptions | None = None,
        progress: Progress | None = None,
        on_partial: Callable[[SearchResponse], None] | None = None,
        refine: bool = False,
        min_confidence: float = 0.0,
    ) -> SearchResponse:
        """Index ``source`` if needed (file, link or folder), then return its best-matching moments.

        ``tracks`` (default: subtitles when a video has them) adds what is said and written on screen
        (and any registered track it names, ``frameseek.indexing.tracks``); each track scores the query
        into timed candidates, fused with the picture's (``frameseek.moments.fusion``), saying what
        matched. ``on_partial`` receives first results (``partial=True``) from a quick look at the key frames of each long video
        that is not indexed yet, seconds before its full index is done. ``refine`` looks at every frame
        around each visual hit for the best one and sharper segment edges (``frameseek.moments.refine``).

        Each result is one moment with its calibrated ``confidence``, most confident first; ``found`` says
        whether any reaches ``FOUND_AT`` (else the results are the closest moments, weak ones);
        ``min_confidence`` keeps only the moments that reach it.

        A ``MomentQuery`` asks about order, duration, count or overlap ("A, then B within 10 s", "A lasting
        at least 3 s", how many times A, "A while B"): every moment of each of its sentences is composed
        per video (``frameseek.moments.sequence``); ``count`` says how many match. No preview or refine.
        """
        check_ranking(top_k, min_gap, min_confidence)
        moment = query if isinstance(query, MomentQuery) and not query.is_plain else None
        if isinstance(query, MomentQuery):
            query = self.query(query.steps[0])
        q = query if isinstance(query, Query) else self.query(query, image, text_weight)  # before any work
        tracks = with_named_people(tracks or TrackOptions(), q.text)
        sampling = sampling or self.sampling
        metrics = PipelineMetrics()
        with ResourceMonitor().watch(metrics):
            sources = self.resolve(source, metrics, progress)
            if on_partial is not None and moment is None:
                self._preview(sources, sampling, q, top_k, min_gap, segment_keep, metrics, on_partial)
            outcomes = self._run_jobs(sources, metrics, sampling, tracks, progress)
            indexes = [o.index for o in outcomes if o.index is not None]
            notices = [*(moment or q).notices, *frame_limit_notices(indexes)]
            notices += [n for o in outcomes for n in o.text.notices]
            if library is not None:
                for index in indexes:
                    add_to_library(index, library)
            with metrics.stage("search"):
                started = time.perf_counter()
                if moment is not None:
                    answer, timelines = self._answer(outcomes, moment, top_k, min_gap, segment_keep)
                    results = answer.results
                else:
                    vector, results, timelines = self._rank(outcomes, q, top_k, min_gap, segment_keep)
                metrics.search_seconds = time.perf_counter() - started
            if refine and moment is None:
                calibration = self.calibration
                with metrics.stage("refine"), self.encoder.threads_set():
                    by_path = {index.video_path: index for index in indexes}
                    refined = [
                        refine_hit(r, by_path[r.video], vector, self.model, calibration=calibration)
                        for r in results
                    ]
                    results = merge_moments(refined, top_k, min_gap)  # two hits may now meet: keep one
        found = is_found(results) if moment is None else answer.found
        return SearchResponse(
            source=str(source if not isinstance(source, VideoSource) else source.origin),
            model=self.handle.name,
            query=q.text if moment is None else moment.label,
            results=confident(results, min_confidence),
            metrics=metrics.as_dict(),
            notices=notices,
            timelines=timelines,
            found=found,
            count=None if moment is None else answer.count,
            transcripts={
                o.index.video_path: [s.as_dict() for t in o.text.present() for s in t.spans]
                for o in outcomes
                if o.index is not None and o.text.present()
            },
        )

    def _rank(
        self,
        outcomes: Sequence[JobOutcome],
        q: Query,
        top_k: int | None,
        min_gap: float,
        segment_keep: float,
    ) -> tuple[np.ndarray, list[SearchResult], list[Timeline]]:
        """The query's vector, the indexed videos' moments (every registered track's candidates fused with
        the picture's; the ``top_k`` most confident, all for None) and their timelines."""
        vector = self.encode_query(q)
        asked = TrackQuery(q.text, vector, self._matcher, self.calibration.text_confidence)
        scorers = [self.runner.text.track(name) for name in registered()]
        done = [(o.index, o) for o in outcomes if o.index is not None]
        extra = [track_candidates(index, o.text.values(), asked, scorers) for index, o in done]
        indexes = [index for index, _ in done]
        results, timelines = rank_videos(
            indexes, vector, top_k, min_gap, segment_keep, calibration=self.calibration, candidates=extra
        )
        return vector, results, timelines

    def _answer(
        self,
        outcomes: Sequence[JobOutcome],
        moment: MomentQuery,
        top_k: int,
        min_gap: float,
        segment_keep: float,
    ) -> tuple[MomentAnswer, list[Timeline]]:
        """A moment query's answer: every moment of each of its sentences (each embedded once), composed
        per video; the timelines of its first sentence."""
        found: dict[str, list[SearchResult]] = {}
        timelines: list[Timeline] = []
        for text in moment.texts:
            if text not in found:
                _, found[text], lines = self._rank(outcomes, self.query(text), None, min_gap, segment_keep)
                timelines = timelines or lines
        videos = [o.index.video_path for o in outcomes if o.index is not None]
        return answer_videos(moment, found, videos, top_k), timelines

    def moment_query(
        self,
        text: str | Sequence[str],
        *,
        then: Sequence[str] = (),
        within: float | None = None,
        min_duration: float | None = None,
        count: bool = False,
        first: bool = False,
        last: bool = False,
        while_: str | None = None,
    ) -> MomentQuery:
        """A validated ``MomentQuery`` (each sentence within this process's query-length limit)."""
        return MomentQuery.of(
            text,
            then=then,
            within=within,
            min_duration=min_duration,
            count=count,
            first=first,
            last=last,
            while_=while_,
            max_chars=self.limits.max_query_chars,
        )

    def moments(
        self,
        source: SourceLike,
        query: Query | str | None = None,
        *,
        image: ImageLike | None = None,
        text_weight: float = 0.5,
        min_gap: float = 2.0,
        segment_keep: float = 0.5,
        sampling: Sampling | None = None,
        tracks: TrackOptions | None = None,
        progress: Progress | None = None,
    ) -> dict[str, list[SearchResult]]:
        """Every moment of each video of ``source`` for one query, with its confidence: per video path,
        most confident first (indexing what is not indexed yet). What order, duration and count queries
        are built from; ``search`` is its best ``top_k`` across videos."""
        check_ranking(1, min_gap)
        q = query if isinstance(query, Query) else self.query(query, image, text_weight)
        metrics = PipelineMetrics()
        sources = self.resolve(source, metrics, progress)
        outcomes = self._run_jobs(
            sources, metrics, sampling or self.sampling, tracks or TrackOptions(), progress
        )
        _, results, _ = self._rank(outcomes, q, None, min_gap, segment_keep)
        by_video: dict[str, list[SearchResult]] = {
            o.index.video_path: [] for o in outcomes if o.index is not None
        }
        for r in results:
            by_video.setdefault(r.video, []).append(r)
        return by_video

    def _preview(
        self,
        sources: Sequence[VideoSource],
        sampling: Sampling,
        q: Query,
        top_k: int,
        min_gap: float,
        segment_keep: float,
        metrics: PipelineMetrics,
        on_partial: Callable[[SearchResponse], None],
    ) -> None:
        """Rank the key-frame previews of the long videos not indexed yet; hand them to ``on_partial``."""
        started = time.perf_counter()
        previews = [p for p in (self.runner.preview(src, sampling) for src in sources) if p is not None]
        if not previews:
            return
        results, timelines = rank_videos(
            previews, self.encode_query(q), top_k, min_gap, segment_keep, calibration=self.calibration
        )
        metrics.add_time("preview", time.perf_counter() - started)
        on_partial(
            SearchResponse(
                source=str(sources[0].origin if len(sources) == 1 else "folder"),
                model=self.handle.name,
                query=q.text,
                results=results,
                metrics={"preview_seconds": round(time.perf_counter() - started, 3)},
                notices=[
                    f"first results from {sum(len(p) for p in previews)} key frames; indexing continues"
                ],
                timelines=timelines,
                partial=True,
                found=is_found(results),
            )
        )

    def _matcher(self, track: TextTrack) -> SpanMatcher:
        return self.matchers([track])[0][1]

    def matchers(self, tracks: Sequence[TextTrack]) -> list[tuple[SpanKind, SpanMatcher]]:
        """A ``SpanMatcher`` per text track (spans embedded once by the text backbone, kept in memory)."""
        found = []
        for track in tracks:
            key = hashlib.sha256(track.to_json().encode()).hexdigest()
            with self._lock:
                matcher = self._matchers.get(key)
            if matcher is None:
                matcher = SpanMatcher(track.spans, self.handle.encode_sentences)
                with self._lock:
                    self._matchers[key] = matcher
                    while len(self._matchers) > MATCHER_CACHE:
                        self._matchers.pop(next(iter(self._matchers)))
            found.append((track.kind, matcher))
        return found

    def add(
        self,
        sources: Sequence[SourceLike],
        library: str = "default",
        *,
        sampling: Sampling | None = None,
        tracks: TrackOptions | None = None,
        progress: Progress | None = None,
        keep_going: bool = False,
    ) -> tuple[list[JobOutcome], PipelineMetrics]:
        """Index files, links or folders into a library; one outcome per video, in the sources' order.

        Every source is resolved first, then all its videos go to the distributor as one batch (a cluster
        indexes them side by side); each lands in the library as soon as it is done. The first video that
        fails stops it; ``keep_going``: a video that fails (``FrameseekError``) comes back with its
        one-line ``error``, the rest still land.
        """
        metrics = PipelineMetrics()
        outcomes: list[JobOutcome] = []
        with ResourceMonitor().watch(metrics):
            found = [src for source in sources for src in self.resolve(source, metrics, progress)]
            jobs = self._jobs(found, sampling, tracks)
            report = progress or self.progress
            runs = self.distributor.run(
                self._spec_now(), jobs, metrics, report, keep_going=keep_going, local=self.runner
            )
            for outcome in runs:
                if outcome.index is not None:
                    add_to_library(outcome.index, library)
                outcomes.append(outcome)
        position = {str(job.source.path): i for i, job in enumerate(jobs)}  # outcomes may be copies (Ray)
        outcomes.sort(key=lambda o: position.get(str(o.job.source.path), len(jobs)))
        return outcomes, metrics

    def _library(self, name: str, use_ann: bool | None) -> LibraryMatrix:
        """The library's stacked matrix, loaded once and kept until the library's list changes."""
        version = library_version(name)
        with self._lock:
            cached = self._libraries.get((name, use_ann))
        if cached is not None and cached[0] == version:
            return cached[1]
        matrix = load_library(name, self.handle.fingerprint, use_ann)
        with self._lock:
            self._libraries[(name, use_ann)] = (version, matrix)
        return matrix

    def search_library(
        self,
        query: Query | str | None = None,
        *,
        image: ImageLike | None = None,
        text_weight: float = 0.5,
        library: str = "default",
        top_k: int = 5,
        min_gap: float = 2.0,
        segment_keep: float = 0.5,
        use_ann: bool | None = None,
        min_confidence: float = 0.0,
    ) -> SearchResponse:
        """One query across every video of a library (exact, or FAISS for large libraries): its most
        confident moments, ``found`` and ``min_confidence`` as in ``search``."""
        check_ranking(top_k, min_gap, min_confidence)
        q = query if isinstance(query, Query) else self.query(query, image, text_weight)
        metrics = PipelineMetrics()
        with ResourceMonitor().watch(metrics):
            matrix = self._library(library, use_ann)
            metrics.index_reused = True
            with metrics.stage("search"):
                started = time.perf_counter()
                vector = self.encode_query(q)
                matchers = [self.matchers(stored_text_tracks(v.video_sha256)) for v in matrix.videos]
                results = rank_library(
                    matrix,
                    vector,
                    top_k,
                    min_gap,
                    segment_keep,
                    calibration=self.calibration,
                    text=q.text,
                    matchers=matchers,
                )
                metrics.search_seconds = time.perf_counter() - started
        return SearchResponse(
            source=f"library:{library}",
            model=self.handle.name,
            query=q.text,
            results=confident(results, min_confidence),
            metrics=metrics.as_dict(),
            notices=list(q.notices),
            found=is_found(results),
        )


def calibration_of(handle: ModelHandle) -> Calibration:
    """The handle's calibration (``ModelHandle.calibration``), else the uncalibrated stand-in: the one
    place that asks."""
    found = getattr(handle, "calibration", None)
    return found if isinstance(found, Calibration) else Calibration.uncalibrated()


def _model_reference(model: str | DualEncoder | ModelHandle, handle: ModelHandle) -> str:
    """What a worker loads to get this model: the name or folder given (``auto`` as is: a distributor
    resolves it to the preset this process chose, see ``RayDistributor.start``), else a loaded model's
    name (a preset; a distributor can be told a folder instead). Never loads the model."""
    return model if isinstance(model, str) else handle.name


def frame_limit_notices(indexes: Sequence[VideoIndex]) -> list[str]:
    """One notice per video whose sampling stopped at the frame limit before the video ended."""
    return [
        f"{index.title}: only the first {len(index)} sampled frames (up to "
        f"{format_timecode(index.stopped_at)}) are indexed; raise --max-frames or "
        "FRAMESEEK_MAX_FRAMES to index the rest"
        for index in indexes
        if index.stopped_at is not None
    ]


__all__ = [
    "FrameseekError",
    "Query",
    "Sampling",
    "SearchResponse",
    "SearchResult",
    "Searcher",
    "Timeline",
    "TrackOptions",
]


def with_named_people(tracks: TrackOptions, text: str | None) -> TrackOptions:
    """``tracks`` plus the faces track when ``text`` names a known person ("Alice at the whiteboard"): the
    one rule every door follows (faces are read only for videos searched for a person by name)."""
    from frameseek.people.find import named_people

    if text is None or "faces" in tracks.extra or not named_people(text):
        return tracks
    return dataclasses.replace(tracks, extra=tracks.extra | {"faces"})
