"""Order, duration, count and overlap: moments composed from the moments of each step, in one video.

Every function here is pure: it takes, per step, *all* the moments of one video that one sentence
found (``SearchResult`` with ``start``, ``end``, ``time``, ``confidence``), and composes them:

* **sequence** (``A, then B within N s``): a moment of B follows a moment of A when B's best frame comes
  after A's (``B.time > A.time``), B does not begin before A does (``B.start >= A.start``: the two may
  overlap, "walks in, then sits down" often do), and B begins at most ``within`` seconds after A ends
  (``B.start <= A.end + within``; no limit without ``within``). A chain A→B→C applies the rule to each
  consecutive pair. The result spans from A's start to the last step's end; its representative frame
  (``time``, ``thumbnail``) is A's; its **confidence is the minimum of its steps'** (a chain holds as well
  as its weakest step: the product would make a chain of three sure steps, 0.7 each, "not found").
  So a video where only A→B happens does not match B→A: B's moments precede A's there.
* **duration** (``A lasting at least N s``): results whose segment lasts at least N s.
* **together** (``A while B``): where a moment of A and a moment of B overlap in time; the result is the
  overlap, its confidence the minimum of the two, its frame A's best one when that lies in the overlap.
* **count / first / last**: the distinct results that match (confidence ≥ ``FOUND_AT``), in time order;
  the earliest / the latest of them.

Results are distinct moments: of two whose segments overlap by more than half of the shorter one, only the
more confident is kept. The work is vectorised over numpy arrays (a step's moments at once), so thousands
of candidate moments per step compose in milliseconds (``benchmarks/moment_queries.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from frameseek.moments.confidence import FOUND_AT
from frameseek.query import MomentQuery
from frameseek.results import SearchResult
from frameseek.timecode import format_timecode

PAIR_CELLS = 4_000_000
"""Pairs compared at once (a block of rows × all next moments): bounds memory to tens of MB."""

DURATION_SLACK = 1e-6
"""Seconds of rounding forgiven when a result's length is compared with ``min_duration``."""


@dataclass(frozen=True)
class Moments:
    """One step's moments as columns (sorted by start), beside the moments themselves."""

    items: tuple[SearchResult, ...]
    start: NDArray[np.float64]
    end: NDArray[np.float64]
    time: NDArray[np.float64]
    confidence: NDArray[np.float64]
    score: NDArray[np.float64]

    @classmethod
    def of(cls, moments: Sequence[SearchResult]) -> Moments:
        items = tuple(sorted(moments, key=lambda m: (m.start, m.time)))

        def column(name: str) -> NDArray[np.float64]:
            return np.fromiter((getattr(m, name) for m in items), dtype=np.float64, count=len(items))

        return cls(
            items, column("start"), column("end"), column("time"), column("confidence"), column("score")
        )

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class MomentAnswer:
    """What a moment query found in one video (or several): the results and how many match.

    ``results``: for ``count``, every matching moment in time order; for ``first`` / ``last``, that one
    moment; otherwise the best moments, most confident first. When nothing matches, the closest moments
    (shown as weak). ``count``: the distinct moments whose confidence reaches ``FOUND_AT``.
    """

    results: list[SearchResult]
    count: int

    @property
    def found(self) -> bool:
        return self.count > 0


# ---- the compositions ---------------------------------------------------------------------------
def sequences(
    steps: Sequence[Sequence[SearchResult]],
    within: float | None = None,
    *,
    min_duration: float | None = None,
    enough: int | None = None,
) -> list[SearchResult]:
    """The distinct chains A→B→… (one list of moments per step, one video), most confident first
    (``min_duration``, ``enough``: see ``distinct_rows``)."""
    if not steps:
        return []
    columns = [Moments.of(s) for s in steps]
    if any(len(c) == 0 for c in columns):
        return []
    limit = np.inf if within is None else float(within)
    # best[j]: the best chain confidence starting at moment j of this step; nxt[j]: its next moment
    best = columns[-1].confidence.copy()
    pointers: list[NDArray[np.int64]] = []
    for here, there in zip(columns[-2::-1], columns[:0:-1], strict=True):
        best, nxt = _best_next(here, there, best, limit)
        pointers.append(nxt)
    pointers.reverse()  # pointers[i]: step i → step i + 1
    first = columns[0]
    ok = np.flatnonzero(best >= 0)
    if not len(ok):
        return []
    chains = np.empty((len(ok), len(columns)), dtype=np.int64)
    chains[:, 0] = ok
    for i, nxt in enumerate(pointers):
        chains[:, i + 1] = nxt[chains[:, i]]
    starts = first.start[ok]
    ends = np.maximum.reduce([c.end[chains[:, i]] for i, c in enumerate(columns)])
    keep = distinct_rows(starts, ends, best[ok], min_duration=min_duration, enough=enough)
    return [
        _chain_result([c.items[chains[row, i]] for i, c in enumerate(columns)], best[ok][row]) for row in keep
    ]


