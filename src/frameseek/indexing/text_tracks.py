"""The text tracks: what is said (subtitles, captions, speech recognition) and what is written on screen
(OCR), each a registered track (``indexing/tracks.py``) stored once under the video's content hash with its
own key, and the builder that gets every track a search asks for.

Cheapest first: subtitles beside the file or inside it, then captions a link's site offers (fetched once,
kept beside the download), then, with ``speech``, Whisper on the audio. A transcript's key never involves
the image model, so changing models reuses it; a second query reads the stored track and runs nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from frameseek.errors import FrameseekError
from frameseek.indexing.tracks import (
    FrameTrack,
    Obtained,
    Track,
    TrackContext,
    TrackOptions,
    TrackQuery,
    TrackSettings,
    register,
    registered,
)
from frameseek.metrics import PipelineMetrics
from frameseek.progress import Progress
from frameseek.storage.store import get_or_build, load_text_track, save_text_track, text_track_path
from frameseek.text.spans import TextTrack
from frameseek.video.sampling import Sampling
from frameseek.video.sources import VideoSource

if TYPE_CHECKING:
    from frameseek.results import SearchResult
    from frameseek.storage.visual import VideoIndex
    from frameseek.video.decode import Frame

TRACKS_VERSION = 1
"""Salts every text-track key: bump when a builder's output changes meaning."""

OCR_MAX_SIDE = 960
"""Frames read for on-screen text keep up to 960 px: small slide text blurs at the 640 px the image model's
frames are decoded at, and the detector's cost grows with the frame (the shortest side it sees)."""


def _ocr_engine_id() -> str:
    from importlib.metadata import version

    from frameseek.text import ocr

    return f"rapidocr-{version('rapidocr')}-side{ocr.DEFAULT_DETECT_SIDE}-conf{ocr.DEFAULT_MIN_CONFIDENCE}"


@dataclass
class TextTracks:
    """A video's tracks for one search (None: not asked for, or nothing found) and notices: the text
    tracks by name, any other registered track's value in ``extra``."""

    speech: TextTrack | None = None
    screen: TextTrack | None = None
    notices: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def present(self) -> list[TextTrack]:
        return [t for t in (self.speech, self.screen) if t is not None and t.spans]

    def values(self) -> dict[str, Any]:
        """Every track's value by its registered name (what ``tracks.track_candidates`` scores)."""
        return {"speech": self.speech, "screen": self.screen, **self.extra}

    def put(self, name: str, value: Any) -> None:
        if name in ("speech", "screen"):
            setattr(self, name, value)
        else:
            self.extra[name] = value


