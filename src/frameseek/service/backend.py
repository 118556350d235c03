"""The work behind the endpoints: one ``Searcher`` (one model) per process, searches, index jobs.

The model loads in a background thread at start (``/health`` says when it is ready; a query before that
waits for it). A search of the library or of indexed local videos runs on the request's thread (the
Searcher is thread-safe for searches); a search that must download a link or build an index first runs
on the index worker (``JobManager.exclusive``), like index jobs, one at a time. Every source is checked
(``media.check_source``) and link work runs inside a ``ConnectionGuard``, download included.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from frameseek.api import (
    EditFile,
    FrameseekError,
    ModelError,
    MomentQuery,
    PipelineMetrics,
    Progress,
    Query,
    ResourceMonitor,
    Sampling,
    Searcher,
    TrackOptions,
    VideoSource,
    add_to_library,
    check_library_name,
    discard_stale_scratch,
    edit_file,
    frame_limit_notices,
    indexes_dir,
    library_entries,
    load_query_image,
    remove_video,
)
from frameseek.service.config import ServiceSettings
from frameseek.service.errors import Busy, NotReady
from frameseek.service.files import MediaFiles
from frameseek.service.jobs import Control, JobManager
from frameseek.service.links import ConnectionGuard
from frameseek.service.media import check_source, is_link, local_videos
from frameseek.service.schemas import EditRequest, IndexRequest, SamplingOptions, SearchRequest, TrackFlags
from frameseek.service.tokens import Signer, load_key

log = logging.getLogger("frameseek.service")

MODEL_WAIT_S = 300.0
"""How long a request waits for the model to finish loading before it gets a 503."""

QUERY_IMAGE_SIDE = 2048
"""A decoded query image is shrunk (aspect kept) to at most this many pixels on its long side before the
search holds it (12 MB as RGB, not 200 MB for 8192²); the model looks at 224 px anyway."""

IMAGE_WAIT_S = 30.0
"""How long a query image waits for a decode slot (``--max-image-decodes``) before it gets a 503."""


def sampling_of(options: SamplingOptions, **window: Any) -> Sampling:
    return Sampling(
        fps=options.fps,
        scene=options.scene,
        scene_max_gap=options.scene_gap,
        fast_decode=not options.exact_frames,
        **window,
    )


def tracks_of(flags: TrackFlags) -> TrackOptions:
    """The text tracks asked for (speech uses the packaged offline model: no hub name, no folder)."""
    return TrackOptions(
        subtitles=flags.subtitles,
        speech=flags.speech,
        ocr=flags.ocr,
        sub_lang=flags.sub_lang,
        extra=frozenset({"sounds"}) if flags.sounds else frozenset(),
        speech_language=flags.speech_language,
    )


class Backend:
    """The process's Searcher, jobs and files, behind one object the endpoints call."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        signer = Signer(load_key(settings.home / "id-key"), ttl_s=settings.id_ttl_s)
        self.files = MediaFiles(signer, settings.clips_dir, settings.media)
        self.jobs = JobManager(settings.jobs_dir, self.run_index_job)
        self._searcher: Searcher | None = None
        self._load_error: str | None = None
        self._ready = threading.Event()
        # decoded query images in memory at once: each is up to FRAMESEEK_MAX_PIXELS × 3-8 bytes (RGB, and
        # RGBA while transparency is flattened): 0.2-0.5 GB for an 8192² PNG of a few KB
        self._image_slots = threading.BoundedSemaphore(settings.max_image_decodes)

    # ---- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Load the model in the background and queue again the jobs a stop interrupted."""
        threading.Thread(target=self._load, name="frameseek-model", daemon=True).start()
        # scratch folders of builds killed with the server (a job failed on its last kill is never rebuilt)
        for stale in discard_stale_scratch(indexes_dir()):
            log.info("removed %s, left by a build that was killed", stale.name)
        resumed = self.jobs.recover()
        if resumed:
            log.info("resuming %d index job(s) interrupted by the last stop", len(resumed))

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self._searcher = Searcher(self.settings.model, warm_up=True, device=self.settings.device)
            log.info("model %s ready in %.1f s", self.settings.model, time.perf_counter() - started)
        except Exception as exc:  # a bad --model: every query says why
            self._load_error = str(exc) if isinstance(exc, FrameseekError) else type(exc).__name__
            log.error("model %s failed to load: %s", self.settings.model, self._load_error)
        finally:
            self._ready.set()

    def stop(self) -> None:
        self.jobs.shutdown()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._searcher is not None

    def searcher(self, wait_s: float = MODEL_WAIT_S) -> Searcher:
        if not self._ready.wait(wait_s):
            raise NotReady("the model is still loading; retry in a few seconds")
        if self._searcher is None:
            raise ModelError(f"the model {self.settings.model!r} failed to load: {self._load_error}")
        return self._searcher

    @contextlib.contextmanager
    def guard(self) -> Iterator[ConnectionGuard | None]:
        """The link guard for the block (every connection this thread makes), unless private links are on."""
        if self.settings.allow_private_links:
            yield None
            return
        with ConnectionGuard() as guard:
            yield guard

    def _download(
        self,
        url: str,
        searcher: Searcher,
        metrics: PipelineMetrics | None = None,
        progress: Progress | None = None,
    ) -> VideoSource:
        """A checked link downloaded (in the stream the model needs), every connection through the guard."""
        guard = None if self.settings.allow_private_links else ConnectionGuard()
        return searcher.resolve(url, metrics, progress, guard=guard)[0]

    # ---- search --------------------------------------------------------------------------------
    def search(self, request: SearchRequest) -> dict[str, Any]:
        """``frameseek search --json``'s answer for one request, hits with their thumbnail and clip ids."""
        searcher = self.searcher()
        query = self._query(searcher, request)
        moments = request.moment_options  # order, duration, count, overlap (a text query on a source)
        asked: Query | MomentQuery = (
            query if moments is None else searcher.moment_query(request.query or "", **moments)
        )
        if request.library is not None:
            response = searcher.search_library(
                query,
                library=check_library_name(request.library),
                top_k=request.top_k,
                min_gap=request.min_gap,
                min_confidence=request.min_confidence,
            )
            return self.files.add_ids(response.as_dict())
        assert request.source is not None
        sampling = sampling_of(request, start=request.start, end=request.end, max_frames=request.max_frames)
        tracks = tracks_of(request)
        source = check_source(
            request.source, self.settings.media, allow_private_links=self.settings.allow_private_links
        )
        options: dict[str, Any] = dict(
            query=asked, top_k=request.top_k, min_gap=request.min_gap, sampling=sampling, tracks=tracks
        )
        options["refine"] = request.refine
        options["min_confidence"] = request.min_confidence

        if is_link(source):

            def link_search() -> dict[str, Any]:
                with self.guard():  # the download, and the link's captions fetched while indexing
                    src = self._download(source, searcher)
                    data = searcher.search(src, **options).as_dict()
                if src.download is not None:
                    data["metrics"].update(_download_metrics(src))
                return data

            return self.files.add_ids(self.jobs.exclusive(link_search))
        videos = local_videos(source, self.settings.media)

        def local_search() -> dict[str, Any]:
            return searcher.search(source, **options).as_dict()

        if any(searcher.needs_indexing(src, sampling, tracks) for src in videos):
            return self.files.add_ids(self.jobs.exclusive(local_search))
        return self.files.add_ids(local_search())

    def _query(self, searcher: Searcher, request: SearchRequest) -> Query:
        """The request's query; an image is decoded in one of the few decode slots (its pixels are checked
        from the header first, ``load_query_image``) and shrunk to ``QUERY_IMAGE_SIDE`` before it leaves."""
        if request.image is None:
            return searcher.query(request.query, None, request.text_weight)
        if not self._image_slots.acquire(timeout=IMAGE_WAIT_S):
            raise Busy(
                f"{self.settings.max_image_decodes} image queries are being decoded; retry in a few seconds"
            )
        try:
            image = load_query_image(request.image, searcher.limits.max_pixels)  # base64 in the JSON body
            if max(image.size) > QUERY_IMAGE_SIDE:
                image.thumbnail((QUERY_IMAGE_SIDE, QUERY_IMAGE_SIDE))  # in place: the full decode is freed
        finally:
            self._image_slots.release()
        return searcher.query(request.query, image, request.text_weight)

    # ---- index jobs ----------------------------------------------------------------------------
    def check_index_request(self, request: IndexRequest) -> None:
        """Refuse at once what a job would refuse (a path outside --media, a private link, a bad name)."""
        check_library_name(request.library)
        sampling_of(request)
        tracks_of(request)
        for source in request.sources:
            check_source(source, self.settings.media, allow_private_links=self.settings.allow_private_links)

    def run_index_job(self, request: IndexRequest, control: Control) -> dict[str, Any]:
        """Index a job's sources into its library (the worker thread); ``frameseek index --json``'s answer."""
        searcher = self.searcher()
        sampling, tracks = sampling_of(request), tracks_of(request)
        library = check_library_name(request.library)
        metrics = PipelineMetrics()
        rows: list[dict[str, Any]] = []
        notices: list[str] = []
        with ResourceMonitor().watch(metrics), self.guard():
            videos: list[VideoSource] = []
            for given in request.sources:
                control.check()
                source = check_source(
                    given, self.settings.media, allow_private_links=self.settings.allow_private_links
                )
                if is_link(source):
                    videos.append(self._download(source, searcher, metrics, control.progress))
                else:
                    videos += local_videos(source, self.settings.media)
            control.videos(0, len(videos))
            for done, src in enumerate(videos, 1):
                outcomes = searcher.index(
                    src, metrics, sampling=sampling, tracks=tracks, progress=control.progress
                )
                for outcome in outcomes:
                    if outcome.index is None:
                        continue
                    add_to_library(outcome.index, library)
                    index = outcome.index
                    rows.append(
                        {
                            "video": index.video_path,
                            "title": index.title,
                            "frames": len(index),
                            "index": str(index.folder),
                        }
                    )
                    notices += frame_limit_notices([index]) + outcome.text.notices
                control.videos(done, len(videos))
        return {
            "library": library,
            "model": searcher.model_name,
            "videos": rows,
            "metrics": metrics.as_dict(),
            "notices": notices,
        }

    # ---- library -------------------------------------------------------------------------------
    def library(self, name: str) -> list[dict[str, Any]]:
        return library_entries(check_library_name(name))

    def remove(self, name: str, video_sha256: str) -> int:
        """Drop a video (its full sha256) from a library; 0 when it is not there (nothing is written)."""
        if not any(e.get("video_sha256") == video_sha256 for e in library_entries(check_library_name(name))):
            return 0
        return len(remove_video(name, video_sha256))

    def edit(self, request: EditRequest) -> EditFile:
        """A supercut or a markers file of the hits the clip ids name (the one clip rule: ``edit_file``)."""
        hits = [self.files.segment(token) for token in request.clips]
        return edit_file(
            hits,
            request.format,
            query=request.query,
            pad_before=request.pad_before,
            pad_after=request.pad_after,
            workdir=self.settings.clips_dir,
        )


def _download_metrics(src: VideoSource) -> dict[str, Any]:
    assert src.download is not None
    stats = src.download
    resolution = f"{stats.width}x{stats.height}" if stats.width and stats.height else None
    return {
        "download_bytes": stats.bytes,
        "download_mb_per_s": round(stats.mb_per_s, 2),
        "download_resolution": resolution,
    }
