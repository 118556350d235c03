"""Shared helpers for the benchmarks: test clips from real footage, models, timing, tables, plots, JSON.

Every benchmark measures frameseek and its baseline in ONE process run, interleaved (A, B, B, A, ...)
and repeated, and reports medians and ratios: the machines these run on are shared and noisy, so
absolute numbers drift while ratios measured side by side stay meaningful.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import torch

from frameseek.models.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    HFResNetImage,
    ImageBackbone,
    TextBackbone,
)
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import build_preset
from frameseek.models.registry import PRESETS

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
SHARED_DATA = Path(os.environ.get("FRAMESEEK_SHARED_DATA", str(REPO_DIR.parent / "shared" / "data")))
PYTHON = sys.executable

RESOLUTIONS: dict[str, tuple[int, int]] = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}
CLIP_FPS = 25
# Bump when the clip recipe changes, so cached clips are rebuilt.
CLIP_RECIPE = "v1:libx264-veryfast-crf23-g50-yuv420p-pan"

Row = dict[str, Any]

SMOKE = False
"""Set by ``--smoke``: tiny sizes, one round, no warm-up. Checks that a benchmark runs end to end in a
few seconds (tests/test_benchmark_smoke.py); its numbers mean nothing."""
SMOKE_SECONDS = 6
"""Longest clip ``make_clip`` cuts in smoke mode (every resolution is then 160x90)."""


# ------------------------------------------------------------------------------------------- logging
def log(message: str) -> None:
    """Progress goes to stderr, so stdout stays one table or one JSON object."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------- folders, clips
def cache_dir() -> Path:
    """Where generated clips and scratch indexes live (outside the repository)."""
    raw = os.environ.get("FRAMESEEK_BENCH_DIR")
    path = Path(raw).expanduser() if raw else Path.home() / ".cache" / "frameseek-bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def source_footage() -> list[Path]:
    """The real footage the test clips are cut from: bikes.mp4, then the MSR-VTT clips (sorted)."""
    bikes = SHARED_DATA / "videos" / "bikes.mp4"
    msrvtt = sorted((SHARED_DATA / "msrvtt" / "videos").glob("*.mp4"))
    sources = ([bikes] if bikes.is_file() else []) + msrvtt
    if not sources:
        raise SystemExit(f"no source footage under {SHARED_DATA} (set FRAMESEEK_SHARED_DATA)")
    return sources


def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise SystemExit("ffmpeg is not on PATH; the benchmarks generate their clips with it")
    return path


