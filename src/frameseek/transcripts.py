"""What was heard and read in a video, without the image model: ``frameseek transcript`` and the API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from frameseek import settings
from frameseek.indexing.text_tracks import TextTrackBuilder, TextTracks, TrackOptions
from frameseek.metrics import PipelineMetrics
from frameseek.progress import Progress
from frameseek.video.decode import probe
from frameseek.video.sources import VideoSource, resolve


@dataclass
class VideoText:
    """One video's text tracks."""

    source: VideoSource
    duration: float | None
    tracks: TextTracks


def read_text(
    source: str | Path | VideoSource,
    options: TrackOptions,
    *,
    metrics: PipelineMetrics | None = None,
    progress: Progress | None = None,
    limits: settings.Limits | None = None,
) -> list[VideoText]:
    """The speech and screen-text tracks ``options`` asks for, for each video of a file, link or folder
    (stored ones are reused; what is built is stored for the next search)."""
    metrics = metrics or PipelineMetrics()
    limits = limits or settings.limits()
    builder = TextTrackBuilder(frame_limit=limits.max_frames, max_pixels=limits.max_pixels)

    def downloaded(done: int, total: int | None) -> None:
        if progress:
            progress("download", float(done), float(total) if total else None)

    if isinstance(source, VideoSource):
        sources = [source]
    else:
        with metrics.stage("download"):
            sources = resolve(source, progress=downloaded)
    found = []
    for src in sources:
        duration = probe(src.path).duration
        found.append(VideoText(src, duration, builder.tracks(src, duration, options, metrics, progress)))
    return found
