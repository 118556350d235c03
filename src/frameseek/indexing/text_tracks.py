"""Builders of a video's text tracks: what is said (subtitles, captions, speech recognition) and what is
written on screen (OCR), each stored once under the video's content hash with its own key.

Cheapest first: subtitles beside the file or inside it, then captions a link's site offers (fetched once,
kept beside the download), then, with ``speech``, Whisper on the audio. A transcript's key never involves
the image model, so changing models reuses it; a second query reads the stored track and runs nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frameseek.errors import FrameseekError, InputError
from frameseek.indexing.reader import FrameReader
from frameseek.metrics import PipelineMetrics
from frameseek.progress import Progress
from frameseek.storage.store import load_text_track, lock_for, save_text_track, text_track_path
from frameseek.text.spans import TextTrack
from frameseek.video.sampling import Sampling
from frameseek.video.sources import VideoSource

TRACKS_VERSION = 1
"""Salts every text-track key: bump when a builder's output changes meaning."""

_LANG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?")

OCR_MAX_SIDE = 960
"""Frames read for on-screen text keep up to 960 px: small slide text blurs at the 640 px the image model's
frames are decoded at, and the detector's cost grows with the frame (the shortest side it sees)."""


def _ocr_engine_id() -> str:
    from importlib.metadata import version

    from frameseek.text import ocr

    return f"rapidocr-{version('rapidocr')}-side{ocr.DEFAULT_DETECT_SIDE}-conf{ocr.DEFAULT_MIN_CONFIDENCE}"


@dataclass(frozen=True)
class TrackOptions:
    """Which text tracks a search uses: subtitles (on by default when present), speech, screen text."""

    subtitles: bool = True
    speech: bool = False
    ocr: bool = False
    sub_lang: str = "en"
    asr_model: str = "base"
    ocr_fps: float = 1.0

    def __post_init__(self) -> None:
        if not _LANG.fullmatch(self.sub_lang):
            raise InputError(f"--sub-lang must be a language code such as en or pt-BR, got {self.sub_lang!r}")
        if not self.asr_model.strip():
            raise InputError("--asr-model must name a model (e.g. base, small) or a folder")
        if not (0 < self.ocr_fps <= 10):
            raise InputError(f"--ocr-fps must be in (0, 10], got {self.ocr_fps}")

    @property
    def any_text(self) -> bool:
        return self.subtitles or self.speech or self.ocr


@dataclass
class TextTracks:
    """A video's text tracks for one search (None: not asked for, or nothing found) and notices."""

    speech: TextTrack | None = None
    screen: TextTrack | None = None
    notices: list[str] = field(default_factory=list)

    def present(self) -> list[TextTrack]:
        return [t for t in (self.speech, self.screen) if t is not None and t.spans]


