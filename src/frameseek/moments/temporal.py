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


MOMENT_KEEP = 0.5
"""A moment's frames keep at least this share of its peak's confidence (``Searcher.search(segment_keep=)``
is the share a frame may fall below the peak: 0.5 → half the peak's confidence)."""
MOMENT_FLOOR = 0.2
"""...and at least this confidence: a frame below 0.2 is four to one against matching, so it does not widen
a moment. A weak moment (its peak below the floor) is its best frame alone."""


def local_peaks(scores: npt.ArrayLike) -> npt.NDArray[np.intp]:
    """Indices of the frames at least as good as both neighbours (a plateau gives each of its frames)."""
    s = np.asarray(scores, dtype=np.float64)
    if len(s) == 0:
        return np.zeros(0, dtype=np.intp)
    left = np.concatenate([[True], s[1:] >= s[:-1]])
    right = np.concatenate([s[:-1] >= s[1:], [True]])
    return np.flatnonzero(left & right)


def confident_run(
    confidence: npt.ArrayLike, peak: int, threshold: float, taken: npt.NDArray[np.bool_] | None = None
) -> tuple[int, int]:
    """The contiguous frames around ``peak`` whose confidence stays at or above ``threshold`` (and not above
    the peak's) and that no other moment holds (``taken``); inclusive indices (first, last). The peak itself
    always belongs. Looks outwards in growing windows, so a short run costs little in a long video."""
    c = np.asarray(confidence, dtype=np.float64)
    top = c[peak]
    if threshold >= top:  # a weak peak: only frames exactly as confident (a plateau) may join it
        first, last = peak, peak
        if threshold > top:
            return first, last
        while last + 1 < len(c) and c[last + 1] == top and (taken is None or not taken[last + 1]):
            last += 1
        while first > 0 and c[first - 1] == top and (taken is None or not taken[first - 1]):
            first -= 1
        return first, last

    def stops(lo: int, hi: int) -> npt.NDArray[np.intp]:
        ok = (c[lo:hi] >= threshold) & (c[lo:hi] <= top)  # a better frame is another moment's slope
        if taken is not None:
            ok &= ~taken[lo:hi]
        return np.flatnonzero(~ok)

    last, window = peak, 16
    while last < len(c) - 1:
        hi = min(len(c), last + 1 + window)
        bad = stops(last + 1, hi)
        if len(bad):
            last += int(bad[0])
            break
        last, window = hi - 1, window * 2
    first, window = peak, 16
    while first > 0:
        lo = max(0, first - window)
        bad = stops(lo, first)
        if len(bad):
            first = lo + int(bad[-1]) + 1
            break
        first, window = lo, window * 2
    return first, last


def pick_moments(
    times: npt.ArrayLike,
    scores: npt.ArrayLike,
    confidence: npt.ArrayLike,
    limit: int | None,
    min_gap: float,
    keep: float = MOMENT_KEEP,
    floor: float = MOMENT_FLOOR,
) -> list[tuple[int, int, int]]:
    """A video's moments, best first: (peak, first, last) frame indices.

    Peaks are the frames at least as good as their neighbours, taken best first; each one's moment is the
    run of frames around it whose confidence stays at or above ``max(floor, (1 - keep) × peak's)`` (never
    above the peak's own), and no frame belongs to two moments. A peak inside an earlier moment, or closer
    than ``min_gap`` seconds to an earlier peak, is a bump of that moment, not a moment of its own. So the
    moments' segments never overlap and each one's representative frame is its best.
    """
    t = np.asarray(times, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(confidence, dtype=np.float64)
    if len(s) == 0 or (limit is not None and limit <= 0):
        return []
    peaks = local_peaks(s)
    order = peaks[np.lexsort((peaks, -s[peaks], -c[peaks]))]  # best confidence, then score, then time
    taken = np.zeros(len(s), dtype=bool)
    near_chosen = np.zeros(len(s), dtype=bool)  # frames closer than min_gap to a chosen peak (times ascend)
    chosen: list[tuple[int, int, int]] = []
    for p in order:
        peak = int(p)
        if taken[peak] or near_chosen[peak]:
            continue
        threshold = min(max(floor, (1.0 - keep) * c[peak]), c[peak])
        first, last = confident_run(c, peak, threshold, taken)
        taken[first : last + 1] = True
        lo = int(np.searchsorted(t, t[peak] - min_gap, side="right"))
        near_chosen[lo : int(np.searchsorted(t, t[peak] + min_gap, side="left"))] = True
        chosen.append((peak, first, last))
        if limit is not None and len(chosen) == limit:
            break
    return chosen
