"""Scores → ranked moments: per-video and library ranking, temporal NMS, and each hit's segment."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from frameseek.errors import InputError
from frameseek.moments.fusion import merge_moments, text_candidates
from frameseek.moments.temporal import segment_bounds, segment_times, temporal_nms
from frameseek.results import SearchResult, Timeline
from frameseek.storage.library import LibraryMatrix
from frameseek.storage.visual import VideoIndex
from frameseek.text.matching import SpanMatcher
from frameseek.text.spans import SpanKind
from frameseek.timecode import format_timecode


def check_ranking(top_k: int, min_gap: float) -> None:
    """Reject ranking options that cannot work."""
    if top_k < 1:
        raise InputError(f"--top-k must be at least 1, got {top_k}")
    if min_gap < 0:
        raise InputError(f"--min-gap must be >= 0, got {min_gap}")


def make_result(index: VideoIndex, scores: np.ndarray, peak: int, segment_keep: float) -> SearchResult:
    """A result for frame ``peak`` of ``index`` with its segment."""
    first, last = segment_bounds(scores, peak, segment_keep)
    start, end = segment_times(index.times, first, last, index.last_time, index.step)
    thumb = index.thumbnail(peak)
    t = float(index.times[peak])
    return SearchResult(
        video=index.video_path,
        title=index.title,
        time=round(t, 6),
        timecode=format_timecode(t),
        score=round(float(scores[peak]), 6),
        start=round(start, 6),
        end=round(end, 6),
        thumbnail=str(thumb) if thumb.is_file() else None,
    )


Matchers = Sequence[tuple[SpanKind, SpanMatcher]]
"""A video's text tracks, each ready to score queries."""


def rank_videos(
    indexes: Sequence[VideoIndex],
    query: np.ndarray,
    top_k: int,
    min_gap: float,
    segment_keep: float,
    *,
    text: str | None = None,
    matchers: Sequence[Matchers] | None = None,
    candidates: Sequence[Sequence[SearchResult]] | None = None,
) -> tuple[list[SearchResult], list[Timeline]]:
    """Exact scores for every frame of every video; NMS within each video; fused with the videos' text
    tracks (``matchers[i]`` for ``indexes[i]``, see ``frameseek.moments.fusion``) and with the timed
    candidates other tracks scored (``candidates[i]`` for ``indexes[i]``, ``indexing.tracks``); best
    ``top_k`` overall."""
    results: list[SearchResult] = []
    timelines: list[Timeline] = []
    for i, index in enumerate(indexes):
        if not len(index):
            continue
        scores = index.embeddings @ query
        timelines.append(Timeline(index.video_path, index.title, index.times, scores, index.origin))
        found = [
            make_result(index, scores, p, segment_keep)
            for p in temporal_nms(index.times, scores, top_k, min_gap)
        ]
        if matchers is not None:
            found += text_candidates(index, matchers[i], text)
        if candidates is not None:
            found += candidates[i]
        results += merge_moments(found, top_k, min_gap)
    results.sort(key=lambda r: -r.score)
    return results[:top_k], timelines


def rank_library(
    matrix: LibraryMatrix,
    query: np.ndarray,
    top_k: int,
    min_gap: float,
    segment_keep: float,
    *,
    text: str | None = None,
    matchers: Sequence[Matchers] | None = None,
) -> list[SearchResult]:
    """Candidates from the library matrix (exact or ANN), then per-video NMS and segments, fused with the
    text tracks of the library's videos (``matchers[i]`` for ``matrix.videos[i]``).

    When NMS leaves fewer than ``top_k`` hits among the candidates (one long video holding every good
    frame), the candidate pool grows until it covers the whole library.
    """
    total = len(matrix.embeddings)
    pool = max(top_k * 20, 100)
    while True:
        _, rows = matrix.search(query, pool)
        results = _library_hits(matrix, rows, query, top_k, min_gap, segment_keep)
        if len(results) >= top_k or pool >= total:
            break
        pool *= 4
    if matchers is None or text is None:
        return results
    candidates = list(results)
    for video, tracks in zip(matrix.videos, matchers, strict=True):
        candidates += text_candidates(video, tracks, text)
    return merge_moments(candidates, top_k, min_gap)


def _library_hits(
    matrix: LibraryMatrix,
    rows: np.ndarray,
    query: np.ndarray,
    top_k: int,
    min_gap: float,
    segment_keep: float,
) -> list[SearchResult]:
    """Greedy per-video NMS over candidate rows (best first)."""
    results: list[SearchResult] = []
    taken: dict[int, list[float]] = {}
    video_scores: dict[int, np.ndarray] = {}
    for row in rows:
        vid = int(matrix.video_ids[row])
        t = float(matrix.times[row])
        if any(abs(t - other) < min_gap for other in taken.get(vid, [])):
            continue
        taken.setdefault(vid, []).append(t)
        index = matrix.videos[vid]
        if vid not in video_scores:
            video_scores[vid] = index.embeddings @ query
        local = int(row) - int(np.searchsorted(matrix.video_ids, vid))  # rows of a video are contiguous
        results.append(make_result(index, video_scores[vid], local, segment_keep))
        if len(results) == top_k:
            break
    return results
