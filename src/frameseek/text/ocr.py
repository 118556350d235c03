"""On-screen text: read burned-in captions, titles and signs off sampled frames with RapidOCR (PP-OCR, ONNX).

``read_screen_text`` never opens a video: it takes frames a reader already sampled (e.g. 1 frame/s from
``iter_frames``), runs OCR only where the picture changed since the last frame it read, and turns the lines
read into ``TextSpan(kind="screen")``: one span per line of text for as long as it stays on screen, labelled
with its language where ``text.multilingual.detect_language`` can tell (script, or a Latin language's
function words). RapidOCR's packaged PP-OCR models read Latin script (English, German, Spanish, French, …)
and Chinese (simplified and traditional characters); other scripts (Cyrillic, Arabic, Devanagari, …) are
not recognised.
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from frameseek.errors import InputError, ModelError
from frameseek.text.matching import NEAR_IDENTICAL, normalize, text_similarity
from frameseek.text.multilingual import detect_language
from frameseek.text.spans import TextSpan
from frameseek.video.decode import Frame
from frameseek.video.scenes import rgb_to_hsv, thumb_size

if TYPE_CHECKING:
    from rapidocr import RapidOCR

DEFAULT_MIN_CONFIDENCE = 0.8
"""Lines RapidOCR reads with a lower score are dropped. Measured (PP-OCRv6 small, 640 px frames): drawtext
captions over real footage read at 0.90-1.00; false reads of textures in bikes.mp4 (no text) scored 0.08-0.77,
except single glyphs ('G', 'Q' up to 0.97), which ``MIN_TEXT_CHARS`` removes."""

MIN_TEXT_CHARS = 2
"""Lines with fewer letters or digits are dropped (lone glyphs are nearly always textures read as text)."""

DEFAULT_DETECT_SIDE = 360
"""Shortest side (pixels) the text detector sees; smaller frames are upscaled to it, larger ones kept.
On 640x272 frames: 360 reads ~10 frames/s on one core against ~2.7 for RapidOCR's default 736, and reads
the same captions (10-36 px text), except a half-transparent grey caption that only 440+ found."""

DEFAULT_MIN_CHANGE = 3.0
"""OCR a frame when ``screen_change`` from the last frame read reaches this. Measured on a still shot at
2 frames/s: compression noise 0-1.7; a caption appearing or disappearing 27-86 (10-36 px white text), 5.9
for a half-transparent grey one. Moving footage changes by more than this on nearly every frame."""

CHANGE_THUMB_WIDTH = 160
"""Width of the thumbnails ``screen_change`` compares (64, the shot detector's, blurs small text away)."""

CHANGE_GRID = 8
"""``screen_change`` splits thumbnails into CHANGE_GRID x CHANGE_GRID cells."""

DEFAULT_MAX_MISSING = 1
"""A line on screen survives this many frames without it (OCR misses a line now and then in motion)."""

Progress = Callable[[str, float, float | None], None]
"""``progress("ocr", seconds of video read so far, None)``: the same shape as ``frameseek.search.Progress``."""


@dataclass
class OcrStats:
    """What one ``read_screen_text`` run did, for metrics."""

    frames_seen: int = 0
    frames_read: int = 0
    """Frames OCR ran on (the others inherited the text of the last frame read)."""
    ocr_seconds: float = 0.0
    """Time in OCR, the engine's one-time load excluded."""
    load_seconds: float = 0.0
    """Time loading the OCR engine (its first use only; ~1 s)."""
    lines_kept: int = 0
    lines_dropped: int = 0
    """Lines under ``min_confidence`` or with fewer than ``MIN_TEXT_CHARS`` letters/digits."""
    spans: int = 0

    @property
    def frames_skipped(self) -> int:
        return self.frames_seen - self.frames_read

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "frames_skipped": self.frames_skipped}


