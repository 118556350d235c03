"""Benchmark 12: frameseek on a device — image-encoder throughput, indexing a 720p clip, a Flickr8k DEV
evaluation and training steps, on ``--device`` (default ``auto``: the first CUDA GPU) beside the CPU.

One short script for a lent GPU machine: every part is bounded (``--quick`` bounds it more) and each is
measured on the device and on the CPU in the same run, interleaved where it is a rate, so the table shows
the device's speed-up on that machine. On a machine without a GPU it measures the CPU alone (the rows
say which device each number is from and name the GPU).

* encoder: lite's image tower on real 360p frames, batches of 64 (the device's batch), images/s;
* indexing: ``Searcher(device=…)`` indexes a 720p clip (NVDEC decoding where FFmpeg has it; the metrics
  report ``image_inference``), video-seconds per second;
* eval: ``frameseek eval``'s Flickr8k DEV numbers (text→image R@1, original protocol) computed on the
  device, with the embedding time — the same numbers as on the CPU up to half-precision rounding;
* training: optimiser steps per second of lite's heads (InfoNCE, batch 512) on cached-size random features,
  and of the image backbone's last block fine-tuned on real frames (batch 32).

    python benchmarks/gpu.py [--json] [--quick] [--device auto|cuda|cuda:N|mps|cpu]
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import common
from frameseek.lab.losses import build_loss
from frameseek.models.factory import create_model
from frameseek.models.registry import packaged_weights
from frameseek.search import Searcher
from frameseek.system.devices import resolve_device
from frameseek.video.decode import iter_frames
from frameseek.video.sampling import Sampling

NAME = "gpu"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def encoder_rate(device: str, pixels: torch.Tensor, seconds: float) -> float:
    """Images per second of lite's image tower on ``device`` (batches of 64, ``seconds`` of work)."""
    model = create_model("lite", device=device)
    model.engine = "torch"
    batch = pixels[:64]
    model.encode_pixels(batch)  # build and warm
    _sync(model.device)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.encode_pixels(batch)
        done += len(batch)
    _sync(model.device)
    return done / (time.perf_counter() - started)


def indexing(device: str, clip: Path) -> dict[str, Any]:
    with common.scratch_home(f"gpu-index-{device.replace(':', '')}"):
        searcher = Searcher("lite", device=device, sampling=Sampling(fps=1.0))
        started = time.perf_counter()
        response = searcher.search(clip, "a cyclist wearing a helmet", top_k=3)
        wall = time.perf_counter() - started
    m = response.metrics
    return {
        "device": device,
        "wall_s": wall,
        "video_seconds": m["video_seconds"],
        "video_s_per_s": m["video_seconds"] / wall if wall > 0 else None,
        "frames": m["frames_encoded"],
        "image_inference": m["image_inference"],
    }


def evaluation(device: str, quick: bool) -> dict[str, Any] | None:
    data = common.SHARED_DATA / "flickr8k"
    if not data.is_dir():
        return None
    from frameseek.lab.data.captions import load_dataset
    from frameseek.lab.retrieval_eval import evaluate_samples

    samples = load_dataset("flickr8k", data, "dev")
    if quick:
        keep = set(sorted({s.image_id for s in samples})[:200])
        samples = [s for s in samples if s.image_id in keep]
    with common.scratch_home(f"gpu-eval-{device.replace(':', '')}"):  # no feature cache: embedding is timed
        model = create_model("lite", device=device)
        started = time.perf_counter()
        report = evaluate_samples(model, samples, "flickr8k", "dev", flip_tta=True)
        wall = time.perf_counter() - started
    return {
        "device": device,
        "images": report["images"],
        "t2i_R@1": report["standard"]["text_to_image"]["R@1"],
        "original_R@1": (report["original_protocol"]["text_to_image"] or {}).get("R@1"),
        "seconds": wall,
    }


def steps_per_second(
    loss: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer, where: torch.device, seconds: float
) -> float:
    """Optimiser steps per second over ``seconds``, after one warm-up step (allocations, kernels)."""
    steps, started = -1, 0.0
    while True:
        value = loss()
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        steps += 1
        if steps == 0:
            _sync(where)
            started = time.perf_counter()
        elif time.perf_counter() - started >= seconds:
            break
    _sync(where)
    return steps / (time.perf_counter() - started)


