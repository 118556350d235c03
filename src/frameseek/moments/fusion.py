"""One ranked list of moments from the picture and the words: the fusion rule, measured and documented.

Each video gives candidates of three kinds:

* **visual**: the peaks of its similarity timeline (query embedding · frame embeddings), after temporal
  NMS, scored by that cosine. With the shipped models the best visual matches measure 0.2–0.55
  (lite on ``bikes.mp4``: 0.27 for "a cyclist wearing a helmet", 0.51 for "cars in a traffic jam").
* **speech** and **screen**: spans of its text tracks whose ``SpanMatcher`` score (lexical BM25 with OCR
  tolerance, or semantic; 1.0 for the exact phrase, ~0 for unrelated text) reaches ``TEXT_MIN_SCORE``,
  scored ``TEXT_BASE + (1 - TEXT_BASE) · s``.

So a moment where the words match ranks above one where only the picture resembles the sentence — a
sentence that was said or written is the stronger evidence — and words that match better rank higher.
Candidates closer than ``min_gap`` (or a frame inside a matched span) merge into one moment that names
every kind that matched strongly (at least ``MERGE_SHARE`` of its score), strongest first
(``"speech+screen"``); its segment is the sentence's (speech) or the text's time on screen (screen), else
the visual segment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from frameseek.results import SearchResult
from frameseek.storage.visual import VideoIndex
from frameseek.text.matching import SpanMatcher
from frameseek.text.spans import SpanKind, TextSpan
from frameseek.timecode import format_timecode

TEXT_MIN_SCORE = 0.35
"""A span matches from this score up: below it are chance 3-gram overlaps and weak semantic neighbours
(unrelated captions scored 0–0.05 lexically, unrelated MiniLM cosines ≤ 0.30 map to 0)."""

TEXT_BASE = 0.6
"""A text match's moment score starts here: above the best visual cosines measured (≤ 0.55)."""


def text_score(s: float) -> float:
    """The moment score of a span matched with SpanMatcher score ``s``."""
    return TEXT_BASE + (1.0 - TEXT_BASE) * float(s)


def _frame_near(index: VideoIndex, time: float) -> int:
    """The sampled frame showing ``time``: the last one at or before it (the first if none is)."""
    i = int(np.searchsorted(index.times, time + 1e-6, side="right")) - 1
    return max(0, min(i, len(index) - 1))


def text_result(index: VideoIndex, span: TextSpan, kind: SpanKind, s: float) -> SearchResult:
    """A moment for a matched span: its start, its segment, the thumbnail of the frame then on screen."""
    frame = _frame_near(index, span.start)
    thumb = index.thumbnail(frame) if len(index) else None
    end = span.end if index.last_time is None else min(span.end, index.last_time)
    return SearchResult(
        video=index.video_path,
        title=index.title,
        time=round(span.start, 6),
        timecode=format_timecode(span.start),
        score=round(text_score(s), 6),
        start=round(span.start, 6),
        end=round(max(end, span.start), 6),
        thumbnail=str(thumb) if thumb is not None and thumb.is_file() else None,
        match=kind,
        text=span.text,
    )


def text_candidates(
    index: VideoIndex, matchers: Sequence[tuple[SpanKind, SpanMatcher]], query: str | None
) -> list[SearchResult]:
    """Every span of the video's text tracks that matches ``query`` (none for an image-only query)."""
    if query is None:
        return []
    found = []
    for kind, matcher in matchers:
        scores = matcher.scores(query)
        for i in np.flatnonzero(scores >= TEXT_MIN_SCORE):
            found.append(text_result(index, matcher.spans[int(i)], kind, float(scores[i])))
    return found


def _overlaps(a: SearchResult, b: SearchResult, min_gap: float) -> bool:
    if a.video != b.video:
        return False
    if abs(a.time - b.time) < min_gap:
        return True
    inside = (a.match != "visual" and a.start <= b.time < a.end) or (
        b.match != "visual" and b.start <= a.time < b.end
    )
    return inside


MERGE_SHARE = 0.5
"""A weaker candidate merged into a moment names its kind there only if it scores at least this share of the
moment's score: a weak visual peak beside a spoken match does not make it "speech+visual"."""


def merge_moments(candidates: Sequence[SearchResult], top_k: int, min_gap: float) -> list[SearchResult]:
    """Best first; a candidate overlapping a kept moment is merged into it (adding its kind and words when
    it is strong enough, see ``MERGE_SHARE``) instead of being a moment of its own."""
    kept: list[SearchResult] = []
    for cand in sorted(candidates, key=lambda r: -r.score):
        for k, moment in enumerate(kept):
            if _overlaps(moment, cand, min_gap):
                kinds = moment.match.split("+")
                strong = cand.score >= MERGE_SHARE * moment.score
                if strong and cand.match.split("+")[0] not in kinds:
                    kinds.append(cand.match.split("+")[0])
                kept[k] = dataclasses.replace(moment, match="+".join(kinds), text=moment.text or cand.text)
                break
        else:
            kept.append(cand)
    return kept[:top_k]
