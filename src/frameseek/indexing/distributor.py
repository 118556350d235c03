"""Distributors decide where index runners execute; the stages never know.

``InProcessDistributor`` runs them one after another in this process. A distributor for a cluster (Ray)
implements the same ``run``: it receives picklable jobs (a resolved source and a sampling) and must hand
back one ``JobOutcome`` per job, building a runner per worker from the same model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from frameseek.errors import FrameseekError
from frameseek.indexing.runner import IndexRunner
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
        runner: IndexRunner,
        jobs: Sequence[IndexJob],
        metrics: PipelineMetrics,
        progress: Progress | None = None,
        *,
        keep_going: bool = False,
    ) -> Iterator[JobOutcome]: ...


class InProcessDistributor:
    """Every job in this process, in order. ``keep_going``: a job's error is reported, the rest still run."""

    def run(
        self,
        runner: IndexRunner,
        jobs: Sequence[IndexJob],
        metrics: PipelineMetrics,
        progress: Progress | None = None,
        *,
        keep_going: bool = False,
    ) -> Iterator[JobOutcome]:
        for job in jobs:
            try:
                index = runner.get(job.source, job.sampling, metrics, progress)
                text = runner.text_tracks(job.source, index.duration, job.tracks, metrics, progress)
            except FrameseekError as exc:
                if not keep_going:
                    raise
                yield JobOutcome(job, error=str(exc))
                continue
            yield JobOutcome(job, index=index, text=text)