def video_duration(path: Path) -> float:
    """Container duration in seconds (PyAV)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        return float(container.duration or 0) / 1_000_000


def _run_ffmpeg(args: Sequence[str], out: Path) -> None:
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    cmd = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", *args, str(tmp)]
    subprocess.run(cmd, check=True)
    tmp.replace(out)


def _segment(src: Path, position: int, width: int, height: int) -> Path:
    """One source re-encoded at ``width``x``height``, 25 fps, with a slow pan.

    The MSR-VTT clips here are stored at 1-3 frames per second; repeating a still picture 25 times a
    second would decode unrealistically fast (skipped blocks), so every source gets a slow pan (a moving
    crop window): each frame then differs from the last as in hand-held camera footage.
    """
    folder = cache_dir() / "segments" / f"{width}x{height}{'-smoke' if SMOKE else ''}"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{position:02d}-{src.stem}.mp4"
    if out.is_file():
        return out
    over_w, over_h = _even(width * 1.12), _even(height * 1.12)
    vf = (
        f"fps={CLIP_FPS},scale={over_w}:{over_h}:force_original_aspect_ratio=increase,"
        f"crop={width}:{height}:x='(iw-{width})/2*(1+sin(t*0.9))':y='(ih-{height})/2*(1+sin(t*0.6))',"
        "setsar=1"
    )
    cut = ["-t", str(SMOKE_SECONDS)] if SMOKE else []
    args = [*cut, "-i", str(src), "-vf", vf, "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23"]
    args += ["-g", "50", "-pix_fmt", "yuv420p", "-r", str(CLIP_FPS), "-movflags", "+faststart"]
    _run_ffmpeg(args, out)
    return out


def _even(value: float) -> int:
    return int(round(value / 2) * 2)


def make_clip(resolution: str, seconds: int) -> Path:
    """A ``seconds``-long H.264 clip at ``resolution`` (360p/720p/1080p, 25 fps) cut from real footage.

    Sources are re-encoded one by one (only as many as needed) and concatenated without re-encoding,
    looping over all the footage when ``seconds`` is longer than it. Cached under ``cache_dir()``.
    """
    width, height = RESOLUTIONS[resolution]
    if SMOKE:
        width, height, seconds = 160, 90, min(seconds, SMOKE_SECONDS)
    out = cache_dir() / "clips" / f"{resolution}-{seconds}s-{_recipe_tag()}{'-smoke' if SMOKE else ''}.mp4"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    log(f"generating {out.name} from real footage (cached for later runs)")
    sources = source_footage()
    entries: list[Path] = []
    total = 0.0
    position = 0
    while total < seconds:
        src = sources[position % len(sources)]
        segment = _segment(src, position % len(sources), width, height)
        entries.append(segment)
        total += video_duration(segment)
        position += 1
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{p}'\n" for p in entries), encoding="utf-8")
    _run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), "-t", str(seconds), "-c", "copy"], out)
    listing.unlink()
    return out


def _recipe_tag() -> str:
    return hashlib.sha256(CLIP_RECIPE.encode()).hexdigest()[:8]


def clip_description() -> str:
    """One sentence on how the clips are made (for the report)."""
    return (
        f"H.264 (libx264 veryfast, CRF 23, GOP 50, yuv420p), {CLIP_FPS} fps, cut from real footage "
        "(`bikes.mp4` + the 21 MSR-VTT clips in `../shared/data`, each scaled to fill the frame with a "
        "slow pan so every frame differs, then concatenated/looped to length)"
    )


# -------------------------------------------------------------------------------------------- models
MODEL_NAMES = ("lite", "resnet50-distilbert")


class HashTokenDistilBert(TextBackbone):
    """DistilBERT (random weights, from ``DistilBertConfig()``) fed by a hashing tokenizer.

    Only here so the resnet50-distilbert model carries its real text tower (memory, parameter count)
    without the hub; indexing never calls it.
    """

    def __init__(self) -> None:
        super().__init__()
        from transformers import DistilBertConfig, DistilBertModel

        self.net = DistilBertModel(DistilBertConfig())
        self.out_dim = int(self.net.config.dim)
        self.vocab = int(self.net.config.vocab_size)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        ids = [
            [101, *[zlib.crc32(w.encode()) % (self.vocab - 1000) + 1000 for w in t.split()][:62], 102]
            for t in texts
        ]
        width = max(len(i) for i in ids)
        input_ids = torch.zeros(len(ids), width, dtype=torch.long)
        mask = torch.zeros(len(ids), width, dtype=torch.long)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        hidden: torch.Tensor = self.net(input_ids=input_ids, attention_mask=mask).last_hidden_state
        return hidden[:, 0]


class RandomResNet50(HFResNetImage):
    """``transformers.ResNetModel(ResNetConfig())`` (the ResNet-50 layout) with random weights."""

    def __init__(self) -> None:
        ImageBackbone.__init__(self)
        from transformers import ResNetConfig, ResNetModel

        config = ResNetConfig()
        self.net = ResNetModel(config)
        self.out_dim = int(list(config.hidden_sizes or [2048])[-1])
        self.image_size = 224
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD


def build_model(name: str) -> DualEncoder:
    """A DualEncoder for speed and memory measurements (random heads; random ResNet-50/DistilBERT).

    ``lite``: the real EfficientNet-Lite0 + MiniLM backbones (packaged weights) with fresh heads.
    ``resnet50-distilbert``: the original design's layout, built from ``ResNetConfig()`` (ResNet-50) and
    ``DistilBertConfig()`` with random weights (the hub is unreachable here; speed does not depend on
    the weights' values).
    """
    if name == "lite":
        model = build_preset("lite")
    elif name == "resnet50-distilbert":
        torch.manual_seed(0)
        config = copy.deepcopy(PRESETS["resnet50-distilbert"].config)
        model = DualEncoder(config, RandomResNet50(), HashTokenDistilBert())
    else:
        raise SystemExit(f"unknown model {name!r} (choose from {', '.join(MODEL_NAMES)})")
    model.eval()
    _ = model.fingerprint  # hashed once here, not inside a timed run
    return model


# ---------------------------------------------------------------------------------- timing, stats
def warm_up(seconds: float = 3.0, work: Callable[[], object] | None = None) -> None:
    """Keep the CPU busy for ``seconds`` (clock ramp: the first 1-2 s of compute run slow)."""
    if SMOKE:
        seconds = 0.0
    a = torch.randn(384, 384)
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        if work is not None:
            work()
        else:
            a = torch.tanh(a @ a)


def interleaved(cases: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run every case ``repeats`` times, alternating the order each round (A B C, C B A, ...).

    Each callable returns the value to record (a time or a rate); alternating cancels slow drifts.
    Smoke mode: one round.
    """
    results: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for r in range(1 if SMOKE else repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            results[name].append(float(cases[name]()))
    return results


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64))) if len(values) else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def scratch_home(name: str) -> Iterator[Path]:
    """A fresh FRAMESEEK_HOME (indexes, libraries) for a run, removed afterwards."""
    home = cache_dir() / "scratch" / f"{name}-{os.getpid()}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    before = os.environ.get("FRAMESEEK_HOME")
    os.environ["FRAMESEEK_HOME"] = str(home)
    try:
        yield home
    finally:
        if before is None:
            os.environ.pop("FRAMESEEK_HOME", None)
        else:
            os.environ["FRAMESEEK_HOME"] = before
        shutil.rmtree(home, ignore_errors=True)


