"""Scores → ranked moments with confidence: per video and across a library.

Every frame score becomes a calibrated confidence (``Calibration.visual_confidence``, computed once per
query over every frame it ranks), every text candidate gets ``text_confidence`` of its kind; a video's
visual moments come from ``temporal.pick_moments`` (non-overlapping runs where the confidence stays high),
and ``fusion.merge_moments`` fuses them with the other tracks' candidates on the confidence scale. Results
are ordered by confidence; a response has ``found`` when its best moment reaches ``FOUND_AT``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from frameseek.errors import InputError
from frameseek.moments.confidence import FOUND_AT, Calibration
from frameseek.moments.fusion import merge_moments, text_candidates
from frameseek.moments.temporal import MOMENT_KEEP, pick_moments, segment_times
from frameseek.results import SearchResult, Timeline
from frameseek.storage.library import LibraryMatrix
from frameseek.storage.visual import VideoIndex
from frameseek.text.matching import SpanMatcher
from frameseek.text.spans import SpanKind
from frameseek.timecode import format_timecode

HIGH_AT = 0.8
"""A moment's confidence level is ``high`` from here, ``medium`` from ``FOUND_AT``, else ``low`` (weak)."""


def confidence_level(confidence: float) -> str:
    """``high`` / ``medium`` / ``low``: how the doors name a confidence (``low`` is below ``FOUND_AT``)."""
    if confidence >= HIGH_AT:
        return "high"
    return "medium" if confidence >= FOUND_AT else "low"


def is_found(results: Sequence[SearchResult]) -> bool:
    """Whether any moment matches well (reaches ``FOUND_AT``)."""
    return any(r.confidence >= FOUND_AT for r in results)


def check_ranking(top_k: int, min_gap: float, min_confidence: float = 0.0) -> None:
    """Reject ranking options that cannot work."""
    if top_k < 1:
        raise InputError(f"--top-k must be at least 1, got {top_k}")
    if min_gap < 0:
        raise InputError(f"--min-gap must be >= 0, got {min_gap}")
    check_min_confidence(min_confidence)


def check_min_confidence(min_confidence: float) -> None:
    """``--min-confidence`` is a probability: 0 to 1."""
    if not 0.0 <= min_confidence <= 1.0:  # also refuses NaN
        raise InputError(f"--min-confidence must be between 0 and 1, got {min_confidence}")


def confident(results: Sequence[SearchResult], min_confidence: float) -> list[SearchResult]:
    """The results that reach ``min_confidence``."""
    return [r for r in results if r.confidence >= min_confidence]


