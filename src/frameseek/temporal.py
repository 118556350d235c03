"""Pure functions over a video's score timeline: temporal non-maximum suppression and segments."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def temporal_nms(times: Sequence[float], scores: Sequence[float], top_k: int, min_gap: float) -> list[int]:
    """Indices of the best frames, best first, no two closer than ``min_gap`` seconds."""
    t = np.asarray(times, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if top_k <= 0 or len(s) == 0:
        return []
    chosen: list[int] = []
    for i in np.argsort(-s, kind="stable"):
        if all(abs(t[i] - t[j]) >= min_gap for j in chosen):
            chosen.append(int(i))
            if len(chosen) == top_k:
                break
    return chosen


def segment_bounds(scores: Sequence[float], peak: int, keep: float = 0.5) -> tuple[int, int]:
    """The contiguous run of frames around ``peak`` whose score stays near it.

    A frame is "near" when its score ≥ peak − keep × (peak − median): ``keep`` = 0 keeps only the peak,
    1 keeps everything down to the video's median score. Returns inclusive indices (first, last).
    """
    s = np.asarray(scores, dtype=np.float64)
    if not 0 <= peak < len(s):
        raise ValueError(f"peak {peak} outside 0..{len(s) - 1}")
    threshold = s[peak] - keep * max(0.0, s[peak] - float(np.median(s)))
    first = peak
    while first > 0 and s[first - 1] >= threshold:
        first -= 1
    last = peak
    while last < len(s) - 1 and s[last + 1] >= threshold:
        last += 1
    return first, last


def segment_times(
    times: Sequence[float], first: int, last: int, duration: float | None, step: float
) -> tuple[float, float]:
    """[start, end] seconds of a run of sampled frames: a frame stands for the time until the next one."""
    t = np.asarray(times, dtype=np.float64)
    start = float(t[first])
    if last + 1 < len(t):
        end = float(t[last + 1])
    else:
        end = float(t[last]) + step
        if duration is not None:
            end = min(end, duration) if duration > t[last] else float(t[last])
    return start, max(start, end)
