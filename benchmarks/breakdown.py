"""Benchmark 6: where indexing time goes for one 720p video, what limits it, and which threading is best.

All cases run in one process, interleaved and repeated (medians):

* stage ceilings — each stage alone: decode only (every frame; as the pipeline decodes, i.e.
  ``FrameReader`` with 1 or 2 FFmpeg threads; with FFmpeg's ``skip_frame`` NONREF / BIDIR; one frame
  per second converted to RGB ≤ 640 px), the work before the encoder alone on one thread (decode +
  thumbnail JPEG + preprocess, timed per stage), and encode only (pre-made pixel batches; torch 1 or 2
  threads);
* the whole ``Searcher.index`` path (hash, probe, decode ‖ prepare ‖ encode, write) with threading
  variants: encode/decode thread counts, and a sequential variant that decodes everything first, then
  encodes;
* the work before the encoder, when run alone (or in the sequential variant) on the main thread, runs with
  torch limited to 1 thread: on the main thread with 2 OpenMP threads, preprocessing's small
  elementwise torch ops were measured many times slower on 2 busy cores, which would charge the stage with
  thread contention it does not have inside the pipeline (where it runs on its own thread);
* the "download" stage, once, by indexing the clip through an http:// link served from this machine
  (loopback: measures yt-dlp and disk, not a network);
* the CPU's measured matmul peak (fp32, bf16) as context for the encoder's achieved GFLOP/s.

    python benchmarks/breakdown.py [--json] [--quick]
"""

from __future__ import annotations

import functools
import http.server
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import common
from frameseek.errors import FrameseekError
from frameseek.indexing import (
    DEFAULT_BATCH_SIZE,
    FrameReader,
    IndexRunner,
    default_encode_threads,
    write_thumbnail,
)
from frameseek.metrics import PipelineMetrics
from frameseek.models.dual_encoder import DualEncoder
from frameseek.search import Searcher
from frameseek.video.decode import frame_times, iter_frames

NAME = "breakdown"


class SequentialRunner(IndexRunner):
    """An index runner that decodes (+ thumbnails + preprocesses) every sampled frame first, then encodes."""

    def encode_frames(
        self,
        reader: FrameReader,
        path: Path,
        thumbs: Path,
        duration: float | None,
        metrics: PipelineMetrics,
        progress: Any = None,
        **_: Any,  # tee / max_side: this benchmark indexes the picture alone (no frame tracks to feed)
    ) -> tuple[list[float], list[np.ndarray]]:
        times: list[float] = []
        pixels: list[torch.Tensor] = []
        # torch ops in preprocessing run on 1 thread, as in the pipeline's prepare thread (see main docstring)
        with common.torch_threads(1), metrics.stage("decode"):
            for n, frame in enumerate(reader(path)):
                image = Image.fromarray(frame.image)
                write_thumbnail(image, thumbs / f"{n:06d}.jpg")
                pixels.append(self.model.preprocess([image])[0])
                times.append(frame.time)
        embeddings = []
        size = self.encoder.batch_size
        with common.torch_threads(self.encoder.threads), metrics.stage("encode"):
            for i in range(0, len(pixels), size):
                batch = torch.stack(pixels[i : i + size])
                embeddings.append(self.model.encode_pixels(batch).numpy())
        metrics.frames_decoded = metrics.frames_encoded = len(pixels)
        return times, embeddings


EVERY = "decode only, every frame (1 FFmpeg thread)"
PIPE = "decode only, as the pipeline ({} FFmpeg thread{})"
SKIP_MODES = {
    "NONREF": "decode only, skip_frame=NONREF",
    "BIDIR": "decode only, skip_frame=BIDIR (all B-frames; not in src)",
}


