"""The seam for a video's tracks beyond the picture: one small protocol and a registry.

A track is built from a source (a frame-based one from decoded frames), stored under the video's content
hash with its own key (``indexes/<sha[:2]>/<sha>/<name>/<key>.json``, ``storage.store.track_path``),
loaded back, and scores a query into timed candidates (``SearchResult``) that ``moments.ranking`` fuses
with the picture's. Today's ``speech`` and ``screen`` (``indexing/text_tracks.py``) are tracks; adding one
(faces, sounds) is a module with a class and one line::

    register(FacesTrack)        # FacesTrack(settings) -> Track; built when TrackOptions(extra=...) names it

``StoredTrack`` does the storing (key → path, get-or-build under the store's lock, a damaged entry rebuilt)
for a track that only says how to key, build, encode and decode; ``FrameTrack`` adds decoding: the track
reads frames it is handed and never opens the video itself. The visual track is the runner's
(``IndexRunner``: a folder of embeddings and thumbnails, keyed by model and sampling), not a registered one.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from frameseek.errors import InputError
from frameseek.metrics import PipelineMetrics
from frameseek.progress import Progress
from frameseek.storage.store import get_or_build, track_path
from frameseek.system.atomic import write_text_atomic
from frameseek.video.sampling import Sampling
from frameseek.video.sources import VideoSource

if TYPE_CHECKING:
    import numpy as np

    from frameseek.results import SearchResult
    from frameseek.storage.visual import VideoIndex
    from frameseek.text.matching import SpanMatcher
    from frameseek.text.spans import TextTrack
    from frameseek.video.decode import Frame

T = TypeVar("T")


_LANG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?")


@dataclass(frozen=True)
class TrackOptions:
    """Which tracks a search uses: subtitles (on by default when present), speech, screen text, and
    ``extra``: the names of further registered tracks (``indexing.tracks.register``)."""

    subtitles: bool = True
    speech: bool = False
    ocr: bool = False
    sub_lang: str = "en"
    asr_model: str = "base"
    ocr_fps: float = 1.0
    extra: frozenset[str] = frozenset()
    speech_language: str | None = None
    """Whisper's language, forced (``--speech-language``); None: detected per video."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", frozenset(self.extra))
        unknown = sorted(self.extra - registered().keys())
        if unknown:
            raise InputError(f"no track is registered as {', '.join(unknown)}")
        if not _LANG.fullmatch(self.sub_lang):
            raise InputError(f"--sub-lang must be a language code such as en or pt-BR, got {self.sub_lang!r}")
        if not self.asr_model.strip():
            raise InputError("--asr-model must name a model (e.g. base, small) or a folder")
        if not (0 < self.ocr_fps <= 10):
            raise InputError(f"--ocr-fps must be in (0, 10], got {self.ocr_fps}")
        if self.speech_language is not None:
            from frameseek.text.speech import check_speech_language

            object.__setattr__(self, "speech_language", check_speech_language(self.speech_language))

    @property
    def any_text(self) -> bool:
        """Whether any track besides the picture is asked for."""
        return self.subtitles or self.speech or self.ocr or bool(self.extra)


@dataclass(frozen=True)
class TrackSettings:
    """What every track is made with (one set per builder: the process's limits and thread counts)."""

    frame_limit: int
    max_pixels: int
    asr_threads: int | None = None
    ocr_threads: int = 1


@dataclass
class TrackContext:
    """One video's build: its duration, where time and counts go, who hears of progress, and its audio
    (``audio``: decoded once for every audio track of the build)."""

    duration: float | None
    metrics: PipelineMetrics
    progress: Progress | None = None
    _audio: tuple[str, Any, float] | None = field(default=None, repr=False)

    def audio(self, src: VideoSource) -> tuple[np.ndarray, float]:
        """``src``'s 16 kHz mono samples and their start (``text.speech.decode_audio``), decoded on first
        use and kept for the rest of this build: speech recognition and the sound track share them."""
        if self._audio is None or self._audio[0] != src.sha256:
            from frameseek.text.speech import decode_audio

            self._audio = None  # another video's samples go before this one's are decoded
            with self.metrics.stage("audio"):
                samples, offset = decode_audio(src.path)
            self._audio = (src.sha256, samples, offset)
        return self._audio[1], self._audio[2]


@dataclass(frozen=True)
class TrackQuery:
    """A query as tracks score it: its words (None for an image-only query), its embedding in the image
    model's space, and ``matcher``: the caller's (cached) ``SpanMatcher`` for a text track."""

    text: str | None
    vector: np.ndarray
    matcher: Callable[[TextTrack], SpanMatcher]
    text_confidence: Callable[..., np.ndarray] | None = None
    """The model's ``Calibration.text_confidence`` (a text track's candidates carry it), or None."""


@dataclass
class Obtained:
    """What a track's ``get`` found or built (None: nothing to search), and notices for the user."""

    value: Any = None
    notices: list[str] = field(default_factory=list)


class Track(Protocol):
    """One kind of track. ``name``: its folder under the video's hash and its key in ``TextTracks``;
    ``label``: how a notice names it (``"screen text"``)."""

    name: ClassVar[str]
    label: ClassVar[str]

    def wanted(self, options: TrackOptions) -> bool:
        """Whether a search with ``options`` uses this track."""
        ...

    def get(self, src: VideoSource, options: TrackOptions, ctx: TrackContext) -> Obtained:
        """The stored track, else built now and stored (a ``FrameseekError``: the track is skipped with a
        notice, never the search)."""
        ...

    def score(self, index: VideoIndex, value: Any, query: TrackQuery) -> list[SearchResult]:
        """Timed candidates for ``query`` from a value ``get`` returned (fused with the picture's)."""
        ...


