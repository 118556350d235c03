"""Query-time zoom-in: after ranking, look at every frame around each visual hit (± one sample interval)
and return the best frame and sharper segment bounds — without re-indexing.

An index samples ~1 frame per second; the best moment can fall between two samples. Decoding the ~2 s
around a hit at the video's own frame rate costs ~50 frames per hit (``max_rate`` caps it), so it is
done only on request (``--refine``), for the hits being returned.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from frameseek.moments.confidence import Calibration
from frameseek.moments.temporal import segment_band
from frameseek.results import SearchResult
from frameseek.storage.visual import VideoIndex
from frameseek.timecode import format_timecode
from frameseek.video.decode import iter_frames

if TYPE_CHECKING:
    from frameseek.models.dual_encoder import DualEncoder

MAX_RATE = 30.0
"""Frames per second looked at around a hit (the video's own rate when lower)."""


def refine_hit(
    hit: SearchResult,
    index: VideoIndex,
    query: np.ndarray,
    model: DualEncoder,
    *,
    segment_keep: float = 0.5,
    max_rate: float = MAX_RATE,
    batch_size: int = 16,
    calibration: Calibration | None = None,
) -> SearchResult:
    """``hit`` with its time moved to the best frame within ± one sample interval, and its segment edges
    sharpened where they fall inside that window; its confidence follows its better visual score (the
    visual vote replaced in the moment's noisy-OR, ``moments.fusion``). Text hits (exact span times) are
    returned unchanged."""
    if hit.match.split("+")[0] != "visual" or not Path(hit.video).is_file() or not len(index):
        return hit
    step = index.step
    lo = max(0.0, hit.time - step)
    hi = hit.time + step if index.last_time is None else min(index.last_time, hit.time + step)
    if hi <= lo:
        return hit
    rate = min(max_rate, float(index.extra.get("fps") or max_rate))
    frames = list(iter_frames(hit.video, fps=rate, start=lo, end=hi, max_side=index.sampling.max_side))
    if not frames:
        return hit
    times = np.array([f.time for f in frames])
    scores = (
        np.concatenate(
            [
                model.encode_images([f.image for f in frames[i : i + batch_size]])
                for i in range(0, len(frames), batch_size)
            ]
        )
        @ query
    )
    best = int(np.argmax(scores))
    if scores[best] <= hit.score:
        return hit  # the sampled frame already was the best look
    coarse = index.embeddings @ query
    band = segment_band(coarse, int(np.argmin(np.abs(index.times - hit.time))), segment_keep)
    near = np.abs(scores - scores[best]) <= max(band, 1e-6)
    first = last = best
    while first > 0 and near[first - 1]:
        first -= 1
    while last < len(frames) - 1 and near[last + 1]:
        last += 1
    start = hit.start if first == 0 else float(times[first])  # the run reaches the window: keep the edge
    end = hit.end if last == len(frames) - 1 else float(times[last + 1])
    t = float(times[best])
    calibration = calibration or Calibration.uncalibrated()
    before, after = (
        float(p) for p in calibration.visual_confidence(query, np.array([hit.score, scores[best]]))
    )
    rest = (1.0 - hit.confidence) / max(1e-6, 1.0 - before)  # what the moment's other votes leave
    confidence = min(1.0, max(hit.confidence, 1.0 - min(1.0, rest) * (1.0 - after)))
    return dataclasses.replace(
        hit,
        confidence=round(confidence, 6),
        time=round(t, 6),
        timecode=format_timecode(t),
        score=round(float(scores[best]), 6),
        start=round(min(start, t), 6),
        end=round(max(end, t), 6),
    )
