"""Benchmark: every track on a 30-minute 720p video — visual only, + speech, + OCR, + faces, + sounds, and all
together — each as × real time (video seconds / indexing seconds) and peak RSS, on this machine's cores.

The video is real footage (``text_tracks.make_talk``: the shared clips at 720p with narration by espeak-ng
and burned-in captions, two minutes of it, with a sox melody under 30 s of each two minutes), looped to
``--minutes`` without re-encoding and cached outside the repository (``common.cache_dir()``).

Each variant runs in its own process (its own peak RSS) with a fresh FRAMESEEK_HOME: a warm-up indexes a
4-second clip with the same tracks (models and engines loaded, as in a long-running process), then the
long video is indexed once and timed. All frame tracks read the picture's decode (one decoding pass) and
the audio is decoded once for speech and sounds. Also reported for "all together": how far the picture's
embeddings moved when they were decoded at OCR's 960 px and scaled down (vs visual only at 640 px).

    python benchmarks/tracks_speed.py            # markdown (30 minutes of video: ~30-40 min on 2 cores)
    python benchmarks/tracks_speed.py --json
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import common

NAME = "tracks_speed"
VARIANTS: dict[str, dict[str, Any]] = {
    "visual only": {},
    "all together": {"speech": True, "ocr": True, "extra": ["faces", "sounds"]},
    "+ sounds": {"extra": ["sounds"]},
    "+ OCR": {"ocr": True},
    "+ faces": {"extra": ["faces"]},
    "+ speech": {"speech": True},
}
"""Measured in this order (the headline, all together, right after the baseline)."""
MELODY = [f"synth 0.4 pluck {n}" for n in ("C4", "E4", "G4", "C5", "A4", "F4", "D4", "G4")]


def make_long(minutes: float) -> Path:
    """``minutes`` of 720p talk-like real footage with speech, captions and a melody (cached)."""
    import text_tracks

    segment_s = 6 if common.SMOKE else 120
    talk = text_tracks.make_talk("720p", segment_s, 4 if common.SMOKE else 10)
    seconds = max(1, round(minutes * 60))
    out = common.cache_dir() / f"tracks-{talk.stem}-{seconds}s{'-smoke' if common.SMOKE else ''}.mp4"
    if out.is_file():
        return out
    sox = shutil.which("sox")
    if sox is None:
        raise SystemExit("needs sox (apt-get install sox)")
    work = common.cache_dir() / "tracks-work"
    work.mkdir(parents=True, exist_ok=True)
    tune = work / "tune.wav"
    subprocess.run([sox, "-n", "-r", "44100", "-c", "1", str(tune), *" : ".join(MELODY).split(), "repeat",
                    "9", "vol", "0.5"], check=True)  # fmt: skip
    mixed = work / f"{talk.stem}-music.mp4"
    delay = 1000 * (segment_s // 2)
    subprocess.run([common.ffmpeg(), "-v", "error", "-y", "-i", str(talk), "-i", str(tune), "-filter_complex",
                    f"[1:a]adelay={delay}:all=1[m];[0:a][m]amix=inputs=2:duration=first:normalize=0[a]",
                    "-map", "0:v", "-map", "[a]", "-c:v", "copy", "-c:a", "aac", str(mixed)],
                   check=True)  # fmt: skip
    loops = int(np.ceil(seconds / segment_s))
    tmp = out.with_suffix(".tmp.mp4")
    subprocess.run([common.ffmpeg(), "-v", "error", "-y", "-stream_loop", str(loops - 1), "-i", str(mixed),
                    "-t", str(seconds), "-c", "copy", str(tmp)], check=True)  # fmt: skip
    tmp.rename(out)
    return out


def faces_available() -> bool:
    from frameseek.indexing.text_tracks import TrackOptions

    try:
        TrackOptions(extra=frozenset({"faces"}))
    except Exception:
        return False
    return True


def run_one(name: str, video: Path, warm: Path) -> dict[str, Any]:
    """One variant in this process: warm up on ``warm``, then index ``video`` once, timed."""
    from frameseek.indexing.text_tracks import TrackOptions
    from frameseek.metrics import PipelineMetrics
    from frameseek.search import Searcher

    spec = VARIANTS[name]
    tracks = TrackOptions(
        subtitles=False,
        speech=spec.get("speech", False),
        ocr=spec.get("ocr", False),
        extra=frozenset(spec.get("extra", [])),
    )
    searcher = Searcher(common.build_model("lite"))
    with common.scratch_home(f"tracks-{name.replace(' ', '-').replace('+', 'p')}"):
        searcher.index(str(warm), PipelineMetrics(), tracks=tracks)
        metrics = PipelineMetrics()
        started = time.perf_counter()
        (outcome,) = searcher.index(str(video), metrics, tracks=tracks)
        wall = time.perf_counter() - started
        if outcome.error is not None or outcome.index is None:
            raise SystemExit(f"{name}: {outcome.error}")
        embeddings = outcome.index.embeddings
    out = Path(os.environ["TRACKS_SPEED_EMBEDDINGS"]) / f"{name}.npy"
    np.save(out, embeddings)
    duration = common.video_duration(video)
    return {
        "variant": name,
        "wall_s": wall,
        "x_real_time": duration / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "stages": {k: round(v, 2) for k, v in metrics.stages.items()},
        "notices": outcome.text.notices,
    }


def measure(video: Path, warm: Path, names: list[str]) -> dict[str, Any]:
    rows = []
    store = common.cache_dir() / "tracks-embeddings"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    env = {**os.environ, "TRACKS_SPEED_EMBEDDINGS": str(store)}
    progress = common.cache_dir() / "tracks-speed-rows.jsonl"  # rows so far, should a long run be cut short
    progress.write_text("", encoding="utf-8")
    for name in names:
        common.log(f"{name} ...")
        if common.SMOKE:  # one process: the smoke run checks the path end to end, not the numbers
            os.environ["TRACKS_SPEED_EMBEDDINGS"] = str(store)
            rows.append(run_one(name, video, warm))
            continue
        cmd = [common.PYTHON, __file__, "--run-one", name, "--video", str(video), "--warm", str(warm)]
        if common.SMOKE:
            cmd.append("--smoke")
        done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        common.log(f"{name}: {row['x_real_time']:.2f}x real time, peak RSS {row['peak_rss_mb']:.0f} MB")
        rows.append(row)
        with progress.open("a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")
    drift = None
    base, shared = store / "visual only.npy", store / "all together.npy"
    if base.is_file() and shared.is_file():
        a, b = np.load(base), np.load(shared)
        if a.shape == b.shape:
            cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
            drift = {"frames": len(a), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}
    return {"video": video.name, "video_seconds": common.video_duration(video), "rows": rows, "drift": drift}


def render(result: dict[str, Any]) -> str:
    rows = [[r["variant"], r["wall_s"], r["x_real_time"], r["peak_rss_mb"]] for r in result["rows"]] + [
        [name, "not measured", "", ""] for name in result["not_measured"]
    ]
    table = common.markdown_table(["tracks", "wall (s)", "× real time", "peak RSS (MB)"], rows)
    drift = result.get("drift")
    note = (
        f"\nPicture embeddings, all together (decoded at 960 px, scaled to 640) vs visual only: cosine min "
        f"{drift['min_cosine']:.5f}, mean {drift['mean_cosine']:.5f} over {drift['frames']} frames.\n"
        if drift
        else ""
    )
    return (
        f"### Every track on {result['video_seconds'] / 60:.1f} minutes of 720p ({result['video']})\n\n"
        f"`{result['command']}`\n\n{table}\n{note}"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--minutes", type=float, default=None, help="video length (default 30, quick 5)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variant names")
    parser.add_argument("--run-one", default=None, help=argparse_hidden())
    parser.add_argument("--video", default=None, help=argparse_hidden())
    parser.add_argument("--warm", default=None, help=argparse_hidden())
    args = parser.parse_args(argv)
    if args.run_one:
        row = run_one(args.run_one, Path(args.video), Path(args.warm))
        print(json.dumps(row, default=str))
        return row
    minutes = args.minutes or (0.1 if common.SMOKE else (5 if args.quick else 30))
    video = make_long(minutes)
    warm = make_long(4 / 60)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    if common.SMOKE:
        names = ["all together"]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(unknown)}")
    skipped = [n for n in names if "faces" in VARIANTS[n].get("extra", []) and not faces_available()]
    if skipped:  # all together then runs without faces
        VARIANTS["all together"]["extra"] = ["sounds"]
        names = [n for n in names if n != "+ faces"]
    result = {
        "benchmark": NAME,
        "command": common.command_line(),
        "cores": len(os.sched_getaffinity(0)),
        **measure(video, warm, names),
        "not_measured": ["+ faces (the faces track is not installed)"] if skipped else [],
        "machine": common.machine_info(),
    }
    common.emit(result, args.json, render)
    return result


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
