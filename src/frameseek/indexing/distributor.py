"""Distributors decide where index runners execute; the stages never know.

``InProcessDistributor`` runs them one after another in this process. A distributor for a cluster (Ray)
implements the same ``run``: it receives a ``RunnerSpec`` and picklable jobs (a resolved source, a sampling,
the tracks), ships both — never a live runner — and builds a runner from the spec where it runs
(``RunnerSpec.build``); it hands back one ``JobOutcome`` per job.

``local``: the caller's runner for that spec, its model already loaded (the ``Searcher``'s). An in-process
distributor runs on it; one that runs elsewhere may read the model's fingerprint off it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from frameseek.errors import FrameseekError
from frameseek.indexing.runner import IndexRunner
from frameseek.indexing.spec import RunnerSpec
from frameseek.indexing.text_tracks import TextTracks, TrackOptions
from frameseek.metrics import PipelineMetrics
from frameseek.progress import Progress
from frameseek.storage.visual import VideoIndex
from frameseek.video.sampling import Sampling
from frameseek.video.sources import VideoSource


@dataclass(frozen=True)
class IndexJob:
    """One video to index: a resolved local source, how to sample it, which text tracks it needs."""

    source: VideoSource
    sampling: Sampling
    tracks: TrackOptions = field(default_factory=lambda: TrackOptions(subtitles=False))


@dataclass
class JobOutcome:
    """What became of one job: its index and text tracks, or the one-line error that stopped it."""

    job: IndexJob
    index: VideoIndex | None = None
    text: TextTracks = field(default_factory=TextTracks)
    error: str | None = None


class Distributor(Protocol):
    """Runs index jobs somewhere and yields their outcomes (in any order)."""

    def run(
        self,
        spec: RunnerSpec,
        jobs: Sequence[IndexJob],
        metrics: PipelineMetrics,
        progress: Progress | None = None,
        *,
        keep_going: bool = False,
        local: IndexRunner | None = None,
    ) -> Iterator[JobOutcome]: ...


class InProcessDistributor:
    """Every job in this process, in order. ``keep_going``: a job's error is reported, the rest still run.

    The runner: ``local`` when given, else one built from the spec and kept for the next run with a spec
    that builds the same runner."""

    def __init__(self) -> None:
        self._runners: dict[RunnerSpec, IndexRunner] = {}

    def runner(self, spec: RunnerSpec, local: IndexRunner | None = None) -> IndexRunner:
        if local is not None:
            return local
        key = spec.runner_key
        if key not in self._runners:
            self._runners = {key: spec.build()}  # one model held at a time
        return self._runners[key]

    def run(
        self,
        spec: RunnerSpec,
        jobs: Sequence[IndexJob],
        metrics: PipelineMetrics,
        progress: Progress | None = None,
        *,
        keep_going: bool = False,
        local: IndexRunner | None = None,
    ) -> Iterator[JobOutcome]:
        if not jobs:
            return
        runner = self.runner(spec, local)
        for job in jobs:
            try:
                index = runner.get(job.source, job.sampling, metrics, progress, tracks=job.tracks)
                text = runner.text_tracks(job.source, index.duration, job.tracks, metrics, progress)
            except FrameseekError as exc:
                if not keep_going:
                    raise
                yield JobOutcome(job, error=str(exc))
                continue
            yield JobOutcome(job, index=index, text=text)
