"""Pure functions over a video's score timeline: temporal non-maximum suppression and segments."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def temporal_nms(times: npt.ArrayLike, scores: npt.ArrayLike, top_k: int, min_gap: float) -> list[int]:
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


def segment_bounds(scores: npt.ArrayLike, peak: int, keep: float = 0.5) -> tuple[int, int]:
    """The contiguous run of frames around ``peak`` whose score stays near it.

    A frame is "near" when |score − peak| ≤ keep × (peak − median), so ``keep`` = 0 keeps only frames
    scoring exactly the peak's score and 1 reaches down to the video's median. A weak hit (at or below the
    median) is its own frame only, and a run stops at frames clearly better than the peak (another hit's
    territory). Returns inclusive indices (first, last).
    """
    s = np.asarray(scores, dtype=np.float64)
    if not 0 <= peak < len(s):
        raise ValueError(f"peak {peak} outside 0..{len(s) - 1}")
    band = segment_band(s, peak, keep)

    def near(i: int) -> bool:
        return bool(abs(s[i] - s[peak]) <= band)

    first = peak
    while first > 0 and near(first - 1):
        first -= 1
    last = peak
    while last < len(s) - 1 and near(last + 1):
        last += 1
    return first, last


def segment_band(scores: npt.ArrayLike, peak: int, keep: float) -> float:
    """How far from the peak's score a frame may be and still belong to its segment."""
    s = np.asarray(scores, dtype=np.float64)
    return float(keep * max(0.0, s[peak] - float(np.median(s))))


def segment_times(
    times: npt.ArrayLike, first: int, last: int, duration: float | None, step: float
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
