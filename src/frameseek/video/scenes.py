"""Shot-change detection: mean HSV difference between consecutive thumbnails (like PySceneDetect's
ContentDetector), used by ``iter_frames(scene=True)`` and ``detect_scenes``. Detectors take frames; they
never open a video."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np

DEFAULT_THRESHOLD = 27.0
"""Cut when the mean absolute HSV difference (OpenCV scales: H 0-180, S and V 0-255) reaches this."""

DEFAULT_MIN_SCENE_LEN = 0.5
"""Seconds: no cut is reported closer than this to the previous cut (or to the first frame)."""

THUMB_WIDTH = 64
"""Width of the thumbnails the detector compares (height keeps the aspect ratio)."""


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """Convert an HxWx3 uint8 RGB image to float32 HSV with OpenCV's scales (H 0-180, S and V 0-255)."""
    x = rgb.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(axis=-1)
    delta = v - x.min(axis=-1)
    s = np.where(v > 0, delta / np.maximum(v, 1e-6) * 255.0, 0.0)
    safe = np.maximum(delta, 1e-6)
    hue = np.where(v == r, (g - b) / safe, np.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = np.where(delta > 0, (hue * 30.0) % 180.0, 0.0)
    return np.stack([hue, s, v], axis=-1).astype(np.float32)


def thumb_size(width: int, height: int, thumb_width: int = THUMB_WIDTH) -> tuple[int, int]:
    """Thumbnail size for a ``width`` x ``height`` picture: ``thumb_width`` wide, aspect kept (height >= 8)."""
    thumb_height = max(8, round(thumb_width * height / max(width, 1)))
    return thumb_width, thumb_height


class ContentDetector:
    """Streaming shot-change detector: feed every frame's thumbnail in order, get True on a cut."""

    def __init__(
        self, threshold: float = DEFAULT_THRESHOLD, min_scene_len: float = DEFAULT_MIN_SCENE_LEN
    ) -> None:
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        if min_scene_len < 0:
            raise ValueError(f"min_scene_len must be >= 0 seconds, got {min_scene_len}")
        self.threshold = threshold
        self.min_scene_len = min_scene_len
        self.last_score: float = 0.0
        self._previous: np.ndarray | None = None
        self._last_cut: float | None = None

    def update(self, time: float, small_frame: np.ndarray) -> bool:
        """Compare ``small_frame`` (HxWx3 uint8 RGB) with the previous one; True if a new shot starts."""
        hsv = rgb_to_hsv(small_frame)
        previous, self._previous = self._previous, hsv
        if previous is None or previous.shape != hsv.shape:
            self._last_cut = time if self._last_cut is None else self._last_cut
            self.last_score = 0.0
            return False
        self.last_score = float(np.abs(hsv - previous).mean())
        if self.last_score < self.threshold:
            return False
        if self._last_cut is not None and time - self._last_cut < self.min_scene_len:
            return False
        self._last_cut = time
        return True


def scenes_from_cuts(first: float, cuts: Iterable[float], end: float) -> list[tuple[float, float]]:
    """Turn cut times into ``(start, end)`` scenes covering ``[first, end]``."""
    bounds = [first, *(c for c in cuts if first < c < end), end]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def detect_scenes(
    frames: Iterable[tuple[float, np.ndarray]],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_scene_len: float = DEFAULT_MIN_SCENE_LEN,
) -> list[tuple[float, float]]:
    """The shots of a stream of ``(time, thumbnail)`` frames as ``(start, end)`` seconds.

    It never opens a video: feed it e.g. ``decode.iter_small_frames(path)`` (every frame, small).
    """
    detector = ContentDetector(threshold, min_scene_len)
    first: float | None = None
    cuts: list[float] = []
    times: list[float] = []
    for time, small in frames:
        first = time if first is None else first
        if detector.update(time, small):
            cuts.append(time)
        times = [*times[-1:], time]
    if first is None:
        return []
    step = times[-1] - times[0] if len(times) == 2 else 0.0
    return scenes_from_cuts(first, cuts, times[-1] + step)