def head_steps(device: str, seconds: float) -> float:
    """Optimiser steps per second on lite's heads (what `frameseek train` runs in frozen mode)."""
    model = create_model("lite", device=device)
    where = model.device
    model.train()
    loss_fn = build_loss("infonce").to(where)
    params = [*model.image_head.parameters(), *model.text_head.parameters(), *loss_fn.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    image = torch.randn(512, int(model.config.image_feature_dim), device=where)
    text = torch.randn(512, int(model.config.text_feature_dim), device=where)
    return steps_per_second(
        lambda: loss_fn(model.project_images(image), model.project_texts(text)), optimizer, where, seconds
    )


def finetune_steps(device: str, pixels: torch.Tensor, seconds: float) -> float:
    """Steps per second fine-tuning the image backbone end to end (batch 32, real frames)."""
    model = create_model("lite", device=device)
    where = model.device
    model.train()
    backbone = model.load_image_backbone()
    backbone.requires_grad_(True)
    loss_fn = build_loss("infonce").to(where)
    optimizer = torch.optim.AdamW([*backbone.parameters(), *model.image_head.parameters()], lr=1e-5)
    batch = pixels[:32].to(where)
    text = torch.randn(32, int(model.config.text_feature_dim), device=where)

    def loss() -> torch.Tensor:
        with model.autocast() if where.type == "cuda" else torch.autocast("cpu", enabled=False):
            emb = model.project_images(model.image_features(batch).float())
        result: torch.Tensor = loss_fn(emb, model.project_texts(text))
        return result

    return steps_per_second(loss, optimizer, where, seconds)


def run(quick: bool, device_spec: str) -> dict[str, Any]:
    if packaged_weights("lite") is None:
        raise SystemExit("lite's weights are not installed")
    device = resolve_device(device_spec)
    devices = [device.name] + (["cpu"] if device.is_gpu else [])
    common.log(f"devices: {', '.join(devices)} ({device.describe()})")
    frames = [f.image for f in iter_frames(common.make_clip("360p", 70), fps=1.0, max_frames=64)]
    while len(frames) < 64:
        frames += frames
    pixels = create_model("lite", device="cpu").preprocess(frames[:64])
    seconds = 2.0 if quick else 5.0
    common.warm_up(2.0)
    rates = common.interleaved({d: functools.partial(encoder_rate, d, pixels, seconds) for d in devices}, 3)
    encoder = {d: common.median(v) for d, v in rates.items()}
    common.log(f"encoder images/s: {encoder}")
    clip = common.make_clip("720p", 30 if quick else 120)
    index_rows = [indexing(d, clip) for d in devices]
    common.log(f"indexing: {index_rows}")
    eval_rows = [row for d in devices if (row := evaluation(d, quick)) is not None]
    common.log(f"eval: {eval_rows}")
    heads = {d: head_steps(d, seconds) for d in devices}
    finetune = {d: finetune_steps(d, pixels, seconds) for d in devices}
    common.log(f"training steps/s: heads {heads}, finetune {finetune}")
    return {
        "benchmark": NAME,
        "quick": quick,
        "device": device.name,
        "device_name": device.describe(),
        "clip": common.clip_description(),
        "encoder_images_per_s": encoder,
        "indexing": index_rows,
        "eval": eval_rows,
        "head_steps_per_s": heads,
        "finetune_steps_per_s": finetune,
        "machine": common.machine_info(),
        "command": common.command_line(),
    }


def render(r: dict[str, Any]) -> str:
    devices = list(r["encoder_images_per_s"])
    gpu = r["device"] if r["device"] != "cpu" else None
    lines = []
    if gpu is None:
        lines += [
            "No GPU was there when this ran: every row is the CPU (the same script on a GPU machine adds "
            "the device's rows beside them and its name). **These are not GPU numbers.**",
            "",
        ]
    else:
        lines += [f"GPU numbers: **{r['device_name']}**, beside this machine's CPU in the same run.", ""]
    rows = []
    for d in devices:
        index = next(x for x in r["indexing"] if x["device"] == d)
        ev = next((x for x in r["eval"] if x["device"] == d), None)
        rows.append(
            [
                d if d != r["device"] else r["device_name"],
                r["encoder_images_per_s"][d],
                index["video_s_per_s"],
                index["image_inference"],
                ev["t2i_R@1"] if ev else None,
                ev["seconds"] if ev else None,
                r["head_steps_per_s"][d],
                r["finetune_steps_per_s"][d],
            ]
        )
    lines.append(
        common.markdown_table(
            [
                "device",
                "encoder (images/s, batch 64)",
                "indexing 720p (video-s/s)",
                "image inference",
                "Flickr8k DEV t2i R@1" + (" (200 images)" if r["quick"] else ""),
                "eval embedding (s)",
                "head training (steps/s, batch 512)",
                "backbone fine-tuning (steps/s, batch 32)",
            ],
            rows,
        )
    )
    return "\n".join(lines)


def main() -> None:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    common.emit(run(args.quick, args.device), args.json, render)


if __name__ == "__main__":
    main()