def _key(**parts: Any) -> str:
    payload = json.dumps({**parts, "version": TRACKS_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _stored_or_built(path: Path, build: Callable[[], TextTrack]) -> TextTrack:
    """The track stored at ``path``, else ``build()`` written atomically under a lock."""
    stored = load_text_track(path)
    if stored is not None:
        return stored
    with lock_for(path):
        stored = load_text_track(path)  # another process may have built it meanwhile
        return stored if stored is not None else save_text_track(path, build())


def _is_link(src: VideoSource) -> bool:
    return src.origin.startswith(("http://", "https://"))


class TextTrackBuilder:
    """Builds or reuses the speech and screen tracks of one video (the stages of "what is said / written")."""

    def __init__(
        self, *, frame_limit: int, max_pixels: int, asr_threads: int | None = None, ocr_threads: int = 1
    ) -> None:
        self.frame_limit = frame_limit
        self.max_pixels = max_pixels
        self.asr_threads = asr_threads  # None: every core this process may use (recognition runs alone)
        # 1 thread: on a busy 2-core machine 2 OCR threads read fewer frames per second (6.1 vs 11.1 /s)
        self.ocr_threads = ocr_threads
        self._ocr: Any = None

    # ---- what is said --------------------------------------------------------------------------
    def speech(
        self,
        src: VideoSource,
        duration: float | None,
        options: TrackOptions,
        metrics: PipelineMetrics,
        progress: Progress | None = None,
    ) -> tuple[TextTrack | None, list[str]]:
        """Subtitles, else a link's captions, else (with ``options.speech``) recognised speech."""
        notices: list[str] = []
        if options.subtitles:
            if _is_link(src):
                notices += self._fetch_captions(src, options.sub_lang)
            track, notes = self._subtitles(src, duration, options)
            notices += notes
            if track is not None and track.spans:
                return track, notices
        if not options.speech:
            return None, notices
        return self._recognised(src, options, metrics, progress, notices)

    def _subtitles(
        self, src: VideoSource, duration: float | None, options: TrackOptions
    ) -> tuple[TextTrack | None, list[str]]:
        from frameseek.text.subtitles import find_sidecars, load_subtitles

        sidecars = [
            hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in find_sidecars(src.path, options.sub_lang)
            if p.is_file() and p.stat().st_size <= 64 * 2**20
        ]  # a sidecar that changes gives a new key; a huge one is refused by the parser with a notice
        path = text_track_path(
            src.sha256, "speech", _key(kind="subtitles", lang=options.sub_lang, sidecars=sidecars)
        )
        notices: list[str] = []

        def build() -> TextTrack:
            track, notes = load_subtitles(src.path, options.sub_lang, duration)
            notices.extend(notes)
            return track or TextTrack("speech", (), "subtitles:none")

        track = _stored_or_built(path, build)
        return (track if track.spans else None), notices

    def _fetch_captions(self, src: VideoSource, lang: str) -> list[str]:
        """A link's captions, fetched once and kept beside its download as ``<stem>.<lang>.<ext>``."""
        from frameseek.text.captions import fetch_captions

        marker = src.path.with_name(f".{src.path.stem}.captions-{lang}.checked")
        if marker.exists():
            return []
        notices: list[str] = []
        with tempfile.TemporaryDirectory(prefix=".captions-", dir=src.path.parent) as tmp:
            try:
                found = fetch_captions(src.origin, Path(tmp), lang)
            except FrameseekError as err:
                return [f"captions of {src.title} not fetched: {err}"]
            if found is not None:
                target = src.path.with_name(f"{src.path.stem}.{lang}{found.suffix}")
                shutil.move(str(found), str(target))
        marker.write_text("", encoding="utf-8")
        return notices

    def _recognised(
        self,
        src: VideoSource,
        options: TrackOptions,
        metrics: PipelineMetrics,
        progress: Progress | None,
        notices: list[str],
    ) -> tuple[TextTrack | None, list[str]]:
        from frameseek.text.speech import NoAudioError, has_audio, transcribe

        if not has_audio(src.path):
            return None, [
                *notices,
                str(NoAudioError(f"{src.title} has no audio stream; speech search skipped")),
            ]
        path = text_track_path(src.sha256, "speech", _key(kind="asr", model=options.asr_model))

        def build() -> TextTrack:
            started = time.perf_counter()
            with metrics.stage("speech"):
                track = transcribe(
                    src.path,
                    model=options.asr_model,
                    threads=self.asr_threads,
                    progress=(lambda done, total: progress("speech", done, total)) if progress else None,
                )
            metrics.audio_seconds += float(track.info.get("audio_seconds") or 0.0)
            metrics.asr_seconds += time.perf_counter() - started
            return track

        track = _stored_or_built(path, build)
        if not track.spans:
            notices.append(f"no speech was recognised in {src.title}")
            return None, notices
        return track, notices

    # ---- what is written -----------------------------------------------------------------------
    def screen(
        self,
        src: VideoSource,
        options: TrackOptions,
        metrics: PipelineMetrics,
        progress: Progress | None = None,
        duration: float | None = None,
    ) -> TextTrack | None:
        """Text read off frames sampled at ``options.ocr_fps``, only where the picture changed enough."""
        from frameseek.text import ocr

        sampling = Sampling(fps=options.ocr_fps, max_side=OCR_MAX_SIDE)
        engine = _ocr_engine_id()
        path = text_track_path(
            src.sha256,
            "screen",
            _key(kind="ocr", sampling=sampling.as_dict(), engine=engine, change=ocr.DEFAULT_MIN_CHANGE),
        )

        def build() -> TextTrack:
            if self._ocr is None:
                self._ocr = ocr.ScreenReader(threads=self.ocr_threads)
            stats = ocr.OcrStats()
            reader = FrameReader(sampling, frame_limit=self.frame_limit, max_pixels=self.max_pixels)

            def report(stage: str, done: float, total: float | None) -> None:
                if progress:
                    progress("screen", done, duration)

            with metrics.stage("screen"):
                spans = ocr.read_screen_text(reader(src.path), self._ocr, progress=report, stats=stats)
            metrics.ocr_frames += stats.frames_seen
            metrics.ocr_frames_read += stats.frames_read
            metrics.ocr_seconds += stats.ocr_seconds
            return TextTrack("screen", tuple(spans), f"ocr:{engine}", None, stats.as_dict())

        track = _stored_or_built(path, build)
        return track

    def tracks(
        self,
        src: VideoSource,
        duration: float | None,
        options: TrackOptions,
        metrics: PipelineMetrics,
        progress: Progress | None = None,
    ) -> TextTracks:
        """Every text track ``options`` asks for; a failure of one is a notice, never the end of the search."""
        result = TextTracks()
        if options.subtitles or options.speech:
            try:
                result.speech, notes = self.speech(src, duration, options, metrics, progress)
                result.notices += notes
            except FrameseekError as err:
                result.notices.append(f"speech track of {src.title} skipped: {err}")
        if options.ocr:
            try:
                result.screen = self.screen(src, options, metrics, progress, duration)
            except FrameseekError as err:
                result.notices.append(f"screen text of {src.title} skipped: {err}")
        return result