def track_key(**parts: Any) -> str:
    """A short key for a stored track from what it depends on (salted by ``TRACKS_VERSION``)."""
    payload = json.dumps({**parts, "version": TRACKS_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


_key = track_key


def _stored_or_built(path: Path, build: Callable[[], TextTrack]) -> TextTrack:
    """The track stored at ``path``, else ``build()`` written atomically under a lock."""
    track, _ = get_or_build(path, lambda: load_text_track(path), lambda: save_text_track(path, build()))
    return track


def _is_link(src: VideoSource) -> bool:
    return src.origin.startswith(("http://", "https://"))


def score_text_track(index: VideoIndex, track: TextTrack, query: TrackQuery) -> list[SearchResult]:
    """A text track's candidates: its spans that match the query's words (none for an image query)."""
    from frameseek.moments.fusion import text_candidates

    if query.text is None or not track.spans:
        return []
    return text_candidates(index, [(track.kind, query.matcher(track))], query.text, query.text_confidence)


class SpeechTrack:
    """What is said: subtitles beside the file or inside it, else a link's captions, else (with
    ``options.speech``) Whisper on the audio. Each source its own key under ``speech/``."""

    name: ClassVar[str] = "speech"
    label: ClassVar[str] = "speech track"

    def __init__(self, settings: TrackSettings) -> None:
        self.settings = settings

    def wanted(self, options: TrackOptions) -> bool:
        return options.subtitles or options.speech

    def score(self, index: VideoIndex, value: TextTrack, query: TrackQuery) -> list[SearchResult]:
        return score_text_track(index, value, query)

    def get(self, src: VideoSource, options: TrackOptions, ctx: TrackContext) -> Obtained:
        track, notices = self.speech(
            src, ctx.duration, options, ctx.metrics, ctx.progress, audio=lambda: ctx.audio(src)
        )
        return Obtained(track, notices)

    def speech(
        self,
        src: VideoSource,
        duration: float | None,
        options: TrackOptions,
        metrics: PipelineMetrics,
        progress: Progress | None = None,
        audio: Callable[[], tuple[Any, float]] | None = None,
    ) -> tuple[TextTrack | None, list[str]]:
        """Subtitles, else a link's captions, else (with ``options.speech``) recognised speech (from
        ``audio()``'s samples when given: decoded once for every audio track)."""
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
        return self._recognised(src, options, metrics, progress, notices, audio)

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
        audio: Callable[[], tuple[Any, float]] | None = None,
    ) -> tuple[TextTrack | None, list[str]]:
        from frameseek.text.speech import NoAudioError, has_audio, transcribe

        if not has_audio(src.path):
            return None, [
                *notices,
                str(NoAudioError(f"{src.title} has no audio stream; speech search skipped")),
            ]
        forced = {"language": options.speech_language} if options.speech_language else {}
        path = text_track_path(src.sha256, "speech", _key(kind="asr", model=options.asr_model, **forced))

        def build() -> TextTrack:
            started = time.perf_counter()
            with metrics.stage("speech"):
                track = transcribe(
                    src.path,
                    model=options.asr_model,
                    language=options.speech_language,
                    threads=self.settings.asr_threads,
                    progress=(lambda done, total: progress("speech", done, total)) if progress else None,
                    audio=audio() if audio is not None else None,
                )
            metrics.audio_seconds += float(track.info.get("audio_seconds") or 0.0)
            metrics.asr_seconds += time.perf_counter() - started
            return track

        track = _stored_or_built(path, build)
        if not track.spans:
            notices.append(f"no speech was recognised in {src.title}")
            return None, notices
        return track, notices


class ScreenTrack(FrameTrack[TextTrack]):
    """What is written on screen: text read off frames sampled at ``options.ocr_fps`` (up to
    ``OCR_MAX_SIDE``), only where the picture changed enough."""

    name: ClassVar[str] = "screen"
    label: ClassVar[str] = "screen text"

    def __init__(self, settings: TrackSettings) -> None:
        super().__init__(settings)
        self._ocr: Any = None

    def wanted(self, options: TrackOptions) -> bool:
        return options.ocr

    def sampling(self, options: TrackOptions) -> Sampling:
        return Sampling(fps=options.ocr_fps, max_side=OCR_MAX_SIDE)

    def key(self, src: VideoSource, options: TrackOptions) -> str:
        from frameseek.text import ocr

        return track_key(
            kind="ocr",
            sampling=self.sampling(options).as_dict(),
            engine=_ocr_engine_id(),
            change=ocr.DEFAULT_MIN_CHANGE,
        )

    def encode(self, value: TextTrack) -> str:
        return value.to_json()

    def decode(self, text: str) -> TextTrack:
        return TextTrack.from_json(text)

    def score(self, index: VideoIndex, value: TextTrack, query: TrackQuery) -> list[SearchResult]:
        return score_text_track(index, value, query)

    def from_frames(
        self, frames: Iterable[Frame], src: VideoSource, options: TrackOptions, ctx: TrackContext
    ) -> TextTrack:
        from frameseek.text import ocr

        if self._ocr is None:
            self._ocr = ocr.ScreenReader(threads=self.settings.ocr_threads)
        stats = ocr.OcrStats()
        progress = ctx.progress

        def report(stage: str, done: float, total: float | None) -> None:
            if progress:
                progress("screen", done, ctx.duration)

        with ctx.metrics.stage("screen"):
            spans = ocr.read_screen_text(iter(frames), self._ocr, progress=report, stats=stats)
        ctx.metrics.ocr_frames += stats.frames_seen
        ctx.metrics.ocr_frames_read += stats.frames_read
        ctx.metrics.ocr_seconds += stats.ocr_seconds
        return TextTrack("screen", tuple(spans), f"ocr:{_ocr_engine_id()}", None, stats.as_dict())


register(SpeechTrack)
register(ScreenTrack)
import frameseek.people.track  # noqa: E402  (registers the opt-in "faces" track)
import frameseek.sounds.track  # noqa: E402, F401  (registers "sounds" after the text tracks)


class TextTrackBuilder:
    """Gets (stored, or built now) every registered track a search asks for, one video at a time; it
    keeps one instance of each track (an OCR engine is made once)."""

    def __init__(
        self, *, frame_limit: int, max_pixels: int, asr_threads: int | None = None, ocr_threads: int = 1
    ) -> None:
        self.frame_limit = frame_limit
        self.max_pixels = max_pixels
        self.asr_threads = asr_threads  # None: every core this process may use (recognition runs alone)
        # 1 thread: on a busy 2-core machine 2 OCR threads read fewer frames per second (6.1 vs 11.1 /s)
        self.ocr_threads = ocr_threads
        self.settings = TrackSettings(frame_limit, max_pixels, asr_threads, ocr_threads)
        self._tracks: dict[str, Track] = {}

    def track(self, name: str) -> Track:
        """This builder's instance of the registered track ``name``."""
        factory = registered()[name]
        current = self._tracks.get(name)
        if current is None or type(current) is not factory:  # re-registered since: the new one
            current = self._tracks[name] = factory(self.settings)
        return current

    def wanted(self, options: TrackOptions) -> list[Track]:
        """The tracks ``options`` asks for, in registration order (speech, screen, then the others)."""
        found = []
        for name in registered():
            track = self.track(name)
            if name in options.extra or track.wanted(options):
                found.append(track)
        return found

    def frame_tracks(self, src: VideoSource, options: TrackOptions) -> list[FrameTrack[Any]]:
        """The frame tracks ``options`` asks for that are not stored yet for ``src`` (to be built)."""
        from frameseek.indexing.tee import unbuilt

        return unbuilt(self.wanted(options), src, options)

    def shared_decode(self, src: VideoSource, options: TrackOptions, ctx: TrackContext) -> list[str]:
        """The frame tracks not stored yet, built from one decode (``tee.shared_decode``)."""
        from frameseek.indexing.tee import shared_decode

        limits = {"frame_limit": self.frame_limit, "max_pixels": self.max_pixels}
        return shared_decode(self.frame_tracks(src, options), src, options, ctx, **limits)

    def speech(
        self,
        src: VideoSource,
        duration: float | None,
        options: TrackOptions,
        metrics: PipelineMetrics,
        progress: Progress | None = None,
    ) -> tuple[TextTrack | None, list[str]]:
        """Subtitles, else a link's captions, else (with ``options.speech``) recognised speech."""
        got = self.track("speech").get(src, options, TrackContext(duration, metrics, progress))
        return got.value, got.notices

    def screen(
        self,
        src: VideoSource,
        options: TrackOptions,
        metrics: PipelineMetrics,
        progress: Progress | None = None,
        duration: float | None = None,
    ) -> TextTrack | None:
        """Text read off frames sampled at ``options.ocr_fps``, only where the picture changed enough."""
        value: TextTrack | None = (
            self.track("screen").get(src, options, TrackContext(duration, metrics, progress)).value
        )
        return value

    def tracks(
        self,
        src: VideoSource,
        duration: float | None,
        options: TrackOptions,
        metrics: PipelineMetrics,
        progress: Progress | None = None,
    ) -> TextTracks:
        """Every track ``options`` asks for; a failure of one is a notice, never the end of the search.

        One decode feeds every frame track still to build (``shared_decode``), one of the audio every
        audio track (``TrackContext.audio``)."""
        result = TextTracks()
        ctx = TrackContext(duration, metrics, progress)
        self.shared_decode(src, options, ctx)
        for track in self.wanted(options):
            try:
                got = track.get(src, options, ctx)
            except FrameseekError as err:
                result.notices.append(f"{track.label} of {src.title} skipped: {err}")
                continue
            result.put(track.name, got.value)
            result.notices += got.notices
        return result
