"""Benchmark: order, duration, count and overlap queries on a 1-hour index, after the steps are embedded.

Target (issue 22): a sequence or count query on a 1-hour index (3,600 frames at 1 fps) answers in
< 200 ms once its sentences are embedded.

**Synthetic, realistic timelines.** Each step sentence gets a similarity timeline over 3,600 frames: a
smoothed random walk (neighbouring frames look alike) plus planted scenes where the step is on screen
(5–40 s, as the scenes of real footage). Its moments are what ranking hands the composition: every local
peak of the timeline, its segment where the score stays within 0.03 of the peak, its confidence a
logistic of the score — about 1,000 moments per step ("many": every frame its own 1-s moment, 3,600 per
step, the worst case). Timed: ``moments.sequence.compose`` for each query kind, per video, repeated.

**End to end** (``--video``, once the search is wired): ``Searcher.search(video, MomentQuery)`` on a real
indexed video, the step embeddings warm (a repeat query), median of repeats — everything from the query
value to the answer: scoring every frame per step, moments with confidence, the composition.

    python benchmarks/moment_queries.py [--json] [--quick] [--video PATH --model lite]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import common
from frameseek.moments.sequence import MomentAnswer, compose
from frameseek.query import MomentQuery
from frameseek.results import SearchResult

NAME = "moment_queries"
FRAMES = 3600
FPS = 1.0
TARGET_MS = 200.0
END_TO_END_COLUMNS = ["query", "p50 ms", "p95 ms", "search stage p50 ms", "after embedding p50 ms"]
END_TO_END_COLUMNS += ["< target", "count", "found"]


def timeline(rng: np.random.Generator, scenes: int) -> np.ndarray:
    """A step's similarity over an hour: a smoothed walk plus ``scenes`` planted scenes where it shows."""
    walk = np.cumsum(rng.normal(0, 0.01, FRAMES))
    walk -= np.convolve(walk, np.ones(301) / 301, mode="same")  # no drift over minutes
    noise = np.convolve(rng.normal(0, 0.02, FRAMES), np.ones(3) / 3, mode="same")
    scores = 0.15 + walk + noise
    for _ in range(scenes):
        start = int(rng.integers(0, FRAMES - 40))
        scores[start : start + int(rng.integers(5, 40))] += rng.uniform(0.08, 0.15)
    return scores


def moments_of(scores: np.ndarray, video: str, every_frame: bool = False) -> list[SearchResult]:
    """Every local peak as a moment (segment: within 0.03 of the peak), or every frame as a 1-s moment."""
    times = np.arange(FRAMES) / FPS
    confidence = 1.0 / (1.0 + np.exp(-(scores - 0.24) / 0.02))
    if every_frame:
        peaks = np.arange(FRAMES)
    else:
        left = np.r_[-np.inf, scores[:-1]]
        right = np.r_[scores[1:], -np.inf]
        peaks = np.flatnonzero((scores >= left) & (scores > right))
    found = []
    for p in peaks.tolist():
        lo = hi = p
        if not every_frame:
            while lo > 0 and scores[lo - 1] >= scores[p] - 0.03:
                lo -= 1
            while hi < FRAMES - 1 and scores[hi + 1] >= scores[p] - 0.03:
                hi += 1
        t = float(times[p])
        found.append(
            SearchResult(
                video=video,
                title=video,
                time=t,
                timecode="",
                score=float(scores[p]),
                start=float(times[lo]),
                end=float(times[hi] + 1.0 / FPS),
                thumbnail=None,
                confidence=float(confidence[p]),
            )
        )
    return found


QUERIES: dict[str, Callable[[], MomentQuery]] = {
    "plain": lambda: MomentQuery.of("a"),
    "count": lambda: MomentQuery.of("a", count=True),
    "first": lambda: MomentQuery.of("a", first=True),
    "min_duration": lambda: MomentQuery.of("a", min_duration=3),
    "then_within": lambda: MomentQuery.of("a", then=["b"], within=10),
    "then_unbounded": lambda: MomentQuery.of("a", then=["b"]),
    "then_then_within": lambda: MomentQuery.of("a", then=["b", "c"], within=30),
    "then_count": lambda: MomentQuery.of("a", then=["b"], within=10, count=True),
    "while": lambda: MomentQuery.of("a", while_="b"),
}