def confidences(
    calibration: Calibration, query: np.ndarray, scores: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """``visual_confidence`` of several score arrays in one call (the query's bank statistics once)."""
    if not scores:
        return []
    joined = calibration.visual_confidence(query, np.concatenate(scores))
    return np.split(joined, np.cumsum([len(s) for s in scores])[:-1])


def with_confidence(candidates: Sequence[SearchResult], calibration: Calibration) -> list[SearchResult]:
    """Candidates of text tracks (and other tracks) with their confidence: a candidate whose track set
    none (0.0) gets ``text_confidence(kind, score)``."""
    done = []
    for cand in candidates:
        if cand.confidence <= 0.0:
            kind = cand.match.split("+")[0]
            p = float(calibration.text_confidence(kind, np.array([cand.score]))[0])
            cand = dataclasses.replace(cand, confidence=round(p, 6))
        done.append(cand)
    return done


def make_result(
    index: VideoIndex,
    scores: np.ndarray,
    peak: int,
    first: int,
    last: int,
    confidence: float,
) -> SearchResult:
    """A visual moment of ``index``: its best frame ``peak``, its frames ``first``..``last``."""
    start, end = segment_times(index.times, first, last, index.last_time, index.step)
    t = float(index.times[peak])
    return SearchResult(
        video=index.video_path,
        title=index.title,
        time=round(t, 6),
        timecode=format_timecode(t),
        score=round(float(scores[peak]), 6),
        start=round(min(start, t), 6),
        end=round(max(end, t), 6),
        thumbnail=index.thumbnail_if_present(peak),
        confidence=round(float(confidence), 6),
    )


def visual_moments(
    index: VideoIndex,
    scores: np.ndarray,
    conf: np.ndarray,
    limit: int | None,
    min_gap: float,
    segment_keep: float = MOMENT_KEEP,
) -> list[SearchResult]:
    """A video's visual moments, most confident first (``temporal.pick_moments``)."""
    return [
        make_result(index, scores, peak, first, last, float(conf[peak]))
        for peak, first, last in pick_moments(index.times, scores, conf, limit, min_gap, segment_keep)
    ]


Matchers = Sequence[tuple[SpanKind, SpanMatcher]]
"""A video's text tracks, each ready to score queries."""


def video_moments(
    index: VideoIndex,
    scores: np.ndarray,
    conf: np.ndarray,
    calibration: Calibration,
    *,
    limit: int | None = None,
    min_gap: float = 2.0,
    segment_keep: float = MOMENT_KEEP,
    candidates: Sequence[SearchResult] = (),
) -> list[SearchResult]:
    """Every moment of one video for one query (``limit=None``), with confidence, most confident first:
    the picture's moments fused with the other tracks' ``candidates``."""
    found = visual_moments(index, scores, conf, limit, min_gap, segment_keep)
    if not candidates:  # the picture's moments never touch each other (pick_moments): nothing to merge
        found.sort(key=lambda r: (-r.confidence, -r.score))
        return found
    return merge_moments([*found, *with_confidence(candidates, calibration)], limit, min_gap)


def rank_videos(
    indexes: Sequence[VideoIndex],
    query: np.ndarray,
    top_k: int | None,
    min_gap: float,
    segment_keep: float,
    *,
    calibration: Calibration | None = None,
    text: str | None = None,
    matchers: Sequence[Matchers] | None = None,
    candidates: Sequence[Sequence[SearchResult]] | None = None,
) -> tuple[list[SearchResult], list[Timeline]]:
    """Exact scores for every frame of every video; each video's moments fused with its text tracks
    (``matchers[i]`` for ``indexes[i]``) and with the timed candidates other tracks scored
    (``candidates[i]``, ``indexing.tracks``); the ``top_k`` most confident overall (every one for None)."""
    calibration = calibration or Calibration.uncalibrated()
    present = [i for i, index in enumerate(indexes) if len(index)]
    all_scores = [indexes[i].embeddings @ query for i in present]
    all_conf = confidences(calibration, query, all_scores)
    results: list[SearchResult] = []
    timelines: list[Timeline] = []
    for i, scores, conf in zip(present, all_scores, all_conf, strict=True):
        index = indexes[i]
        timelines.append(Timeline(index.video_path, index.title, index.times, scores, index.origin))
        extra: list[SearchResult] = []
        if matchers is not None:
            extra += text_candidates(index, matchers[i], text, calibration.text_confidence)
        if candidates is not None:
            extra += candidates[i]
        results += video_moments(
            index,
            scores,
            conf,
            calibration,
            limit=top_k,
            min_gap=min_gap,
            segment_keep=segment_keep,
            candidates=extra,
        )
    results.sort(key=lambda r: (-r.confidence, -r.score))
    return (results if top_k is None else results[:top_k]), timelines


def rank_library(
    matrix: LibraryMatrix,
    query: np.ndarray,
    top_k: int,
    min_gap: float,
    segment_keep: float,
    *,
    calibration: Calibration | None = None,
    text: str | None = None,
    matchers: Sequence[Matchers] | None = None,
) -> list[SearchResult]:
    """Candidate frames from the library matrix (exact or ANN) name the videos worth a look; each of those
    gets its moments from its exact scores, fused with the text tracks of the library's videos
    (``matchers[i]`` for ``matrix.videos[i]``); the ``top_k`` most confident overall.

    When the candidates name videos with fewer than ``top_k`` moments in all (one long video holding every
    good frame), the candidate pool grows until it covers the whole library.
    """
    calibration = calibration or Calibration.uncalibrated()
    total = len(matrix.embeddings)
    pool = max(top_k * 20, 100)
    while True:
        _, rows = matrix.search(query, pool)
        results = _library_hits(matrix, rows, query, top_k, min_gap, segment_keep, calibration)
        if len(results) >= top_k or pool >= total:
            break
        pool *= 4
    if matchers is None or text is None:
        return results[:top_k]
    candidates = list(results)
    for video, tracks in zip(matrix.videos, matchers, strict=True):
        candidates += with_confidence(
            text_candidates(video, tracks, text, calibration.text_confidence), calibration
        )
    return merge_moments(candidates, top_k, min_gap)


def _library_hits(
    matrix: LibraryMatrix,
    rows: np.ndarray,
    query: np.ndarray,
    top_k: int,
    min_gap: float,
    segment_keep: float,
    calibration: Calibration,
) -> list[SearchResult]:
    """The moments of the videos the candidate rows fall in (their exact scores), most confident first."""
    vids = list(dict.fromkeys(int(v) for v in matrix.video_ids[np.asarray(rows, dtype=np.int64)]))
    videos = [matrix.videos[v] for v in vids]
    all_scores = [v.embeddings @ query for v in videos]
    results: list[SearchResult] = []
    for index, scores, conf in zip(
        videos, all_scores, confidences(calibration, query, all_scores), strict=True
    ):
        results += visual_moments(index, scores, conf, top_k, min_gap, segment_keep)
    results.sort(key=lambda r: (-r.confidence, -r.score))
    return results[:top_k]
