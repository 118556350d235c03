"""Benchmark 2: peak memory (RSS) while indexing 1-, 10- and 30-minute videos, frameseek vs baseline.

Each case runs in a fresh subprocess (so one run's memory cannot leak into the next); its peak RSS is
the child's own ``getrusage(RUSAGE_SELF).ru_maxrss``, and the parent samples its RSS every 0.1 s with
psutil for the over-time plot. Videos are 360p (25 fps, H.264, looped from real footage) to keep the run
time bounded: the baseline holds one full-resolution frame per second, so at 720p its growth would be 4×
larger and at 1080p 9×. The model is ``lite`` in both pipelines.

    python benchmarks/memory_vs_length.py [--json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import torch

import common
from baseline_original import index_original
from frameseek.indexing import DEFAULT_BATCH_SIZE
from frameseek.search import Searcher

NAME = "memory_vs_length"


def child(pipeline: str, video: str, model_name: str, baseline_threads: int, batch_size: int) -> None:
    """Run one indexing case in this (fresh) process and print its measurements as JSON."""
    model = common.build_model(model_name)
    loaded_rss = psutil.Process().memory_info().rss
    started = time.perf_counter()
    if pipeline == "baseline":
        with common.torch_threads(baseline_threads):
            run = index_original(Path(video), model)
        frames, held = len(run.times), run.held_bytes
    else:
        with common.scratch_home("memory"):
            (outcome,) = Searcher(model, batch_size=batch_size).index(video)
        if outcome.index is None:
            raise SystemExit(f"indexing {video} failed: {outcome.error}")
        frames, held = len(outcome.index), 0
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "pipeline": pipeline,
                "frames": frames,
                "wall_s": wall,
                "rss_after_model_load_mb": loaded_rss / 2**20,
                "peak_rss_mb": peak_kib / 1024,
                "frames_held_mb": held / 2**20,
            }
        )
    )


def run_case(
    pipeline: str, video: str, model_name: str, baseline_threads: int, batch_size: int = DEFAULT_BATCH_SIZE
) -> dict[str, Any]:
    """Start a child for one case; sample its RSS until it exits; return its JSON plus the samples."""
    cmd = [
        common.PYTHON,
        __file__,
        "--child",
        pipeline,
        "--video",
        video,
        "--model",
        model_name,
        "--baseline-threads",
        str(baseline_threads),
        "--batch-size",
        str(batch_size),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=str(common.BENCH_DIR))
    ps = psutil.Process(proc.pid)
    samples: list[tuple[float, float]] = []
    started = time.perf_counter()
    while proc.poll() is None:
        try:
            samples.append((time.perf_counter() - started, ps.memory_info().rss / 2**20))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{pipeline} child failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["samples"] = samples[:: max(1, len(samples) // 400)]  # at most ~400 points per case
    result["sampled_peak_rss_mb"] = max((s[1] for s in samples), default=0.0)
    return result


def plot(result: dict[str, Any]) -> str:
    plt = common.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    colors = {"baseline": "#999999", "frameseek": "#1f77b4"}
    for pipeline, color in colors.items():
        rows = [r for r in result["rows"] if r["pipeline"] == pipeline]
        ax1.plot(
            [r["minutes"] for r in rows],
            [r["peak_rss_mb"] for r in rows],
            "-o",
            color=color,
            label="original pipeline (baseline)" if pipeline == "baseline" else "frameseek",
        )
        longest = max(rows, key=lambda r: r["minutes"])
        t = [s[0] for s in longest["samples"]]
        ax2.plot(
            t,
            [s[1] for s in longest["samples"]],
            color=color,
            label=f"{pipeline}, {longest['minutes']} min video",
        )
    ax1.set_xlabel("video length (minutes, 360p)")
    ax1.set_ylabel("peak RSS (MiB)")
    ax1.set_ylim(bottom=0)
    ax1.legend(fontsize=8)
    ax2.set_xlabel("seconds since start")
    ax2.set_ylabel("RSS (MiB)")
    ax2.set_ylim(bottom=0)
    ax2.legend(fontsize=8)
    return common.save_figure(fig, NAME)


def render(result: dict[str, Any]) -> str:
    rows = result["rows"]
    table = common.markdown_table(
        [
            "pipeline",
            "video",
            "frames",
            "RSS after model load MiB",
            "peak RSS MiB",
            "growth MiB",
            "kept frames held MiB",
            "wall s",
        ],
        [
            [
                r["pipeline"],
                f"{r['minutes']} min",
                r["frames"],
                r["rss_after_model_load_mb"],
                r["peak_rss_mb"],
                r["peak_rss_mb"] - r["rss_after_model_load_mb"],
                r["frames_held_mb"] or None,
                r["wall_s"],
            ]
            for r in rows
        ],
        digits=1,
    )
    flat = result["flatness"]
    notes = [
        f"frameseek peak RSS, longest / shortest video: **{flat['frameseek']:.3f}×** "
        f"(target ≤ 1.10 → {'met' if flat['frameseek'] <= 1.10 else 'NOT met'}); baseline: "
        f"**{flat['baseline']:.3f}×**.",
        f"Videos: 360p, {common.clip_description()}. Model: {result['model']} for both pipelines.",
        "Peak RSS = the child process's `ru_maxrss`; one fresh process per case, cases alternating "
        "baseline/frameseek.",
        f"The baseline here runs its encode with {result['baseline_threads']} torch thread(s) to bound the "
        "run time on 2 shared cores; what it holds in memory (every kept frame) does not depend on it.",
    ]
    sweep = common.markdown_table(
        ["frameseek batch size", "peak RSS MiB", "growth over model load MiB", "wall s"],
        [
            [r["batch_size"], r["peak_rss_mb"], r["peak_rss_mb"] - r["rss_after_model_load_mb"], r["wall_s"]]
            for r in result.get("batch_sweep", [])
        ],
        digits=1,
    )
    length = result["batch_sweep"][0]["minutes"] if result.get("batch_sweep") else "?"
    return (
        table
        + "\n\n"
        + "\n".join(f"- {n}" for n in notes)
        + f"\n\n![memory]({result['plot']})"
        + f"\n\nWhat frameseek's constant overhead is made of — the encoder's activations, set by the batch "
        f"size ({length}-min video, {result['model']}, precision as in `Searcher` defaults):\n\n" + sweep
    )


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--minutes", default=None, help="video lengths (default 1,10,30; quick 1,3)")
    parser.add_argument("--model", default="lite")
    parser.add_argument("--baseline-threads", type=int, default=1)
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="frameseek's batch size for the lengths"
    )
    parser.add_argument(
        "--batch-sweep",
        default=None,
        help="frameseek batch sizes for the 1-minute sweep (default 4,8,16,32; quick 8,16)",
    )
    parser.add_argument("--child", choices=["baseline", "frameseek"], help=argparse.SUPPRESS)
    parser.add_argument("--video", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.video, args.model, args.baseline_threads, args.batch_size)
        return None
    minutes = [int(m) for m in (args.minutes or ("1,3" if args.quick else "1,10,30")).split(",")]
    rows = []
    for i, length in enumerate(minutes):
        video = str(common.make_clip("360p", length * 60))
        order = ["baseline", "frameseek"] if i % 2 == 0 else ["frameseek", "baseline"]
        for pipeline in order:
            common.log(f"{pipeline}: {length} min video in a fresh process")
            row = run_case(pipeline, video, args.model, args.baseline_threads, args.batch_size)
            row["minutes"] = length
            common.log(
                f"  peak RSS {row['peak_rss_mb']:.0f} MiB, {row['frames']} frames, {row['wall_s']:.0f} s"
            )
            rows.append(row)
    rows.sort(key=lambda r: (r["pipeline"], r["minutes"]))
    sweep = []
    short = str(common.make_clip("360p", minutes[0] * 60))
    batches = [int(b) for b in (args.batch_sweep or ("8,16" if args.quick else "4,8,16,32")).split(",")]
    for batch in [] if args.smoke else batches:  # smoke: the two cases above run the same path
        common.log(f"frameseek: {minutes[0]} min video, batch size {batch}")
        row = run_case("frameseek", short, args.model, args.baseline_threads, batch)
        row.pop("samples")
        sweep.append({**row, "batch_size": batch, "minutes": minutes[0]})

    def ratio(pipeline: str) -> float:
        sub = sorted((r for r in rows if r["pipeline"] == pipeline), key=lambda r: r["minutes"])
        return float(sub[-1]["peak_rss_mb"] / sub[0]["peak_rss_mb"])

    result = {
        "benchmark": NAME,
        "command": common.command_line(),
        "model": args.model,
        "baseline_threads": args.baseline_threads,
        "torch_threads_default": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "rows": rows,
        "batch_sweep": sweep,
        "flatness": {"frameseek": ratio("frameseek"), "baseline": ratio("baseline")},
    }
    result["plot"] = plot(result)
    result["machine"] = common.machine_info()
    common.emit(result, args.json, render)
    return result


if __name__ == "__main__":
    main()
