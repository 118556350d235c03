"""Benchmark 7: the cost of hearing and reading — speech recognition and on-screen text while indexing.

A talk-like video is made from real footage (``common.make_clip``): narration synthesised with espeak-ng
(one sentence every ``--every`` seconds) and a burned-in caption (ffmpeg drawtext) that changes at the
same pace. Each round indexes it in a fresh FRAMESEEK_HOME four ways, interleaved: the picture only; +
speech (Whisper base, int8, VAD); + on-screen text (RapidOCR on 1 frame/s where the picture changed); +
both. Reported: wall time per variant and its ratio to the picture alone (median over rounds), speech
recognition as × real time (audio seconds / recognition seconds, model load included) and OCR frames per
second (frames OCR'd / seconds inside OCR).

    python benchmarks/text_tracks.py            # markdown
    python benchmarks/text_tracks.py --json
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import common
from frameseek.indexing.text_tracks import TrackOptions
from frameseek.metrics import PipelineMetrics
from frameseek.search import Searcher

NAME = "text_tracks"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
SENTENCES = (
    "The budget for next year is finally ready.",
    "Our quarterly revenue doubled in March.",
    "Remember to water the tomatoes every morning.",
    "The committee will meet again on Thursday afternoon.",
    "Please send the signed contracts before the weekend.",
)
CAPTIONS = ("FINAL LAP", "Chapter 4 - Winter pruning", "Results", "Budget 2027", "Questions?")
VARIANTS: dict[str, TrackOptions] = {
    "picture only": TrackOptions(subtitles=False),
    "+ speech": TrackOptions(subtitles=False, speech=True),
    "+ on-screen text": TrackOptions(subtitles=False, ocr=True),
    "+ speech + on-screen text": TrackOptions(subtitles=False, speech=True, ocr=True),
}


def make_talk(resolution: str, seconds: int, every: int) -> Path:
    """Real footage with a sentence said and a caption shown every ``every`` seconds (cached)."""
    out = common.cache_dir() / f"talk-{resolution}-{seconds}s-{every}.mp4"
    if out.is_file():
        return out
    espeak = shutil.which("espeak-ng")
    if espeak is None or not FONT.is_file():
        raise SystemExit(
            "needs espeak-ng and fonts-dejavu-core (apt-get install espeak-ng fonts-dejavu-core)"
        )
    picture = common.make_clip(resolution, seconds)
    work = common.cache_dir() / f"talk-work-{resolution}"
    work.mkdir(exist_ok=True)
    starts = list(range(1, seconds - 3, every))
    waves = []
    for i, _ in enumerate(starts):
        wave = work / f"s{i}.wav"
        subprocess.run([espeak, "-w", str(wave), SENTENCES[i % len(SENTENCES)]], check=True)
        waves.append(wave)
    delays = ";".join(f"[{i + 1}]adelay={t * 1000}:all=1[a{i}]" for i, t in enumerate(starts))
    mix = "".join(f"[a{i}]" for i in range(len(starts)))
    drawn = ",".join(
        f"drawtext=fontfile={FONT}:text='{CAPTIONS[i % len(CAPTIONS)]}':fontsize=h/14:fontcolor=white:"
        f"box=1:boxcolor=black@0.6:x=(w-text_w)/2:y=h-text_h-h/12:enable='between(t,{t + 2},{t + every - 2})'"
        for i, t in enumerate(starts)
    )
    graph = f"[0:v]{drawn}[v];{delays};{mix}amix=inputs={len(starts)}:duration=longest:normalize=0,apad[a]"
    inputs = [arg for w in waves for arg in ("-i", str(w))]
    tmp = out.with_suffix(".tmp.mp4")
    subprocess.run([common.ffmpeg(), "-v", "error", "-y", "-i", str(picture), *inputs, "-filter_complex",
                    graph, "-map", "[v]", "-map", "[a]", "-t", str(seconds), "-c:v", "libx264", "-preset",
                    "veryfast", "-crf", "23", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", str(tmp)],
                   check=True)  # fmt: skip
    tmp.rename(out)
    return out


def index_once(searcher: Searcher, video: Path, tracks: TrackOptions) -> tuple[float, PipelineMetrics]:
    with common.scratch_home("text-tracks"):
        metrics = PipelineMetrics()
        started = time.perf_counter()
        searcher.index(str(video), metrics, tracks=tracks)
        return time.perf_counter() - started, metrics


def measure(video: Path, rounds: int) -> dict[str, Any]:
    searcher = Searcher(common.build_model("lite"))
    walls: dict[str, list[float]] = {name: [] for name in VARIANTS}
    asr: list[float] = []
    ocr: list[float] = []
    ocr_share: list[float] = []
    common.log("warm-up (loads Whisper and RapidOCR once, as a long-running process would)")
    index_once(searcher, video, VARIANTS["+ speech + on-screen text"])
    for r in range(rounds):
        for name, tracks in VARIANTS.items():
            wall, m = index_once(searcher, video, tracks)
            walls[name].append(wall)
            if m.asr_seconds:
                asr.append(m.audio_seconds / m.asr_seconds)
            if m.ocr_seconds:
                ocr.append(m.ocr_frames_read / m.ocr_seconds)
                ocr_share.append(m.ocr_frames_read / max(1, m.ocr_frames))
            common.log(f"round {r + 1} {name}: {wall:.2f} s")
    base = statistics.median(walls["picture only"])
    duration = common.video_duration(video)
    return {
        "video": video.name,
        "video_seconds": duration,
        "rows": [
            {
                "variant": name,
                "wall_s": statistics.median(w),
                "video_seconds_per_s": duration / statistics.median(w),
                "vs_picture_only": statistics.median(w) / base,
            }
            for name, w in walls.items()
        ],
        "asr_x_real_time": statistics.median(asr) if asr else None,
        "ocr_frames_per_s": statistics.median(ocr) if ocr else None,
        "ocr_frames_read_share": statistics.median(ocr_share) if ocr_share else None,
    }


def render(result: dict[str, Any]) -> str:
    rows = [
        [r["variant"], r["wall_s"], r["video_seconds_per_s"], f"{r['vs_picture_only']:.2f}×"]
        for r in result["rows"]
    ]
    table = common.markdown_table(["indexing", "wall s", "video-s/s", "vs picture only"], rows)
    return "\n".join(
        [
            table,
            "",
            f"- Video: {result['video']} ({result['video_seconds']:.0f} s, lite model, 2 cores), "
            f"median of {result['rounds']} interleaved rounds, each in a fresh FRAMESEEK_HOME.",
            f"- Speech recognition (Whisper base, int8, VAD): **{common.fmt(result['asr_x_real_time'])}× real "
            "time** (audio seconds per second, model load included).",
            f"- On-screen text (RapidOCR, 1 frame/s): **{common.fmt(result['ocr_frames_per_s'])} frames/s** "
            f"inside OCR; OCR ran on {common.fmt(100 * (result['ocr_frames_read_share'] or 0), 0)}% of the "
            "sampled frames (the rest had not changed enough).",
            f"- Command: `{result['command']}`",
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--seconds", type=int, default=None, help="video length (default 120, quick 40)")
    parser.add_argument("--every", type=int, default=10, help="a sentence and a caption every N seconds")
    parser.add_argument("--resolution", default="720p")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3, quick 1)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (40 if args.quick else 120)
    rounds = args.rounds or (1 if args.quick else 3)
    video = make_talk(args.resolution, seconds, args.every)
    result = {
        "benchmark": NAME,
        "command": common.command_line(),
        "rounds": rounds,
        **measure(video, rounds),
        "machine": common.machine_info(),
    }
    common.emit(result, args.json, render)
    return result


if __name__ == "__main__":
    main()
