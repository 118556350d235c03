"""Benchmark 4: image-encoder throughput per backbone, engine/precision, batch size and thread count.

Variants: ``fp32`` (PyTorch eager, what the original ran); ``bf16`` as frameseek runs it on CPUs with
native bfloat16 (CPU autocast + channels-last input); ``bf16+cl`` also converts the model's weights to
channels-last (not what src does: measured to see whether it is worth it); ``onnx`` = the same fp32
network through ONNX Runtime, what frameseek runs on CPUs without native bfloat16. The bf16 variants
are measured only where the CPU has native bfloat16 (emulated bf16 is slower than fp32). Inputs are real
frames of a 360p clip preprocessed by the model. All configurations of a backbone are measured in one run, round-robin,
alternating order, repeated; the table shows medians in images per second.

    python benchmarks/encoder_throughput.py [--json] [--quick]
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import torch

import common
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.inference import Engine, Precision, default_precision
from frameseek.models.onnx_engine import onnxruntime_available
from frameseek.video.decode import iter_frames

NAME = "encoder_throughput"


def real_pixels(model: DualEncoder, n: int) -> torch.Tensor:
    """``n`` preprocessed frames of the 360p test clip (one per second)."""
    frames = [f.image for f in iter_frames(common.make_clip("360p", 60), fps=1.0, max_frames=n)]
    while len(frames) < n:
        frames += frames
    return model.preprocess(frames[:n])


def throughput_case(
    model: DualEncoder,
    variant: tuple[Precision, Engine],
    pixels: torch.Tensor,
    batch: int,
    threads: int,
    min_seconds: float,
) -> Callable[[], float]:
    """A callable that encodes batches for at least ``min_seconds`` (and one batch) → images/s."""
    chunk = pixels[:batch].contiguous()
    precision, engine = variant

    def run() -> float:
        model.precision, model.engine = precision, engine
        done = 0
        with common.torch_threads(threads):
            started = time.perf_counter()
            while True:
                model.encode_pixels(chunk)
                done += batch
                elapsed = time.perf_counter() - started
                if elapsed >= min_seconds:
                    return done / elapsed

    return run


def measure_backbone(
    name: str,
    batches: list[int],
    threads: list[int],
    repeats: int,
    min_seconds: float,
    peaks: dict[str, dict[int, float]],
    multi_thread_batches: list[int],
) -> list[dict[str, Any]]:
    model = common.build_model(name)
    default_precision, default_engine = model.precision, model.engine
    default_variant = (
        "onnx" if default_engine == "onnx" else ("bf16" if default_precision == "bf16" else "fp32")
    )
    gflops = common.image_gflops(model)
    pixels = real_pixels(model, max(batches))
    variants: dict[str, tuple[DualEncoder, tuple[Precision, Engine]]] = {"fp32": (model, ("fp32", "torch"))}
    if default_precision == "bf16":  # native bfloat16 only: emulated bf16 is slower than fp32
        cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        variants["bf16"] = (model, ("bf16", "torch"))
        variants["bf16+cl"] = (cl_model, ("bf16", "torch"))
    if onnxruntime_available():
        variants["onnx"] = (model, ("fp32", "onnx"))
    cases: dict[str, Callable[[], float]] = {}
    keys: dict[str, tuple[str, int, int]] = {}
    for label, (m, precision) in variants.items():
        for batch in batches:
            for th in threads:
                if th > 1 and batch not in multi_thread_batches:
                    continue
                key = f"{label}/b{batch}/t{th}"
                cases[key] = throughput_case(m, precision, pixels, batch, th, min_seconds)
                keys[key] = (label, batch, th)
    common.log(f"{name}: warm-up, priming {len(cases)} configurations, then {repeats} rounds")
    common.warm_up(3.0)
    for case in cases.values():  # first call of a shape/precision builds oneDNN kernels: not timed
        case()
    rates = common.interleaved(cases, repeats)
    rows = []
    for key, values in rates.items():
        label, batch, th = keys[key]
        rate = common.median(values)
        peak = peaks["bf16" if label.startswith("bf16") else "fp32"][th]
        rows.append(
            {
                "model": name,
                "precision": label,
                "frameseek_default": label == default_variant,
                "batch": batch,
                "threads": th,
                "images_per_s": rate,
                "spread": [min(values), max(values)],
                "gflop_per_image": gflops,
                "achieved_gflops": rate * gflops,
                "fraction_of_matmul_peak": rate * gflops / peak if peak else None,
            }
        )
    model.precision, model.engine = default_precision, default_engine
    return rows


def plot(rows: list[dict[str, Any]]) -> str:
    plt = common.pyplot()
    models = list(dict.fromkeys(r["model"] for r in rows))
    threads = sorted({r["threads"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 3.8), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for label, color in (
            ("fp32", "#999999"),
            ("bf16", "#1f77b4"),
            ("bf16+cl", "#2ca02c"),
            ("onnx", "#d62728"),
        ):
            for th in threads:
                style = "-" if th == 1 else "--"
                sub = sorted(
                    (
                        r
                        for r in rows
                        if r["model"] == model and r["precision"] == label and r["threads"] == th
                    ),
                    key=lambda r: r["batch"],
                )
                if not sub:
                    continue
                ax.plot(
                    [r["batch"] for r in sub],
                    [r["images_per_s"] for r in sub],
                    style,
                    marker="o",
                    color=color,
                    label=f"{label}, {th} thread{'s' if th > 1 else ''}",
                )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel("images / s")
        ax.set_title(model)
        ax.legend(fontsize=7)
    return common.save_figure(fig, NAME)


def _original_rate(rows: list[dict[str, Any]], threads: int) -> float:
    """Images/s of the original's setting (fp32, batch 1) at ``threads``; NaN if not measured."""
    match = [r for r in rows if r["precision"] == "fp32" and r["batch"] == 1 and r["threads"] == threads]
    return float(match[0]["images_per_s"]) if match else float("nan")