def _best_next(
    here: Moments, there: Moments, best_there: NDArray[np.float64], limit: float
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """For each moment of ``here``: the best chain through a following moment of ``there`` (-1: none)."""
    n, m = len(here), len(there)
    best = np.full(n, -1.0)
    nxt = np.full(n, -1, dtype=np.int64)
    rows = max(1, PAIR_CELLS // max(m, 1))
    for lo in range(0, n, rows):
        hi = min(n, lo + rows)
        follows = (
            (there.time[None, :] > here.time[lo:hi, None])
            & (there.start[None, :] >= here.start[lo:hi, None])
            & (there.start[None, :] <= here.end[lo:hi, None] + limit)
        )
        # a chain is as good as its weakest step: among the next moments that keep it as good, the
        # earliest (sorted by start), so that each A chains to the B nearest after it
        chain = np.minimum(here.confidence[lo:hi, None], best_there[None, :])
        value = np.where(follows, chain, -1.0)
        pick = np.argmax(value, axis=1)
        top = value[np.arange(hi - lo), pick]
        chained = top >= 0
        best[lo:hi] = np.where(chained, top, -1.0)
        nxt[lo:hi] = np.where(chained, pick, -1)
    return best, nxt


def _chain_result(chain: Sequence[SearchResult], confidence: float) -> SearchResult:
    """A chain as one moment: A's frame, the span to the last step's end, the weakest step's numbers."""
    head = chain[0]
    kinds = list(dict.fromkeys(k for m in chain for k in m.match.split("+")))
    words = [m.text for m in chain if m.text]
    return dataclasses.replace(
        head,
        start=head.start,
        end=max(m.end for m in chain),
        score=min(m.score for m in chain),
        confidence=round(float(confidence), 6),
        match="+".join(kinds),
        text=" / ".join(words) if words else None,
    )


def together(
    moments: Sequence[SearchResult],
    during: Sequence[SearchResult],
    *,
    min_duration: float | None = None,
    enough: int | None = None,
) -> list[SearchResult]:
    """Where a moment of ``moments`` and one of ``during`` overlap (one video): the overlaps, distinct,
    most confident first (``min_duration``, ``enough``: see ``distinct_rows``)."""
    a, b = Moments.of(moments), Moments.of(during)
    if not len(a) or not len(b):
        return []
    found: list[tuple[int, int]] = []
    starts, ends, confidences = [], [], []
    rows = max(1, PAIR_CELLS // len(b))
    for lo in range(0, len(a), rows):
        hi = min(len(a), lo + rows)
        s = np.maximum(a.start[lo:hi, None], b.start[None, :])
        e = np.minimum(a.end[lo:hi, None], b.end[None, :])
        i, j = np.nonzero(e >= s)
        found += zip((i + lo).tolist(), j.tolist(), strict=True)
        starts.append(s[i, j])
        ends.append(e[i, j])
        confidences.append(np.minimum(a.confidence[i + lo], b.confidence[j]))
    if not found:
        return []
    start, end, confidence = np.concatenate(starts), np.concatenate(ends), np.concatenate(confidences)
    keep = distinct_rows(start, end, confidence, min_duration=min_duration, enough=enough)
    return [
        _overlap_result(a.items[found[k][0]], b.items[found[k][1]], float(start[k]), float(end[k]))
        for k in keep
    ]


def _overlap_result(x: SearchResult, y: SearchResult, start: float, end: float) -> SearchResult:
    """The overlap of ``x`` and ``y`` as one moment (``x``'s frame when it lies inside, else the start)."""
    inside = start <= x.time <= end
    time = x.time if inside else start
    kinds = list(dict.fromkeys(k for m in (x, y) for k in m.match.split("+")))
    words = [m.text for m in (x, y) if m.text]
    return dataclasses.replace(
        x,
        time=round(time, 6),
        timecode=format_timecode(time),
        start=round(start, 6),
        end=round(end, 6),
        thumbnail=x.thumbnail if inside else (y.thumbnail if start <= y.time <= end else x.thumbnail),
        score=min(x.score, y.score),
        confidence=min(x.confidence, y.confidence),
        match="+".join(kinds),
        text=" / ".join(words) if words else None,
    )


def lasting(moments: Sequence[SearchResult], min_duration: float) -> list[SearchResult]:
    """The moments whose segment lasts at least ``min_duration`` seconds."""
    return [m for m in moments if m.end - m.start >= min_duration - DURATION_SLACK]


def distinct(
    moments: Sequence[SearchResult], *, min_duration: float | None = None, enough: int | None = None
) -> list[SearchResult]:
    """The moments, most confident first, without any that overlaps a more confident one by more than
    half of the shorter of the two (``min_duration``, ``enough``: see ``distinct_rows``)."""
    m = Moments.of(moments)
    rows = distinct_rows(m.start, m.end, m.confidence, m.score, min_duration=min_duration, enough=enough)
    return [m.items[k] for k in rows]


def distinct_rows(
    start: NDArray[np.float64],
    end: NDArray[np.float64],
    confidence: NDArray[np.float64],
    score: NDArray[np.float64] | None = None,
    *,
    min_duration: float | None = None,
    enough: int | None = None,
) -> list[int]:
    """Greedy suppression over spans: row indices kept, most confident first (ties: higher ``score``).

    ``min_duration``: only spans at least this long take part. ``enough``: stop once that many are kept
    and the rest cannot match (below ``FOUND_AT``): every match is still kept, and counted.
    """
    order = np.lexsort((-score, -confidence)) if score is not None else np.argsort(-confidence, kind="stable")
    if min_duration is not None:
        order = order[(end[order] - start[order]) >= min_duration - DURATION_SLACK]
    kept: list[int] = []
    kept_start = np.empty(len(order))
    kept_end = np.empty(len(order))
    for k in order.tolist():
        n = len(kept)
        if enough is not None and n >= enough and confidence[k] < FOUND_AT:
            break
        if n:
            inter = np.minimum(kept_end[:n], end[k]) - np.maximum(kept_start[:n], start[k])
            shorter = np.minimum(kept_end[:n] - kept_start[:n], end[k] - start[k])
            if np.any((inter >= 0) & (inter >= 0.5 * shorter)):
                continue
        kept_start[n], kept_end[n] = start[k], end[k]
        kept.append(k)
    return kept


def matching(moments: Sequence[SearchResult]) -> list[SearchResult]:
    """The moments that match (confidence ≥ ``FOUND_AT``), in time order."""
    return sorted((m for m in moments if m.confidence >= FOUND_AT), key=lambda m: (m.start, m.time))


# ---- a whole query ------------------------------------------------------------------------------
def compose(
    query: MomentQuery,
    steps: Sequence[Sequence[SearchResult]],
    during: Sequence[SearchResult] | None = None,
    top_k: int = 5,
) -> MomentAnswer:
    """Answer ``query`` in one video from its moments: ``steps[i]`` are all the moments of
    ``query.steps[i]``, ``during`` those of ``query.while_``."""
    if len(steps) != len(query.steps):
        raise ValueError(f"{len(query.steps)} steps asked, moments for {len(steps)} given")
    if query.while_ is not None and during is None:
        raise ValueError("a --while query needs the moments of its --while sentence")
    least = query.min_duration
    if len(steps) > 1:
        moments = sequences(steps, query.within, min_duration=least, enough=top_k)
    elif query.while_ is not None and during is not None:
        moments = together(steps[0], during, min_duration=least, enough=top_k)
    else:
        moments = distinct(steps[0], min_duration=least, enough=top_k)
    return pick(query, moments, top_k)


def pick(query: MomentQuery, moments: Sequence[SearchResult], top_k: int) -> MomentAnswer:
    """From distinct moments (any order): what the query shows — every match (``count``), the earliest or
    latest (``first`` / ``last``), else the ``top_k`` best; the closest ones when none matches."""
    ranked = sorted(moments, key=lambda m: (-m.confidence, -m.score))
    hits = matching(ranked)
    if query.count:
        return MomentAnswer(hits if hits else ranked[:top_k], len(hits))
    if query.first or query.last:
        chosen = (hits[0] if query.first else hits[-1]) if hits else None
        return MomentAnswer([chosen] if chosen else ranked[:1], len(hits))
    return MomentAnswer(ranked[:top_k], len(hits))


def combine(query: MomentQuery, answers: Sequence[MomentAnswer], top_k: int = 5) -> MomentAnswer:
    """Several videos' answers as one: counts add up; ``count`` lists every video's matches (video by
    video), ``first`` / ``last`` one moment per video, otherwise the ``top_k`` best overall."""
    count = sum(a.count for a in answers)
    if query.count or query.first or query.last:
        if count:
            return MomentAnswer([r for a in answers if a.count for r in a.results], count)
        weak = sorted((r for a in answers for r in a.results), key=lambda m: (-m.confidence, -m.score))
        return MomentAnswer(weak[: top_k if query.count else 1], 0)
    ranked = sorted((r for a in answers for r in a.results), key=lambda m: (-m.confidence, -m.score))
    return MomentAnswer(ranked[:top_k], count)


def answer_videos(
    query: MomentQuery,
    moments: Mapping[str, Sequence[SearchResult]],
    videos: Sequence[str],
    top_k: int = 5,
) -> MomentAnswer:
    """Answer ``query`` over several videos: ``moments[text]`` holds every moment (of every video) that
    each of ``query.texts`` found; each video of ``videos`` is composed on its own, then ``combine``d."""
    by_video: dict[str, dict[str, list[SearchResult]]] = {}
    for text in query.texts:
        grouped: dict[str, list[SearchResult]] = {video: [] for video in videos}
        for m in moments.get(text, ()):
            grouped.setdefault(m.video, []).append(m)
        by_video[text] = grouped
    answers = []
    for video in videos:
        steps = [by_video[text][video] for text in query.steps]
        during = by_video[query.while_][video] if query.while_ is not None else None
        answers.append(compose(query, steps, during, top_k))
    return combine(query, answers, top_k)
