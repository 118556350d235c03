"""One ranked list of moments from the picture and the words, fused on the confidence scale.

Each video gives candidates of several kinds, each with a calibrated ``confidence``
(``frameseek.moments.confidence``: the probability that it matches the query, fitted per model and track):

* **visual**: the moments of its similarity timeline (``temporal.pick_moments``), ``score`` = the best
  frame's cosine, confidence = ``visual_confidence(query, cosine)`` (compared with what the same query
  scores on the model's reference bank).
* **speech** and **screen** (and any registered track): spans of its text tracks whose ``SpanMatcher``
  score (lexical BM25 with OCR tolerance, or semantic; 1.0 for the exact phrase, ~0 for unrelated text)
  reaches ``TEXT_MIN_SCORE``; ``score`` = that score, confidence = ``text_confidence`` of its kind over the
  span's two channels (lexical score, semantic level; ``text_candidates``). A track that sets no confidence
  (0.0) gets it from its fused score alone (``ranking.with_confidence``).

**The rule.** Candidates of one video that are the same moment — their segments overlap by more than half
of the shorter one, one's representative time falls inside the other's segment, or their times are closer
than ``min_gap`` — merge into one moment. Its confidence is the **noisy-OR of one vote per track**:
``1 − Π (1 − p_track)``, where ``p_track`` is the best confidence of that track's candidates in the moment.

Why noisy-OR and not the max: the moment matches when *any* of its tracks shows the query (the words were
said, or written, or the thing is seen), and the tracks are different sensors — Whisper or subtitles, OCR,
the image model — whose errors are close to independent, so P(at least one is right) = 1 − Π(1 − p). A
spoken and a visual match of the same moment are then more certain than either alone (0.7 and 0.6 give
0.88), which the max would ignore. Why one vote per *track*: several frames or spans of one track in one
moment are not independent evidence (neighbouring frames look alike), so within a track the best one
counts, never their product. The cost of the assumption: where two tracks are correlated (a caption that
reads out what is shown) the fused number is a little optimistic; each track still counts once, and a
single track's number is exactly its calibrated one. This replaces the old fixed rule (a text match scored
``0.6 + 0.4·s``, chosen because one model's cosines stayed ≤ 0.55), which broke with another model.

The moment keeps its strongest candidate's time and thumbnail (its best frame, or the start of the best
span), and its segment is the union of the segments of the kinds that matched strongly. ``match`` names
those kinds (a vote of at least ``MERGE_SHARE`` of the strongest one), strongest first (``"speech+visual"``);
a weak visual peak beside a spoken match adds a little to the confidence but not its name. Finally no two
moments of a video overlap by more than half of the shorter one (``OVERLAP_SHARE``): those fold together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from frameseek.results import SearchResult
from frameseek.storage.visual import VideoIndex
from frameseek.text.matching import SpanMatcher, fused_score
from frameseek.text.spans import SpanKind, TextSpan
from frameseek.timecode import format_timecode

TEXT_MIN_SCORE = 0.35
"""A span is a candidate from this score up: below it are chance 3-gram overlaps and weak semantic
neighbours (unrelated captions scored 0–0.05 lexically, unrelated MiniLM cosines ≤ 0.30 map to 0)."""

MERGE_SHARE = 0.5
"""A kind is named in a moment's ``match`` when its vote reaches this share of the strongest vote."""

OVERLAP_SHARE = 0.5
"""Two moments of one video overlapping by more than this share of the shorter one are one moment."""


def _frame_near(index: VideoIndex, time: float) -> int:
    """The sampled frame showing ``time``: the last one at or before it (the first if none is)."""
    i = int(np.searchsorted(index.times, time + 1e-6, side="right")) - 1
    return max(0, min(i, len(index) - 1))


def text_result(index: VideoIndex, span: TextSpan, kind: SpanKind, s: float) -> SearchResult:
    """A candidate for a matched span: its start, its segment, the thumbnail of the frame then on screen;
    ``score`` is the ``SpanMatcher`` score (its confidence is set from the calibration when ranked)."""
    frame = _frame_near(index, span.start)
    end = span.end if index.last_time is None else min(span.end, index.last_time)
    return SearchResult(
        video=index.video_path,
        title=index.title,
        time=round(span.start, 6),
        timecode=format_timecode(span.start),
        score=round(float(s), 6),
        start=round(span.start, 6),
        end=round(max(end, span.start), 6),
        thumbnail=index.thumbnail_if_present(frame) if len(index) else None,
        match=kind,
        text=span.text,
        language=span.language,
    )


TextConfidence = Callable[..., np.ndarray]
"""``Calibration.text_confidence``: (kind, scores, lexical=…, level=…) → confidence per span."""


