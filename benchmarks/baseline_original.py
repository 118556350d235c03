"""The original app's indexing path, re-implemented faithfully as the benchmarks' baseline.

1. ``cv2.VideoCapture`` reads (decodes and converts to BGR) every frame of the video;
2. one frame per second is kept by a frame counter: ``count % round(fps) == 0``;
3. every kept frame is held in memory (a Python list of full-resolution RGB arrays);
4. then each frame is embedded on its own (batch of 1) in fp32, with the model's own preprocessing.

Timestamps come from ``count / fps`` (as the original did). Nothing is written to disk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from frameseek.models.dual_encoder import DualEncoder


@dataclass
class BaselineRun:
    """What one baseline indexing run produced, with its stage times in seconds."""

    times: list[float]
    embeddings: np.ndarray
    frames_read: int
    stages: dict[str, float] = field(default_factory=dict)
    held_bytes: int = 0  # bytes of decoded frames held in memory at the peak


def read_frames(path: Path) -> tuple[list[np.ndarray], list[float], int]:
    """Steps 1-3: read every frame with OpenCV, keep one per second, hold them all."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise RuntimeError(f"OpenCV cannot open {path}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    step = max(1, round(fps))
    frames: list[np.ndarray] = []
    times: list[float] = []
    count = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if count % step == 0:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                times.append(count / fps)
            count += 1
    finally:
        capture.release()
    return frames, times, count


@torch.inference_mode()
def embed_one_by_one(model: DualEncoder, frames: list[np.ndarray]) -> np.ndarray:
    """Step 4: each frame alone through preprocessing and the image tower, in fp32 (no autocast)."""
    model.eval()
    out = []
    for frame in frames:
        pixels = model.preprocess([frame])
        out.append(model.project_images(model.image_features(pixels).float()).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.embed_dim), dtype=np.float32)


def index_original(path: Path, model: DualEncoder) -> BaselineRun:
    """The whole original indexing path for one video, timed per stage."""
    started = time.perf_counter()
    frames, times, count = read_frames(path)
    decoded = time.perf_counter()
    embeddings = embed_one_by_one(model, frames)
    encoded = time.perf_counter()
    return BaselineRun(
        times=times,
        embeddings=embeddings,
        frames_read=count,
        stages={"decode": decoded - started, "encode": encoded - decoded, "total": encoded - started},
        held_bytes=sum(f.nbytes for f in frames),
    )