def decode_skipping(clip: Path, skip: str) -> tuple[int, list[float]]:
    """Decode with FFmpeg's ``skip_frame`` (frames nothing else references are never decoded), keep the
    first decoded frame at or after each second and convert it like ``iter_frames`` (RGB, ≤ 640 px).

    Returns (frames decoded, kept times). NONREF is what src's ``fast_decode`` asks FFmpeg for; BIDIR
    (every B-frame, referenced or not) is not in src: P-frames can refer to referenced B-frames (x264's
    b-pyramid), and on bikes.mp4 such pictures came out damaged (PSNR 17-25 dB against a full decode).
    """
    import av

    from frameseek.video.decode import GridSampler

    container = av.open(str(clip))
    try:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        stream.codec_context.skip_frame = skip  # type: ignore[assignment]
        origin, base = stream.start_time or 0, stream.time_base
        grid = GridSampler(1.0)
        kept: list[float] = []
        decoded = 0
        for frame in container.decode(stream):
            decoded += 1
            t = float((frame.pts - origin) * base) if frame.pts is not None and base else 0.0
            if grid.accept(t):
                scale = min(1.0, 640 / max(frame.width, frame.height))
                w, h = round(frame.width * scale), round(frame.height * scale)
                frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
                kept.append(t)
        return decoded, kept
    finally:
        container.close()


VARIANTS: dict[str, tuple[type[IndexRunner], int, int, str]] = {
    # name: (runner class, encode_threads, decode_threads, description)
    "pipelined e1/d1": (
        IndexRunner,
        1,
        1,
        "decode ‖ prepare ‖ encode threads, 1 encode thread, 1 FFmpeg thread",
    ),
    "pipelined e2/d1": (
        IndexRunner,
        2,
        1,
        "decode ‖ prepare ‖ encode threads, 2 encode threads, 1 FFmpeg thread",
    ),
    "pipelined e1/d2": (
        IndexRunner,
        1,
        2,
        "decode ‖ prepare ‖ encode threads, 1 encode thread, 2 FFmpeg threads",
    ),
    "sequential e2/d2": (
        SequentialRunner,
        2,
        2,
        "decode all (2 FFmpeg threads), then encode (2 encode threads)",
    ),
}


def index_once(
    model: DualEncoder,
    source: str,
    cls: type[IndexRunner],
    encode_threads: int,
    decode_threads: int,
    batch_size: int,
) -> tuple[float, PipelineMetrics]:
    with common.scratch_home("breakdown"):
        searcher = Searcher(
            model, batch_size=batch_size, encode_threads=encode_threads, decode_threads=decode_threads
        )
        searcher.runner = cls(searcher.encoder, searcher.limits, decode_threads=decode_threads)
        metrics = PipelineMetrics()
        started = time.perf_counter()
        searcher.index(source, metrics)
        return time.perf_counter() - started, metrics