def text_candidates(
    index: VideoIndex,
    matchers: Sequence[tuple[SpanKind, SpanMatcher]],
    query: str | None,
    confidence: TextConfidence | None = None,
) -> list[SearchResult]:
    """Every span of the video's text tracks that matches ``query`` (none for an image-only query); with
    ``confidence``, each carries its calibrated confidence from the matcher's two channels (without it,
    ``ranking.with_confidence`` sets one later from the fused score alone)."""
    if query is None:
        return []
    found = []
    for kind, matcher in matchers:
        lexical = matcher.lexical_scores(query)
        level = matcher.semantic_levels(query)
        scores = fused_score(lexical, level)
        hits = np.flatnonzero(scores >= TEXT_MIN_SCORE)
        if not len(hits):
            continue
        sure = np.zeros(len(hits))
        if confidence is not None:
            channels = matcher.has_semantics
            sure = confidence(
                kind,
                scores[hits],
                lexical=lexical[hits] if channels else None,
                level=level[hits] if channels else None,
            )
        for i, p in zip(hits, sure, strict=True):
            result = text_result(index, matcher.spans[int(i)], kind, float(scores[i]))
            if confidence is not None:
                result = dataclasses.replace(result, confidence=round(float(p), 6))
            found.append(result)
    return found


def noisy_or(votes: Sequence[float]) -> float:
    """P(at least one is right) for independent votes: 1 − Π(1 − p)."""
    return float(1.0 - np.prod([1.0 - min(max(float(p), 0.0), 1.0) for p in votes]))


def overlap_share(a: SearchResult, b: SearchResult) -> float:
    """How much of the shorter of two segments the other covers (0 for different videos)."""
    if a.video != b.video:
        return 0.0
    return span_share(a.start, a.end, b.start, b.end)


