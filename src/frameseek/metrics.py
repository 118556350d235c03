"""Pipeline metrics: per-stage wall time, throughput, CPU use and peak memory for one run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil

_MB = 2**20  # one MB as everywhere else in frameseek (download limits, DownloadStats, peak RSS)


@dataclass
class PipelineMetrics:
    """Timed stages (download, decode, encode, write, search) plus counters, like a runner's timings."""

    stages: dict[str, float] = field(default_factory=dict)
    download_bytes: int = 0
    download_seconds: float = 0.0
    download_resolution: str | None = None  # e.g. "854x480": the stream a link was downloaded at
    frames_decoded: int = 0
    frames_encoded: int = 0
    video_seconds: float = 0.0
    search_seconds: float = 0.0
    audio_seconds: float = 0.0  # audio transcribed by speech recognition
    asr_seconds: float = 0.0  # wall time of speech recognition (model load included)
    ocr_frames: int = 0  # frames the screen-text reader looked at
    ocr_frames_read: int = 0  # ... and ran OCR on (the picture had changed enough)
    ocr_seconds: float = 0.0  # time inside OCR
    index_reused: bool = False
    image_inference: str | None = None  # how frames were encoded, e.g. "torch cuda:0 bf16" (None: reused)
    wall_seconds: float = 0.0
    cpu_percent: float = 0.0
    peak_rss_bytes: int = 0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the wall time of the block to stage ``name``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - started

    def add_time(self, name: str, seconds: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + seconds

    def as_dict(self) -> dict[str, Any]:
        """The metrics a user sees (``--json`` and the app's panel), rounded for reading."""
        decode = self.stages.get("decode", 0.0)
        encode = self.stages.get("encode", 0.0)
        index_wall = self.stages.get("index", 0.0)
        return {
            "download_bytes": self.download_bytes,
            "download_mb_per_s": _ratio(self.download_bytes / _MB, self.download_seconds),
            "download_resolution": self.download_resolution,
            "extraction_frames_per_s": _ratio(self.frames_decoded, decode),
            "extraction_video_seconds_per_s": _ratio(self.video_seconds, decode),
            "encoding_frames_per_s": _ratio(self.frames_encoded, encode),
            "indexing_video_seconds_per_s": _ratio(self.video_seconds, index_wall),
            "frames_processed": self.frames_encoded,
            "frames_decoded": self.frames_decoded,
            "frames_encoded": self.frames_encoded,
            "video_seconds": round(self.video_seconds, 3),
            "index_reused": self.index_reused,
            "image_inference": self.image_inference,
            "search_latency_ms": round(self.search_seconds * 1000, 2),
            "transcription_audio_seconds_per_s": _ratio(self.audio_seconds, self.asr_seconds),
            "ocr_frames_per_s": _ratio(self.ocr_frames_read, self.ocr_seconds),
            "ocr_frames_read": self.ocr_frames_read,
            "cpu_percent": round(self.cpu_percent, 1),
            "peak_rss_mb": round(self.peak_rss_bytes / _MB, 1),
            "wall_seconds": round(self.wall_seconds, 3),
            "stages_seconds": {k: round(v, 4) for k, v in self.stages.items()},
        }


def _ratio(amount: float, seconds: float) -> float | None:
    return round(amount / seconds, 2) if seconds > 0 and amount > 0 else None


class ResourceMonitor:
    """Samples this process's RSS in a background thread and measures CPU use over a block."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.process = psutil.Process()
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)

    @contextmanager
    def watch(self, metrics: PipelineMetrics) -> Iterator[None]:
        """Fill ``metrics.wall_seconds``, ``cpu_percent`` and ``peak_rss_bytes`` for the block."""
        self.peak_rss = self.process.memory_info().rss
        cpu_before = self.process.cpu_times()
        started = time.perf_counter()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="frameseek-rss", daemon=True)
        self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            self._thread.join()
            wall = time.perf_counter() - started
            cpu_after = self.process.cpu_times()
            used = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
            metrics.wall_seconds += wall
            metrics.cpu_percent = 100.0 * used / wall if wall > 0 else 0.0
            self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)
            metrics.peak_rss_bytes = max(metrics.peak_rss_bytes, self.peak_rss)