def measure_model(name: str, clip: Path, repeats: int, batch_size: int) -> dict[str, Any]:
    model = common.build_model(name)
    duration = common.video_duration(clip)
    searchers = {th: Searcher(model, decode_threads=th) for th in (1, 2)}
    pipeline = {th: s.runner.reader(s.sampling) for th, s in searchers.items()}  # the pipeline's decode
    frames = [f.image for f in pipeline[1](clip)]
    batches = [model.preprocess(frames[i : i + batch_size]) for i in range(0, len(frames), batch_size)]
    producer_split: list[dict[str, float]] = []
    pipeline_metrics: dict[str, list[PipelineMetrics]] = {v: [] for v in VARIANTS}

    def decode_only(threads: int | None) -> Callable[[], float]:
        """``threads=None``: every frame decoded (iter_frames' defaults); else the pipeline's own decode."""

        def run() -> float:
            started = time.perf_counter()
            it = iter_frames(clip, fps=1.0, threads=1) if threads is None else pipeline[threads](clip)
            for _ in it:
                pass
            return time.perf_counter() - started

        return run

    skip_stats: dict[str, dict[str, float]] = {}

    def decode_skip(mode: str) -> Callable[[], float]:
        def run() -> float:
            started = time.perf_counter()
            decoded, kept = decode_skipping(clip, mode)
            wall = time.perf_counter() - started
            offset = max((t - k for k, t in enumerate(kept)), default=0.0)
            skip_stats[mode] = {"frames_decoded": decoded, "frames_kept": len(kept), "max_offset_s": offset}
            return wall

        return run

    def producer_alone() -> float:
        split = {"decode": 0.0, "thumbnail": 0.0, "preprocess": 0.0}
        with tempfile.TemporaryDirectory(dir=common.cache_dir()) as tmp, common.torch_threads(1):
            started = time.perf_counter()
            it = pipeline[1](clip)
            n = 0
            while True:
                t0 = time.perf_counter()
                frame = next(it, None)
                t1 = time.perf_counter()
                split["decode"] += t1 - t0
                if frame is None:
                    break
                image = Image.fromarray(frame.image)
                write_thumbnail(image, Path(tmp) / f"{n:06d}.jpg")
                t2 = time.perf_counter()
                model.preprocess([image])
                t3 = time.perf_counter()
                split["thumbnail"] += t2 - t1
                split["preprocess"] += t3 - t2
                n += 1
            wall = time.perf_counter() - started
        producer_split.append(split)
        return wall

    def encode_only(threads: int) -> Callable[[], float]:
        def run() -> float:
            with common.torch_threads(threads):
                started = time.perf_counter()
                for b in batches:
                    model.encode_pixels(b)
                return time.perf_counter() - started

        return run

    def variant(key: str) -> Callable[[], float]:
        cls, enc, dec, _ = VARIANTS[key]

        def run() -> float:
            wall, metrics = index_once(model, str(clip), cls, enc, dec, batch_size)
            pipeline_metrics[key].append(metrics)
            return wall

        return run

    cases: dict[str, Callable[[], float]] = {
        EVERY: decode_only(None),
        PIPE.format(1, ""): decode_only(1),
        PIPE.format(2, "s"): decode_only(2),
        **{label: decode_skip(mode) for mode, label in SKIP_MODES.items()},
        "decode + prepare alone, 1 thread": producer_alone,
        "encode only, 1 encode thread": encode_only(1),
        "encode only, 2 encode threads": encode_only(2),
        **{key: variant(key) for key in VARIANTS},
    }
    common.log(f"{name}: warm-up, then {repeats} interleaved rounds of {len(cases)} cases")
    common.warm_up(3.0)
    encode_only(1)()  # build the oneDNN kernels for these shapes outside the timing
    walls = common.interleaved(cases, repeats)
    med = {k: common.median(v) for k, v in walls.items()}
    best_variant = min(VARIANTS, key=lambda k: med[k])
    default_variant = f"pipelined e{default_encode_threads(model, torch.get_num_threads(), 1)}/d1"
    default = pipeline_metrics[default_variant]
    stages = {
        stage: common.median([m.stages.get(stage, 0.0) for m in default])
        for stage in ("download", "decode", "prepare", "encode", "write", "index")
    }
    split = {k: common.median([s[k] for s in producer_split]) for k in ("decode", "thumbnail", "preprocess")}
    producer = med["decode + prepare alone, 1 thread"]
    encode1 = med["encode only, 1 encode thread"]
    gflops = common.image_gflops(model)
    for key, values in walls.items():
        common.log(f"  {key}: median {med[key]:.2f} s ({', '.join(f'{v:.2f}' for v in values)})")
    return {
        "model": name,
        "precision": model.image_inference,
        "batch_size": batch_size,
        "video_seconds": duration,
        "frames": len(frames),
        "cases_s": med,
        "raw_s": walls,
        "variants": {
            k: {"description": v[3], "wall_s": med[k], "video_s_per_s": duration / med[k]}
            for k, v in VARIANTS.items()
        },
        "best_variant": best_variant,
        "default_variant": default_variant,
        "default_stages_s": stages,
        "producer_split_s": split,
        "skip_frame": {
            mode: {**skip_stats.get(mode, {}), "label": label} for mode, label in SKIP_MODES.items()
        },
        "frames_in_clip": len(frame_times(clip)),
        "pipeline_sampling": {k: str(v) for k, v in asdict(pipeline[1].sampling).items()},
        "limit": "decode" if producer >= encode1 else "encode",
        "gflop_per_image": gflops,
        "encode_gflops": {
            "1": len(frames) * gflops / med["encode only, 1 encode thread"],
            "2": len(frames) * gflops / med["encode only, 2 encode threads"],
        },
    }


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    """A client hanging up mid-transfer (yt-dlp probing the link) is normal here, not worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def download_stage(clip: Path) -> dict[str, Any]:
    """Index the clip through an http:// link served on 127.0.0.1 (yt-dlp's generic extractor)."""
    handler = functools.partial(_QuietHandler, directory=str(clip.parent))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{clip.name}"
    try:
        wall, metrics = index_once(common.build_model("lite"), url, IndexRunner, 1, 1, DEFAULT_BATCH_SIZE)
        d = metrics.as_dict()
        return {
            "url": "http://127.0.0.1:<port>/" + clip.name,
            "wall_s": wall,
            "download_s": metrics.stages.get("download", 0.0),
            "download_bytes": metrics.download_bytes,
            "download_mb_per_s": d["download_mb_per_s"],
            "stages_s": metrics.stages,
        }
    except FrameseekError as exc:  # a source the library refuses: report it, keep the other numbers
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        server.shutdown()
        server.server_close()


