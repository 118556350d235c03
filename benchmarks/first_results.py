"""Benchmark 8: time to first results on a long video that is not indexed yet.

A 30-minute 720p clip (``common.make_clip``, real footage) is searched in a fresh FRAMESEEK_HOME with
``Searcher.search(..., on_partial=...)``: the time until the key-frame preview's ranked moments arrive is
compared with the time the full index (1 frame/s) takes. Rounds are interleaved with nothing else; the
model is loaded once before timing.

    python benchmarks/first_results.py            # markdown
    python benchmarks/first_results.py --json
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import common
from frameseek.results import SearchResponse
from frameseek.search import Searcher

NAME = "first_results"
QUERY = "a cyclist wearing a helmet"


def once(searcher: Searcher, clip: str) -> dict[str, float]:
    with common.scratch_home("first-results"):
        started = time.perf_counter()
        first: list[float] = []
        count: list[int] = []

        def on_partial(response: SearchResponse) -> None:
            first.append(time.perf_counter() - started)
            count.append(len(response.timelines[0].times) if response.timelines else 0)

        final = searcher.search(clip, QUERY, on_partial=on_partial)
        total = time.perf_counter() - started
    return {
        "first_results_s": first[0] if first else float("nan"),
        "preview_frames": float(count[0] if count else 0),
        "full_search_s": total,
        "index_s": float(final.metrics["stages_seconds"].get("index", float("nan"))),
    }


def render(result: dict[str, Any]) -> str:
    rows = [
        [r["round"], r["first_results_s"], r["index_s"], r["full_search_s"], r["preview_frames"]]
        for r in result["rounds"]
    ]
    table = common.markdown_table(
        ["round", "first results s", "full index s", "whole search s", "preview frames"], rows
    )
    share = result["share"]
    return "\n".join(
        [
            table,
            "",
            f"- Video: {result['video_minutes']:.0f} min of 720p ({result['clip']}), lite, fresh cache each round.",
            f"- First ranked moments after **{result['first_results_s']:.2f} s** (median) = **{100 * share:.1f}%** "
            f"of the full search ({result['full_search_s']:.1f} s); target < 10%: "
            f"**{'met' if share < 0.10 else 'NOT met'}**.",
            f"- Command: `{result['command']}`",
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--minutes", type=float, default=None, help="video length (default 30, quick 10)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 2, quick 1)")
    args = parser.parse_args(argv)
    minutes = args.minutes or (10 if args.quick else 30)
    rounds = args.rounds or (1 if args.quick else 2)
    clip = common.make_clip("720p", int(minutes * 60))
    searcher = Searcher(common.build_model("lite"))
    results = []
    for r in range(rounds):
        row = once(searcher, str(clip))
        common.log(
            f"round {r + 1}: first results {row['first_results_s']:.2f} s, full {row['full_search_s']:.1f} s"
        )
        results.append({"round": r + 1, **row})
    first = statistics.median(r["first_results_s"] for r in results)
    full = statistics.median(r["full_search_s"] for r in results)
    result = {
        "benchmark": NAME,
        "command": common.command_line(),
        "clip": clip.name,
        "video_minutes": minutes,
        "rounds": results,
        "first_results_s": first,
        "full_search_s": full,
        "share": first / full,
        "machine": common.machine_info(),
    }
    common.emit(result, args.json, render)
    return result


if __name__ == "__main__":
    main()