def synthetic(repeats: int, every_frame: bool) -> list[dict[str, Any]]:
    """Median and p95 of ``compose`` per query kind on one hour of synthetic moments."""
    rng = np.random.default_rng(0)
    steps = {s: moments_of(timeline(rng, 12), "hour.mp4", every_frame) for s in ("a", "b", "c")}
    rows = []
    for kind, build in QUERIES.items():
        query = build()
        lists = [steps[s] for s in query.steps]
        during = steps[query.while_] if query.while_ else None
        answer: MomentAnswer = compose(query, lists, during)  # warm
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            answer = compose(query, lists, during)
            times.append((time.perf_counter() - started) * 1000)
        rows.append(
            {
                "query": kind,
                "moments_per_step": len(lists[0]),
                "p50_ms": common.median(times),
                "p95_ms": common.percentile(times, 95),
                "matches": answer.count,
                "meets_target": common.percentile(times, 95) < TARGET_MS,
            }
        )
        common.log(f"{kind}: {rows[-1]['p50_ms']:.1f} ms ({len(lists[0])} moments per step)")
    return rows


def end_to_end(video: Path, model: str, repeats: int) -> list[dict[str, Any]]:
    """``Searcher.search(video, MomentQuery)`` timed on a real index, every query asked once before
    (index built, engines loaded): the whole call, and its search stage (every step embedded, every
    frame scored, moments with confidence, the composition)."""
    from frameseek.api import Searcher

    searcher = Searcher(model)
    asked = {
        "plain": MomentQuery.of("a girl holding a recorder"),
        "count": MomentQuery.of("a girl holding a recorder", count=True),
        "then_within": MomentQuery.of("kids in a classroom", then=["cars in a traffic jam"], within=5),
        "then_count": MomentQuery.of(
            "kids in a classroom", then=["cars in a traffic jam"], within=5, count=True
        ),
        "while": MomentQuery.of("a crowd of people", while_="kids in a classroom"),
    }
    rows = []
    for kind, query in asked.items():
        searcher.search(video, query)  # index once, load the engines once
        times, stage, after = [], [], []
        for _ in range(repeats):
            started = time.perf_counter()
            for text in dict.fromkeys(query.texts):  # what embedding its sentences costs, alone
                searcher.encode_query(text)
            embedded = time.perf_counter()
            response = searcher.search(video, query)
            times.append((time.perf_counter() - embedded) * 1000)
            stage.append(float(response.metrics.get("search_latency_ms") or 0.0))
            after.append(times[-1] - (embedded - started) * 1000)
        rows.append(
            {
                "query": kind,
                "p50_ms": common.median(times),
                "p95_ms": common.percentile(times, 95),
                "search_stage_p50_ms": common.median(stage),
                "after_embedding_p50_ms": common.median(after),
                "results": len(response.results),
                "count": response.count,
                "found": response.found,
            }
        )
        common.log(
            f"end to end {kind}: {rows[-1]['p50_ms']:.1f} ms (search stage {common.median(stage):.1f})"
        )
    return rows


def render(result: dict[str, Any]) -> str:
    parts = [f"## Moment queries on a 1-hour index (target: < {TARGET_MS:g} ms after embedding)\n"]
    for name in ("peaks", "every_frame"):
        rows = result[name]
        parts.append(f"\n{name}: {rows[0]['moments_per_step']} moments per step\n")
        parts.append(
            common.markdown_table(
                ["query", "p50 ms", "p95 ms", "matches", "< target"],
                [[r["query"], r["p50_ms"], r["p95_ms"], r["matches"], r["meets_target"]] for r in rows],
            )
        )
    if result.get("end_to_end"):
        parts.append(f"\nend to end on {result['video']} ({result['model']}):\n")
        parts.append(
            common.markdown_table(
                END_TO_END_COLUMNS,
                [end_to_end_row(r) for r in result["end_to_end"]],
            )
        )
    return "\n".join(parts)


def end_to_end_row(r: dict[str, Any]) -> list[Any]:
    """One end-to-end table row: the whole call, its search stage, what is left after embedding."""
    after = r["after_embedding_p50_ms"]
    head = [r["query"], r["p50_ms"], r["p95_ms"], r["search_stage_p50_ms"], after]
    return [*head, "yes" if after < TARGET_MS else "no", r["count"], r["found"]]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--video", type=Path, default=None, help="a real video, timed end to end")
    parser.add_argument("--model", default="lite")
    args = parser.parse_args(argv)
    repeats = 1 if args.smoke else 5 if args.quick else 30
    result: dict[str, Any] = {
        "benchmark": NAME,
        "command": common.command_line(),
        "frames": FRAMES,
        "target_ms": TARGET_MS,
        "repeats": repeats,
        "peaks": synthetic(repeats, every_frame=False),
        "every_frame": synthetic(repeats, every_frame=True),
    }
    if args.video is not None:
        result["video"] = str(args.video)
        result["model"] = args.model
        result["end_to_end"] = end_to_end(args.video, args.model, repeats)
    result["machine"] = common.machine_info()
    common.emit(result, args.json, render)
    return result


if __name__ == "__main__":
    main()