class ScreenReader:
    """RapidOCR, created on first use (once, thread-safe) with ``threads`` ONNX Runtime intra-op threads."""

    def __init__(
        self,
        threads: int = 1,
        *,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        detect_side: int = DEFAULT_DETECT_SIDE,
    ) -> None:
        if threads < 1:
            raise InputError(f"OCR threads must be at least 1, got {threads}")
        if not 0.0 <= min_confidence <= 1.0:
            raise InputError(f"min_confidence must be between 0 and 1, got {min_confidence}")
        if detect_side < 32:
            raise InputError(f"detect_side must be at least 32 pixels, got {detect_side}")
        self.threads = threads
        self.min_confidence = min_confidence
        self.detect_side = detect_side
        self.load_seconds = 0.0
        """Seconds the engine took to load (0 until first used)."""
        self._engine: RapidOCR | None = None
        self._lock = threading.Lock()

    def _load(self) -> RapidOCR:
        with self._lock:
            if self._engine is None:
                try:
                    from rapidocr import RapidOCR
                except ImportError as err:
                    raise ModelError(f"on-screen text needs rapidocr ({err})") from err
                params = {
                    "Global.log_level": "critical",  # "text detection result is empty" on every blank frame
                    "Global.use_cls": False,  # captions are upright; the 180-degree classifier costs ~10%
                    "Det.limit_type": "min",
                    "Det.limit_side_len": self.detect_side,
                    "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                }
                started = time.perf_counter()
                self._engine = RapidOCR(params=params)
                self.load_seconds = time.perf_counter() - started
            return self._engine

    def read(self, image: np.ndarray, *, min_confidence: float | None = None) -> list[tuple[str, float]]:
        """Lines of text in ``image`` (HxWx3 uint8 RGB), top to bottom, as ``(text, confidence)``."""
        return self.read_detailed(image, min_confidence=min_confidence)[0]

    def read_detailed(
        self, image: np.ndarray, *, min_confidence: float | None = None
    ) -> tuple[list[tuple[str, float]], int]:
        """``read``'s lines, and how many lines were dropped (low confidence, too few letters/digits)."""
        min_confidence = self.min_confidence if min_confidence is None else min_confidence
        if (
            not isinstance(image, np.ndarray)
            or image.ndim != 3
            or image.shape[2] != 3
            or image.dtype != np.uint8
        ):
            shape = getattr(image, "shape", None)
            raise InputError(f"OCR needs an HxWx3 uint8 RGB image, got {type(image).__name__} {shape}")
        engine = self._load()
        result = engine(np.ascontiguousarray(image[..., ::-1]))  # RapidOCR takes arrays as BGR
        texts = getattr(result, "txts", None) or ()
        scores = getattr(result, "scores", None) or ()
        kept: list[tuple[str, float]] = []
        dropped = 0
        for raw, score in zip(texts, scores, strict=False):
            text = " ".join(str(raw).split())
            if float(score) >= min_confidence and sum(c.isalnum() for c in text) >= MIN_TEXT_CHARS:
                kept.append((text, float(score)))
            else:
                dropped += 1
        return kept, dropped


def change_thumbnail(image: np.ndarray) -> np.ndarray:
    """Brightness (HSV V, 0-255) of a ``CHANGE_THUMB_WIDTH``-wide thumbnail of an HxWx3 uint8 RGB frame."""
    import cv2

    height, width = image.shape[:2]
    small = cv2.resize(image, thumb_size(width, height, CHANGE_THUMB_WIDTH), interpolation=cv2.INTER_AREA)
    return np.asarray(rgb_to_hsv(small)[..., 2], dtype=np.float32)


def screen_change(previous: np.ndarray, current: np.ndarray) -> float:
    """Largest mean absolute brightness difference over a grid of cells of two ``change_thumbnail``s.

    A cell grid, not the whole-frame mean the shot detector uses: a caption covers a few percent of the
    picture, so a whole-frame mean barely moves (1.5 when "FINAL LAP" appears), while its cell changes by
    ~86. Brightness only: hue is noisy on grey pixels (compression alone moved it by up to 5).
    """
    if previous.shape != current.shape:
        return float("inf")
    diff = np.abs(current - previous)
    return max(
        float(cell.mean())
        for band in np.array_split(diff, CHANGE_GRID, axis=0)
        for cell in np.array_split(band, CHANGE_GRID, axis=1)
        if cell.size
    )


@dataclass
class _Open:
    """A line of text on screen: first and last frame it was read in, and its readings."""

    first: float
    last: float
    readings: dict[str, float] = field(default_factory=dict)
    latest: str = ""
    missing: int = 0

    def add(self, text: str, confidence: float, when: float) -> None:
        self.readings[text] = self.readings.get(text, 0.0) + confidence
        self.latest = text
        self.last = when
        self.missing = 0

    def text(self) -> str:
        """The reading with the highest summed confidence (ties: the longest, then the first)."""
        return max(self.readings.items(), key=lambda item: (item[1], len(item[0])))[0]


def _numbers(text: str) -> list[str]:
    return [word for word in normalize(text).split() if word.isdigit()]


def same_line(a: str, b: str) -> float:
    """``text_similarity`` of two readings, or 0 when their numbers differ (a score or a counter changed,
    ``"Chapter 4"`` → ``"Chapter 5"``, which is a new text however similar the letters)."""
    return text_similarity(a, b) if _numbers(a) == _numbers(b) else 0.0


def _match(open_lines: list[_Open], lines: list[tuple[str, float]]) -> list[tuple[int, int]]:
    """Pairs (open line, read line) at ``same_line`` ≥ NEAR_IDENTICAL, most similar first, one-to-one."""
    pairs = []
    for i, line in enumerate(open_lines):
        for j, (text, _) in enumerate(lines):
            similarity = same_line(line.latest, text)
            if similarity >= NEAR_IDENTICAL:
                pairs.append((similarity, i, j))
    used_open: set[int] = set()
    used_line: set[int] = set()
    matched = []
    for _, i, j in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
        if i not in used_open and j not in used_line:
            used_open.add(i)
            used_line.add(j)
            matched.append((i, j))
    return matched


def read_screen_text(
    frames: Iterable[Frame],
    reader: ScreenReader | None = None,
    *,
    min_change: float = DEFAULT_MIN_CHANGE,
    min_confidence: float | None = None,
    max_missing: int = DEFAULT_MAX_MISSING,
    step: float | None = None,
    progress: Progress | None = None,
    stats: OcrStats | None = None,
) -> list[TextSpan]:
    """Text on screen in ``frames`` (in time order, already sampled) as ``TextSpan(kind="screen")``.

    OCR runs on the first frame and on each frame whose ``screen_change`` from the last frame read is at
    least ``min_change`` (0: every frame); the others keep the text of the last frame read. A line read
    again (``same_line`` ≥ 0.8: OCR jitter, same numbers) extends its span; a span ends when its line is gone
    for more than ``max_missing`` frames or changes, and covers ``[first seen, last seen + step)``.
    ``step`` defaults to the median spacing of the frames (1 s for a single frame). Each span's text is
    its reading with the highest summed confidence. ``min_confidence`` defaults to the reader's.
    ``stats``, when given, is filled in.
    """
    if min_change < 0:
        raise InputError(f"min_change must be >= 0, got {min_change}")
    if max_missing < 0:
        raise InputError(f"max_missing must be >= 0, got {max_missing}")
    if step is not None and not step > 0:
        raise InputError(f"step must be positive seconds, got {step}")
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise InputError(f"min_confidence must be between 0 and 1, got {min_confidence}")
    reader = reader or ScreenReader()
    stats = stats if stats is not None else OcrStats()
    open_lines: list[_Open] = []
    closed: list[_Open] = []
    times: list[float] = []
    reference: np.ndarray | None = None
    current: list[tuple[str, float]] = []
    for frame in frames:
        stats.frames_seen += 1
        times.append(frame.time)
        thumb = change_thumbnail(frame.image)
        if reference is None or screen_change(reference, thumb) >= min_change:
            started, loaded = time.perf_counter(), reader.load_seconds
            current, dropped = reader.read_detailed(frame.image, min_confidence=min_confidence)
            loading = reader.load_seconds - loaded
            stats.load_seconds += loading
            stats.ocr_seconds += time.perf_counter() - started - loading
            stats.frames_read += 1
            stats.lines_kept += len(current)
            stats.lines_dropped += dropped
            reference = thumb
        matched = _match(open_lines, current)
        for i, j in matched:
            open_lines[i].add(current[j][0], current[j][1], frame.time)
        seen = {i for i, _ in matched}
        still_open: list[_Open] = []
        for i, line in enumerate(open_lines):
            if i not in seen:
                line.missing += 1
            (still_open if line.missing <= max_missing else closed).append(line)
        new = {j for _, j in matched}
        for j, (text, confidence) in enumerate(current):
            if j not in new:
                line = _Open(first=frame.time, last=frame.time)
                line.add(text, confidence, frame.time)
                still_open.append(line)
        open_lines = still_open
        if progress is not None:
            progress("ocr", frame.time, None)
    closed.extend(open_lines)
    if step is None:
        gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
        step = statistics.median(gaps) if gaps else 1.0
    spans = sorted(
        (
            TextSpan(line.first, round(line.last + step, 6), text, "screen", detect_language(text))
            for line in closed
            for text in (line.text(),)
        ),
        key=lambda s: (s.start, s.end, s.text),
    )
    stats.spans = len(spans)
    return spans