def span_share(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    """``overlap_share`` of two spans of one video (plain numbers: called for every pair of moments)."""
    shared = min(a_end, b_end) - max(a_start, b_start)
    shorter = min(a_end - a_start, b_end - b_start)
    if shorter <= 0:  # a point: covered when it lies inside the other one
        return 1.0 if shared >= 0 and shorter >= 0 else 0.0
    return max(0.0, shared) / shorter


def _kinds(result: SearchResult) -> list[str]:
    return result.match.split("+")


@dataclass
class _Moment:
    """Candidates merged so far: the best one, one vote per track, the strong kinds' extent."""

    best: SearchResult
    votes: dict[str, float]
    start: float
    end: float
    text: str | None
    named: dict[str, float] = field(default_factory=dict)
    language: str | None = None
    """The language of ``text`` (they travel together)."""
    """Kinds a fused candidate brought along (not votes of their own: its confidence already counts them)."""

    @classmethod
    def of(cls, cand: SearchResult) -> _Moment:
        kinds = _kinds(cand)
        return cls(
            cand,
            {kinds[0]: cand.confidence},
            cand.start,
            cand.end,
            cand.text,
            {k: cand.confidence for k in kinds[1:]},
            cand.language,
        )

    @property
    def confidence(self) -> float:
        return noisy_or(list(self.votes.values()))

    def strong(self, confidence: float) -> bool:
        return confidence >= MERGE_SHARE * max(self.votes.values())

    def add(self, cand: SearchResult) -> None:
        kinds = _kinds(cand)
        strong = self.strong(cand.confidence)
        self.votes[kinds[0]] = max(self.votes.get(kinds[0], 0.0), cand.confidence)
        for k in kinds[1:]:
            self.named[k] = max(self.named.get(k, 0.0), cand.confidence)
        if strong:
            self.start, self.end = min(self.start, cand.start), max(self.end, cand.end)
            if not self.text:
                self.text, self.language = cand.text, cand.language

    def absorb(self, other: _Moment) -> None:
        for kind, p in other.votes.items():
            self.votes[kind] = max(self.votes.get(kind, 0.0), p)
        for kind, p in other.named.items():
            self.named[kind] = max(self.named.get(kind, 0.0), p)
        self.start, self.end = min(self.start, other.start), max(self.end, other.end)
        if not self.text:
            self.text, self.language = other.text, other.language
        if (other.best.confidence, other.best.score) > (self.best.confidence, self.best.score):
            self.best = other.best

    def result(self) -> SearchResult:
        strength = dict(self.named)
        strength.update({k: max(p, strength.get(k, 0.0)) for k, p in self.votes.items()})
        top = max(strength.values())
        first = _kinds(self.best)[0]  # the representative's kind leads on a tie
        kinds = sorted(
            (k for k, p in strength.items() if p >= MERGE_SHARE * top),
            key=lambda k: (-strength[k], k != first),
        )
        start, end = min(self.start, self.best.time), max(self.end, self.best.time)
        return dataclasses.replace(
            self.best,
            match="+".join(kinds),
            start=round(start, 6),
            end=round(end, 6),
            text=self.text,
            language=self.language if self.text else None,
            confidence=round(self.confidence, 6),
        )


def merge_moments(
    candidates: Sequence[SearchResult], top_k: int | None, min_gap: float
) -> list[SearchResult]:
    """The candidates as moments, most confident first (then by score): candidates of the same moment
    merge (see the module's rule), and no two moments of a video overlap by more than half.

    Each candidate is compared with the moments of its own video at once (arrays of their spans), so
    listing every moment of an hour of video stays fast."""
    moments: list[_Moment] = []
    tables: dict[str, _Spans] = {}
    for cand in sorted(candidates, key=lambda r: (-r.confidence, -r.score)):
        table = tables.setdefault(cand.video, _Spans())
        k = table.touching(cand, min_gap)
        if k is None:
            table.add(_Moment.of(cand))
            moments.append(table.moments[-1])
        else:
            table.moments[k].add(cand)
            table.update(k)
    settled = _settle(moments)
    results = sorted((m.result() for m in settled), key=lambda r: (-r.confidence, -r.score))
    return results if top_k is None else results[:top_k]


class _Spans:
    """One video's moments in the order they were made, with their spans as arrays (``touching``
    for all of them at once)."""

    def __init__(self) -> None:
        self.moments: list[_Moment] = []
        self.start = np.zeros(16)
        self.end = np.zeros(16)
        self.time = np.zeros(16)

    def add(self, moment: _Moment) -> None:
        n = len(self.moments)
        if n == len(self.start):
            self.start, self.end, self.time = (np.resize(a, 2 * n) for a in (self.start, self.end, self.time))
        self.moments.append(moment)
        self.update(n)

    def update(self, k: int) -> None:
        m = self.moments[k]
        self.start[k], self.end[k], self.time[k] = m.start, m.end, m.best.time

    def touching(self, cand: SearchResult, min_gap: float) -> int | None:
        """The first moment ``cand`` belongs to, else None: their best times are closer than ``min_gap``,
        or their spans meet and one's time lies inside the other's span or they overlap by more than
        ``OVERLAP_SHARE``."""
        n = len(self.moments)
        if not n:
            return None
        start, end, time = self.start[:n], self.end[:n], self.time[:n]
        near = np.abs(cand.time - time) < min_gap
        together = ~((cand.end < start) | (end < cand.start))
        maybe = np.flatnonzero(near | together)  # usually a handful: the rest is apart and far
        if not len(maybe):
            return None
        s, e, m = start[maybe], end[maybe], time[maybe]
        inside = ((s <= cand.time) & (cand.time < e)) | ((cand.start <= m) & (m < cand.end))
        hit = near[maybe] | (
            together[maybe] & (inside | (_shares(s, e, cand.start, cand.end) > OVERLAP_SHARE))
        )
        found = maybe[hit]
        return int(found[0]) if len(found) else None


def _shares(start: np.ndarray, end: np.ndarray, b_start: float, b_end: float) -> np.ndarray:
    """``span_share`` of many spans with one."""
    shared = np.minimum(end, b_end) - np.maximum(start, b_start)
    shorter = np.minimum(end - start, b_end - b_start)
    point = np.where((shared >= 0) & (shorter >= 0), 1.0, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(shorter <= 0, point, np.maximum(0.0, shared) / np.where(shorter > 0, shorter, 1.0))


def _settle(moments: list[_Moment]) -> list[_Moment]:
    """Fold moments whose (grown) segments overlap by more than ``OVERLAP_SHARE`` until none do (each
    moment is compared with all later ones of its video at once)."""
    kept = list(moments)
    videos = {v: i for i, v in enumerate(dict.fromkeys(m.best.video for m in kept))}
    video = np.array([videos[m.best.video] for m in kept], dtype=np.int64)
    start = np.array([m.start for m in kept], dtype=np.float64)
    end = np.array([m.end for m in kept], dtype=np.float64)
    alive = np.ones(len(kept), dtype=bool)
    order = np.lexsort((start, video))
    s, e, v = start[order], end[order], video[order]
    if not _any_touch(s, e, v):
        return kept  # no two spans of a video even touch: nothing can fold (the usual case)
    i = 0
    while i < len(kept):
        if alive[i]:
            later = alive.copy()
            later[: i + 1] = False
            later &= (video == video[i]) & (end[i] >= start) & (end >= start[i])
            if later.any():
                shares = _shares(start[later], end[later], float(start[i]), float(end[i]))
                over = np.flatnonzero(later)[shares > OVERLAP_SHARE]
                if len(over):
                    j = int(over[0])
                    kept[i].absorb(kept[j])
                    alive[j] = False
                    start[i], end[i] = kept[i].start, kept[i].end
                    i = 0  # a grown moment may now reach an earlier one: look again from the start
                    continue
        i += 1
    return [m for m, keep in zip(kept, alive, strict=True) if keep]


def _any_touch(start: np.ndarray, end: np.ndarray, video: np.ndarray) -> bool:
    """Whether two spans of one video touch or overlap (spans sorted by video, then start)."""
    s, e, v = start.tolist(), end.tolist(), video.tolist()
    reach = -np.inf
    for k in range(1, len(s)):
        if v[k] != v[k - 1]:
            reach = -np.inf
            continue
        reach = max(reach, e[k - 1])
        if s[k] <= reach:
            return True
    return False
