"""A search that runs beside the page: its own thread, honest progress, a cancel flag, one result.

Streamlit reruns the whole script whenever a widget changes, which used to abandon a search half way
(issue 27, item 4). Here the work runs in a ``SearchJob`` thread kept in the session: a rerun only redraws
it, a new search replaces it with a notice, and ``cancel`` stops it at its next progress report.

``Engines`` keeps one model per name for the whole server, split in two so the first search is quick:
the *query* side answers text queries from the exported query engine (no torch), the *index* side loads
the image model. Both start loading in the background when the page first opens (``preload``), so a
first search pays only for what it still waits for; a video that needs indexing waits for the image
model while the query side is already up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from frameseek.api import (
    FrameseekError,
    InputError,
    MomentQuery,
    PipelineMetrics,
    Query,
    Searcher,
    SearchResponse,
    SearchResult,
    VideoSource,
    find_person,
    list_people,
)
from frameseek.app.logic import QueryOptions, SourceInput, to_source
from frameseek.app.present import friendly_error

BUILT_KEYS = (
    "download_bytes", "download_mb_per_s", "download_resolution", "extraction_frames_per_s",
    "extraction_video_seconds_per_s", "encoding_frames_per_s", "indexing_video_seconds_per_s",
    "frames_processed", "frames_decoded", "frames_encoded", "video_seconds", "image_inference",
    "transcription_audio_seconds_per_s", "ocr_frames_per_s", "ocr_frames_read",
)  # fmt: skip
"""Metrics of the indexing a search did before it searched (reported with its answer)."""
LIBRARY = "Library"
LIBRARY_ALL = ""
"""The Library choice "every video": its value (a single video's value is its path)."""

log = logging.getLogger("frameseek.app")

STAGE_NAMES = {
    "engine": "Loading the query engine",
    "model": "Loading the image model",
    "download": "Downloading the video",
    "index": "Extracting and encoding frames",
    "encode": "Encoding frames",
    "speech": "Transcribing speech",
    "screen": "Reading on-screen text",
    "faces": "Finding faces",
    "search": "Searching",
}
"""What the progress line calls each stage (the indexing stages' names come from ``Progress``)."""


class Cancelled(Exception):
    """Raised inside a job's progress report once the user pressed Cancel."""


class Engines:
    """The two halves of one model for the whole server: text queries and indexing (see the module)."""

    def __init__(self, model: str, factory: Callable[[str], Searcher] = Searcher) -> None:
        self.model = model
        self._factory = factory
        self._lock = threading.Lock()
        # one load of each side at a time (the preload and a search never both build one), and a query
        # never waits for the image model to load unless it needs it
        self._query_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._query: Searcher | None = None
        self._index: Searcher | None = None
        self._thread: threading.Thread | None = None
        self.load_seconds: dict[str, float] = {}

    def preload(self) -> None:
        """Start loading in the background (once): the query engine first, then the image model."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._load, name="frameseek-preload", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        try:
            self.query_side()
            self.index_side()
        except Exception as exc:  # the search that needs the model reports it (one line); logged here
            if not isinstance(exc, FrameseekError):
                log.exception("loading the model %s failed", self.model)

    def query_side(self) -> Searcher:
        """A Searcher that answers text queries on indexed videos from the exported query engine (the
        index side itself when this model has no engine yet)."""
        with self._query_lock:
            if self._query is None:
                started = time.perf_counter()
                light = self._factory(self.model)
                if light.handle.query_engine() is None:
                    with self._index_lock:
                        light = self._index_searcher()
                self._query = light
                self.load_seconds["engine"] = round(time.perf_counter() - started, 3)
            return self._query

    def _index_searcher(self) -> Searcher:
        if self._index is None:
            self._index = self._factory(self.model)
        return self._index

    def index_side(self) -> Searcher:
        """The Searcher that indexes, its image model loaded and ready (the query engine exported for
        the next server once the model is here)."""
        with self._index_lock:
            searcher = self._index_searcher()
            if not searcher.handle.loaded:
                started = time.perf_counter()
                searcher.encoder.prepare()  # creates the model (torch) and its image engine
                self.load_seconds["model"] = round(time.perf_counter() - started, 3)
                searcher.prepare_query_engine()
            return searcher

    @property
    def model_loaded(self) -> bool:
        """Whether the image model has been created (by the preload or a search that needed it)."""
        with self._index_lock:
            return self._index is not None and self._index.handle.loaded


@dataclass
class JobState:
    """What the page shows of a running job (read by the page, written by the job's thread)."""

    stage: str = "engine"
    done: float = 0.0
    total: float | None = None
    stage_started: float = field(default_factory=time.monotonic)
    videos_done: int = 0
    videos_total: int = 0


class SearchJob:
    """One search in its own thread: ``work(report)`` returns the response; ``report(stage, done, total)``
    records progress and raises ``Cancelled`` once ``cancel`` was called."""

    def __init__(
        self,
        label: str,
        work: Callable[[Callable[[str, float, float | None], None]], SearchResponse],
        *,
        given: str = "",
        stored: str = "",
    ) -> None:
        self.label = label
        self.given = given
        self.stored = stored
        self.state = JobState()
        self.started = time.monotonic()
        self.finished: float | None = None
        self.response: SearchResponse | None = None
        self.error: str | None = None
        self.people: list[dict[str, Any]] | None = None
        """With the Faces chip: who is in the videos searched (``list_people`` rows), for the gallery."""
        self.cancelled = False
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._work = work
        self._thread = threading.Thread(target=self._run, name="frameseek-search", daemon=True)

    def start(self) -> SearchJob:
        self._thread.start()
        return self

    def report(self, stage: str, done: float, total: float | None) -> None:
        if self._cancel.is_set():
            raise Cancelled()
        with self._lock:
            if stage != self.state.stage:
                self.state = JobState(stage, done, total, time.monotonic(),
                                      self.state.videos_done, self.state.videos_total)  # fmt: skip
            else:
                self.state.done, self.state.total = done, total

    def count(self, done: int, total: int) -> None:
        """How many videos are indexed of how many (a folder or a library)."""
        with self._lock:
            self.state.videos_done, self.state.videos_total = done, total

    def cancel(self) -> None:
        """Stop at the next progress report; the page stops waiting at once."""
        self._cancel.set()
        with self._lock:
            if self.finished is None:
                self.cancelled = True
                self.finished = time.monotonic()

    def _run(self) -> None:
        try:
            response = self._work(self.report)
        except Cancelled:
            response = None
        except Exception as exc:
            if not isinstance(exc, FrameseekError):
                log.exception("search failed")
            with self._lock:
                if not self.cancelled:
                    self.error = friendly_error(exc, given=self.given, stored=self.stored)
                    self.finished = time.monotonic()
            return
        with self._lock:
            if not self.cancelled and response is not None:
                self.response = response
                self.finished = time.monotonic()

    @property
    def running(self) -> bool:
        with self._lock:
            return self.finished is None

    @property
    def elapsed(self) -> float:
        """Seconds the user has waited (or waited in all): from the click, model loading included."""
        with self._lock:
            end = self.finished if self.finished is not None else time.monotonic()
        return end - self.started

    def snapshot(self) -> JobState:
        with self._lock:
            return JobState(**vars(self.state))

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


@dataclass(frozen=True)
class Request:
    """One search as the page asked for it: where (a kind and its value), what, and how."""

    kind: str
    source: SourceInput | None
    query: Query | MomentQuery
    options: QueryOptions
    image: bool = False
    """Whether the query has an image (answered by the image model, not the query engine)."""


def search_work(engines: Engines, request: Request, job: SearchJob) -> SearchResponse:
    """Answer ``request``: the query side first; the image model only when a video needs indexing (or the
    query has an image); every stage reported to ``job`` (which may cancel it there)."""
    report = job.report
    options = request.options
    report("engine", 0.0, None)
    engines.preload()
    searcher = engines.query_side()
    if request.image:
        report("model", 0.0, None)
        searcher = engines.index_side()
    todo: list[VideoSource] = []
    if request.kind == LIBRARY and request.source == LIBRARY_ALL:
        if isinstance(request.query, MomentQuery) and not request.query.is_plain:
            raise InputError("order and duration questions search one video or folder: pick one video")
        report("search", 0.0, None)
        query = request.query if isinstance(request.query, Query) else searcher.query(request.query.steps[0])
        response = searcher.search_library(query, top_k=options.top_k, min_gap=options.min_gap)
    else:
        assert request.source is not None
        source = to_source(request.source)
        if isinstance(source, VideoSource):
            job.stored = str(source.path)  # an error names the upload as the user gave it, not this path
        built = PipelineMetrics()  # what this search downloaded and indexed (the search itself reuses it)
        sources = searcher.resolve(source, built, progress=report)
        sampling, tracks = options.sampling(), options.tracks()
        todo = [src for src in sources if searcher.needs_indexing(src, sampling, tracks)]
        if todo:
            report("model", 0.0, None)
            heavy = engines.index_side()
            for done, src in enumerate(todo):
                job.count(done, len(todo))
                heavy.index(src, built, sampling=sampling, tracks=tracks, progress=report)
            job.count(len(todo), len(todo))
        report("search", 0.0, None)
        target: str | VideoSource = sources[0] if len(sources) == 1 else source
        response = searcher.search(target, request.query, top_k=options.top_k, min_gap=options.min_gap,
                                   library="default", sampling=sampling, tracks=tracks, progress=report)  # fmt: skip
        response.metrics["videos_indexed"] = len(todo)
        if todo or built.download_bytes:
            work = built.as_dict()
            for key in BUILT_KEYS:
                response.metrics[key] = work.get(key)
            response.metrics["index_reused"] = not todo
            stages = dict(response.metrics.get("stages_seconds") or {})
            response.metrics["stages_seconds"] = {**work.get("stages_seconds", {}), **stages}
    if "faces" in options.extra:
        job.people = people_rows(response, every=request.kind == LIBRARY and request.source == LIBRARY_ALL)
    report("search", 1.0, 1.0)
    response.metrics["image_model_needed"] = bool(request.image or todo)
    response.metrics["waited_seconds"] = round(job.elapsed, 3)
    response.metrics["wall_seconds"] = response.metrics["waited_seconds"]  # the whole run, as waited for
    return response


def searched_videos(response: SearchResponse) -> list[str]:
    """The videos a response covers (each timeline's, else each result's), in order."""
    videos = [line.video for line in response.timelines] or [hit.video for hit in response.results]
    return list(dict.fromkeys(v for v in videos if v))


def people_rows(response: SearchResponse, *, every: bool = False) -> list[dict[str, Any]]:
    """Who is in the videos searched (their faces were read by the search: the Faces chip), or everyone
    in the library (``every``)."""
    if every:
        return list_people(None)
    rows: list[dict[str, Any]] = []
    for video in searched_videos(response):
        rows += list_people(video)
    return rows


def person_moments(person: str, videos: list[str], top_k: int) -> SearchResponse:
    """Every appearance of ``person`` (an id or a name) in ``videos``, most confident first."""
    if not videos:
        raise InputError(f"{person} is not seen in any video searched")
    answers = [find_person(video, person=person, top_k=top_k) for video in videos]
    if len(answers) == 1:
        return answers[0]
    results: list[SearchResult] = sorted(
        (hit for answer in answers for hit in answer.results), key=lambda hit: -hit.confidence
    )
    first = answers[0]
    return SearchResponse(
        source=f"{len(videos)} videos",
        model=first.model,
        query=first.query,
        results=results[:top_k],
        metrics=first.metrics,
        notices=[note for answer in answers for note in answer.notices],
        found=any(answer.found for answer in answers),
    )