# ----------------------------------------------------------------------------------- output helpers
def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: numbers rounded, None/NaN as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:,.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 2) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(cell, digits) for cell in row) + " |")
    return "\n".join(lines)


def save_figure(fig: Any, name: str) -> str:
    """Write a matplotlib figure to benchmarks/results/<name>.png; returns the repo-relative path.

    Smoke mode writes it under ``cache_dir()`` instead (the repository's plots stay the measured ones).
    """
    folder = cache_dir() / "smoke-plots" if SMOKE else RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(path.relative_to(REPO_DIR)) if path.is_relative_to(REPO_DIR) else str(path)


def pyplot() -> Any:
    """matplotlib.pyplot with the Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--quick", action="store_true", help="a smaller, faster variant")
    parser.add_argument(
        "--smoke",
        action=_SmokeAction,
        help="tiny sizes, one round, a few seconds: checks that the script runs (numbers mean nothing)",
    )
    return parser


class _SmokeAction(argparse.Action):
    """``--smoke``: sets ``SMOKE`` (and ``--quick``) before the benchmark reads its arguments."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        global SMOKE
        SMOKE = True
        namespace.smoke = True
        namespace.quick = True


def run_measurement(
    name: str,
    doc: str,
    measure: Callable[[bool], dict[str, Any]],
    render: Callable[[dict[str, Any]], str],
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """The ``main`` of a benchmark whose one option is ``--quick``: measure, add how it was run and on
    what, then print it (``--json`` or markdown)."""
    args = base_parser(doc).parse_args(argv)
    result = {"benchmark": name, "command": command_line(), **measure(args.quick), "machine": machine_info()}
    emit(result, args.json, render)
    return result


def provenance(result: dict[str, Any]) -> str:
    """One line: the command, the CPU and its instruction sets, the cores, the date."""
    machine = result["machine"]
    return (
        f"command: `{result['command']}`; {machine['cpu']} ({', '.join(machine['isa'])}), "
        f"{machine['logical_cores']} cores, {machine['date']}"
    )


def command_line() -> str:
    """How this script was invoked (for the report)."""
    script = Path(sys.argv[0])
    with suppress(ValueError):
        script = script.resolve().relative_to(REPO_DIR)
    return " ".join(["python", str(script), *sys.argv[1:]])


def emit(result: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], str]) -> None:
    """Print the result: one JSON object (``--json``) or its markdown."""
    if as_json:
        print(json.dumps(result, indent=None, default=_json_default))
    else:
        print(render(result))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, library versions, load and date: the context of a run."""
    import psutil

    cpu = "unknown"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    versions: dict[str, str] = {"python": platform.python_version(), "torch": torch.__version__}
    for module in ("av", "cv2", "faiss", "transformers", "numpy"):
        try:
            versions[module] = str(__import__(module).__version__)
        except (ImportError, AttributeError):
            versions[module] = "missing"
    try:
        ff = subprocess.run([ffmpeg(), "-version"], capture_output=True, text=True, check=False)
        versions["ffmpeg"] = ff.stdout.split("\n", 1)[0].split(" ")[2]
    except (OSError, IndexError, SystemExit):
        versions["ffmpeg"] = "missing"
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "isa": sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ------------------------------------------------------------------------------------ compute peak
def matmul_peak_gflops(dtype: torch.dtype, threads: int, seconds: float = 1.5, size: int = 1024) -> float:
    """Measured peak of this CPU: GFLOP/s of a large square matmul (best of short bursts)."""
    if SMOKE:
        seconds, size = 0.01, 64
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    flops = 2.0 * size**3
    best = 0.0
    with torch_threads(threads), torch.inference_mode():
        torch.mm(a, b)
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            t0 = time.perf_counter()
            for _ in range(4):
                torch.mm(a, b)
            best = max(best, 4 * flops / (time.perf_counter() - t0) / 1e9)
    return best


def image_gflops(model: DualEncoder) -> float:
    """GFLOPs of one 224-px image through the image tower and head (torch's FLOP counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    side = model.image_backbone.image_size
    pixels = torch.zeros(1, 3, side, side)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model.project_images(model.image_features(pixels))
    return float(counter.get_total_flops()) / 1e9