TrackFactory = Callable[[TrackSettings], Track]

_REGISTRY: dict[str, TrackFactory] = {}


def register(factory: TrackFactory, name: str | None = None) -> TrackFactory:
    """Make a track known by its ``name`` (the class attribute, or ``name``); later registrations of a
    name replace earlier ones. Returns ``factory`` (usable as a class decorator)."""
    key = name or getattr(factory, "name", None)
    if not isinstance(key, str) or not key or key == "visual":
        raise InputError(f"a track needs a name other than 'visual', got {key!r}")
    _REGISTRY[key] = factory
    return factory


def unregister(name: str) -> None:
    """Forget a registered track (tests, plugins being unloaded)."""
    _REGISTRY.pop(name, None)


BUILT_IN_FIRST = ("speech", "screen")
"""Listed first whatever was imported first (a track module imported before ``indexing.text_tracks``
registers before them)."""


def registered() -> dict[str, TrackFactory]:
    """Every registered track by name: the built-in text tracks first, then the others in registration
    order (``speech`` and ``screen`` register when ``indexing.text_tracks``, the module of
    ``TrackOptions``, is imported; ``faces`` and ``sounds`` right after them)."""
    first = {name: _REGISTRY[name] for name in BUILT_IN_FIRST if name in _REGISTRY}
    return first | {name: f for name, f in _REGISTRY.items() if name not in first}


# ---- stored tracks ---------------------------------------------------------------------------------


class StoredTrack(ABC, Generic[T]):
    """A track stored as one text file per key: say how to key, build, encode and decode it; ``get``
    loads the stored entry or builds and writes it under the store's lock (``storage.get_or_build``)."""

    name: ClassVar[str]
    label: ClassVar[str]

    def __init__(self, settings: TrackSettings) -> None:
        self.settings = settings

    @abstractmethod
    def wanted(self, options: TrackOptions) -> bool: ...

    @abstractmethod
    def key(self, src: VideoSource, options: TrackOptions) -> str:
        """What the stored track depends on, as a short lower-case key (a hash: ``text_tracks.track_key``)."""

    @abstractmethod
    def build(self, src: VideoSource, options: TrackOptions, ctx: TrackContext) -> T: ...

    @abstractmethod
    def encode(self, value: T) -> str: ...

    @abstractmethod
    def decode(self, text: str) -> T:
        """Inverse of ``encode``; ValueError / KeyError / TypeError on a damaged entry."""

    @abstractmethod
    def score(self, index: VideoIndex, value: T, query: TrackQuery) -> list[SearchResult]: ...

    def found(self, value: T, src: VideoSource) -> Obtained:
        """What ``get`` hands back for a value (override: drop empty values, add notices)."""
        return Obtained(value)

    def path(self, src: VideoSource, options: TrackOptions) -> Path:
        return track_path(src.sha256, self.name, self.key(src, options))

    def load(self, path: Path) -> T | None:
        """The stored value, or None; a damaged one is removed so it gets rebuilt."""
        if not path.is_file():
            return None
        try:
            return self.decode(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            return None

    def get(self, src: VideoSource, options: TrackOptions, ctx: TrackContext) -> Obtained:
        path = self.path(src, options)

        def build() -> T:
            value = self.build(src, options, ctx)
            write_text_atomic(path, self.encode(value) + "\n")
            return value

        value, _ = get_or_build(path, lambda: self.load(path), build)
        return self.found(value, src)


class FrameTrack(StoredTrack[T]):
    """A stored track read off decoded frames: ``sampling`` says which frames, ``from_frames`` reads them.

    ``build`` decodes them with a ``FrameReader`` under the process's limits; a caller that already decodes
    the video at the same sampling (one pass feeding several frame tracks) calls ``from_frames`` itself.
    """

    @abstractmethod
    def sampling(self, options: TrackOptions) -> Sampling: ...

    @abstractmethod
    def from_frames(
        self, frames: Iterable[Frame], src: VideoSource, options: TrackOptions, ctx: TrackContext
    ) -> T: ...

    def frames(self, src: VideoSource, options: TrackOptions) -> Iterator[Frame]:
        from frameseek.indexing.reader import FrameReader

        reader = FrameReader(
            self.sampling(options),
            frame_limit=self.settings.frame_limit,
            max_pixels=self.settings.max_pixels,
        )
        return reader(src.path)

    def build(self, src: VideoSource, options: TrackOptions, ctx: TrackContext) -> T:
        return self.from_frames(self.frames(src, options), src, options, ctx)

    def stored_value(self, src: VideoSource, options: TrackOptions) -> T | None:
        """The stored value, or None when it must be built (a damaged one is removed)."""
        return self.load(self.path(src, options))

    def get_from(
        self, frames: Iterable[Frame], src: VideoSource, options: TrackOptions, ctx: TrackContext
    ) -> None:
        """Build and store the value from frames another pass decodes (``FrameTee``); nothing is written
        when the frames end early (an error or a stop raised through ``frames``)."""
        path = self.path(src, options)

        def build() -> T:
            value = self.from_frames(frames, src, options, ctx)
            write_text_atomic(path, self.encode(value) + "\n")
            return value

        get_or_build(path, lambda: self.load(path), build)


def track_candidates(
    index: VideoIndex, values: dict[str, Any], query: TrackQuery, tracks: Iterable[Track]
) -> list[SearchResult]:
    """Every candidate the video's tracks give for ``query``, track by track in ``tracks``' order."""
    found: list[SearchResult] = []
    for track in tracks:
        value = values.get(track.name)
        if value is not None:
            found += track.score(index, value, query)
    return found