def plot(result: dict[str, Any]) -> str:
    plt = common.pyplot()
    models = result["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4), squeeze=False)
    fig.subplots_adjust(wspace=1.1)
    for ax, m in zip(axes[0], models, strict=True):
        cases = m["cases_s"]
        names = list(cases)
        colors = ["#bbbbbb"] * (len(names) - len(VARIANTS)) + ["#1f77b4"] * len(VARIANTS)
        y = np.arange(len(names))
        ax.barh(y, [cases[n] for n in names], color=colors)
        ax.set_yticks(y, names, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"seconds for a {m['video_seconds']:.0f} s 720p clip")
        ax.set_title(f"{m['model']} ({m['precision']}, batch {m['batch_size']})")
    return common.save_figure(fig, NAME)


def render(result: dict[str, Any]) -> str:
    parts = []
    for m in result["models"]:
        d = m["video_seconds"]
        rows = [[k, v, d / v] for k, v in m["cases_s"].items()]
        table = common.markdown_table(["case", "median s", "video-s/s"], rows)
        st, sp = m["default_stages_s"], m["producer_split_s"]
        producer = m["cases_s"]["decode + prepare alone, 1 thread"]
        enc1 = m["cases_s"]["encode only, 1 encode thread"]
        default = m["cases_s"][m["default_variant"]]
        best = m["best_variant"]
        parts.append(
            f"**{m['model']}** — {m['frames']} frames sampled from a {d:.0f} s 720p clip, {m['precision']}, "
            f"batch {m['batch_size']}\n\n{table}\n\n"
            f'- Default pipeline stages (median): hash+probe ("download" for a local file) '
            f"{st['download']:.3f} s, decode thread {st['decode']:.2f} s, prepare thread "
            f"{st.get('prepare', 0.0):.2f} s, encode {st['encode']:.2f} s, "
            f"write {st['write']:.3f} s; index wall {st['index']:.2f} s.\n"
            f"- Work before the encoder alone (1 thread), split: decode {sp['decode']:.2f} s, thumbnail JPEG {sp['thumbnail']:.2f} s, "
            f"preprocess {sp['preprocess']:.2f} s.\n"
            f"- **Limited by {m['limit']}**: decode + prepare alone {producer:.2f} s vs encode alone (1 thread) "
            f"{enc1:.2f} s; the default pipeline takes {default:.2f} s "
            f"({default / max(producer, enc1):.2f}× the slower of the two, "
            f"{default / (producer + enc1):.2f}× their sum).\n"
            f"- Encoder alone achieved {m['encode_gflops']['1']:.0f} GFLOP/s on 1 thread, "
            f"{m['encode_gflops']['2']:.0f} on 2 ({m['gflop_per_image']:.2f} GFLOP/image).\n"
            + f"- Decoding as the pipeline does (`FrameReader`, sampling "
            f"`fast_decode={m.get('pipeline_sampling', {}).get('fast_decode', '?')}`): "
            f"{m['cases_s'][EVERY] / m['cases_s'][PIPE.format(1, '')]:.2f}× the speed of decoding every frame.\n"
            + "".join(
                f"- FFmpeg `skip_frame={mode}`{' (fast_decode uses it; the pipeline also leaves out the GOP tails no kept frame needs)' if mode == 'NONREF' else ' (not in src: P-frames may refer to B-frames, so pictures break)'}: "
                f"{v['frames_decoded']} of {m['frames_in_clip']} frames decoded, "
                f"{m['cases_s'][EVERY] / m['cases_s'][v['label']]:.2f}× the speed of decoding every frame; kept "
                f"frames at most {v['max_offset_s']:.3f} s after their grid time.\n"
                for mode, v in m["skip_frame"].items()
                if "frames_decoded" in v
            )
            + f"- **Fastest threading: {best}** ({m['variants'][best]['description']}), "
            f"{m['variants'][best]['video_s_per_s']:.1f} video-s/s vs default "
            f"{m['variants'][m['default_variant']]['video_s_per_s']:.1f} ({m['default_variant']})."
        )
    peaks = result["matmul_peak_gflops"]
    context = (
        "CPU context (measured in this run, 1024² matmul, GFLOP/s): "
        + ", ".join(f"{dt} {th} thread(s) {v:.0f}" for dt, per in peaks.items() for th, v in per.items())
        + f". Load average at the end of the run: {result['machine']['load_average']}."
    )
    dl = result["download"]
    if "error" in dl:
        download = f"Download stage (http:// link on 127.0.0.1): failed — {dl['error']}"
    else:
        download = (
            f"Download stage through an http:// link on 127.0.0.1 (yt-dlp, loopback, no network): "
            f"{dl['download_bytes'] / 1e6:.1f} MB in {dl['download_s']:.2f} s "
            f"({dl['download_mb_per_s']} MB/s); the whole search-ready index took {dl['wall_s']:.2f} s."
        )
    return "\n\n".join([*parts, f"- {download}\n- {context}", f"![breakdown]({result['plot']})"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--models", default=",".join(common.MODEL_NAMES))
    parser.add_argument("--seconds", type=int, default=None, help="clip length (default 20, quick 10)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 3, quick 2)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    args = parser.parse_args(argv)
    seconds = args.seconds or (10 if args.quick else 20)
    repeats = args.repeats or (2 if args.quick else 3)
    clip = common.make_clip("720p", seconds)
    common.warm_up(3.0)
    peaks = {
        "fp32": {th: common.matmul_peak_gflops(torch.float32, th) for th in (1, 2)},
        "bf16": {th: common.matmul_peak_gflops(torch.bfloat16, th) for th in (1, 2)},
    }
    models = [measure_model(name, clip, repeats, args.batch_size) for name in args.models.split(",")]
    common.log("download stage through a loopback http:// link")
    result = {
        "benchmark": NAME,
        "command": common.command_line(),
        "clip": clip.name,
        "matmul_peak_gflops": peaks,
        "models": models,
        "download": download_stage(clip),
    }
    result["plot"] = plot(result)
    result["machine"] = common.machine_info()
    common.emit(result, args.json, render)
    return result


if __name__ == "__main__":
    main()