def render(result: dict[str, Any]) -> str:
    rows = result["rows"]
    parts = []
    for model in dict.fromkeys(r["model"] for r in rows):
        sub = [r for r in rows if r["model"] == model]
        batches = sorted({r["batch"] for r in sub})
        threads = sorted({r["threads"] for r in sub})
        header = ["precision", "threads", *[f"batch {b} img/s" for b in batches], "best % of matmul peak"]
        body = []
        for label in dict.fromkeys(r["precision"] for r in sub):
            for th in threads:
                cells = {r["batch"]: r for r in sub if r["precision"] == label and r["threads"] == th}
                best = max(cells.values(), key=lambda r: r["images_per_s"])
                frac = best["fraction_of_matmul_peak"]
                body.append(
                    [
                        label,
                        th,
                        *[cells[b]["images_per_s"] if b in cells else "not run" for b in batches],
                        f"{100 * frac:.0f}%" if frac else "–",
                    ]
                )

        best = max(sub, key=lambda r: r["images_per_s"])
        ratio = best["images_per_s"] / _original_rate(sub, max(threads))
        ratio_same = best["images_per_s"] / _original_rate(sub, best["threads"])
        parts.append(
            f"**{model}** ({sub[0]['gflop_per_image']:.2f} GFLOP per 224-px image)\n\n"
            + common.markdown_table(header, body, digits=1)
            + f"\n\nBest: {best['precision']}, batch {best['batch']}, {best['threads']} thread(s) = "
            f"{best['images_per_s']:.1f} img/s: **{ratio:.2f}×** the original's setting (fp32, batch 1, "
            f"{max(threads)} threads = torch's default here), {ratio_same:.2f}× fp32 batch 1 on the same "
            f"{best['threads']} thread(s)."
        )
    peaks = result["matmul_peak_gflops"]
    notes = [
        "Medians of "
        f"{result['repeats']} interleaved rounds (each ≥ {result['min_seconds']} s per configuration).",
        "Matmul peak measured in the same run (PyTorch 1024² matmul, GFLOP/s): "
        + ", ".join(f"{dt} {th} thread(s) {v:.0f}" for dt, per in peaks.items() for th, v in per.items())
        + ". It is PyTorch's dense matmul, not the machine's limit: ONNX Runtime's convolution kernels "
        "can pass it (above 100%).",
        "`fp32` = PyTorch eager (the original's setting at batch 1); `bf16` = what frameseek runs for heavy "
        "image backbones on CPUs with native bfloat16 (autocast + channels-last input); `bf16+cl` also "
        "stores the model's weights channels-last, which src does not do; `onnx` = the same fp32 network "
        "through ONNX Runtime, what frameseek runs elsewhere (`FRAMESEEK_ENGINE=auto`).",
        f"This CPU: {result.get('cpu_bf16', 'unknown')} native bfloat16; frameseek's default image engine "
        f"here: {_engines(result.get('default_engine'))}"
        + (
            ""
            if result.get("cpu_bf16") == "has"
            else " (bf16 variants not run: emulated bf16 is slower than fp32)"
        )
        + ".",
    ]
    return (
        "\n\n".join(parts) + "\n\n" + "\n".join(f"- {n}" for n in notes) + f"\n\n![encoder]({result['plot']})"
    )


def _engines(engines: Any) -> str:
    """``{model: engine}`` (older results: one engine for every model) as Markdown."""
    if isinstance(engines, dict):
        return ", ".join(f"{model} **{engine}**" for model, engine in engines.items())
    return f"**{engines or 'unknown'}**"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--models", default=",".join(common.MODEL_NAMES))
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument(
        "--multi-thread-batches",
        default="1,8,32",
        help="batch sizes also measured with more than 1 thread (default 1,8,32)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 3, quick 2)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 3)
    min_seconds = 0.5 if args.quick else 0.8
    batches = [int(b) for b in args.batches.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    common.warm_up(3.0)
    peaks = {
        "fp32": {th: common.matmul_peak_gflops(torch.float32, th) for th in threads},
        "bf16": {th: common.matmul_peak_gflops(torch.bfloat16, th) for th in threads},
    }
    rows: list[dict[str, Any]] = []
    for name in args.models.split(","):
        multi = [int(b) for b in args.multi_thread_batches.split(",")]
        rows += measure_backbone(name, batches, threads, repeats, min_seconds, peaks, multi)
    precision = default_precision()
    result = {
        "benchmark": NAME,
        "command": common.command_line(),
        "cpu_bf16": "has" if precision == "bf16" else "has no",
        # what FRAMESEEK_ENGINE=auto picks per model on this CPU (the image backbone decides where bf16 is)
        "default_engine": {
            row["model"]: "onnx" if row["precision"] == "onnx" else "torch"
            for row in rows
            if row["frameseek_default"]
        },
        "repeats": repeats,
        "min_seconds": min_seconds,
        "matmul_peak_gflops": peaks,
        "rows": rows,
        "plot": plot(rows),
        "machine": common.machine_info(),
    }
    common.emit(result, args.json, render)
    return result


if __name__ == "__main__":
    main()
