"""Synthesize small test videos with PyAV (no data files needed) and locate the shared sample data."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import av.video
import numpy as np
import pytest

SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
"""``../shared/data`` from the repository's root, wherever the checkout is (as conftest.py finds it)."""
BIKES = SHARED_DATA / "videos" / "bikes.mp4"
MSRVTT_DIR = SHARED_DATA / "msrvtt" / "videos"

VFR_STEPS = (0.04, 0.1, 0.02, 0.3, 0.05, 0.5, 0.033, 0.2)
"""Frame durations cycled by ``vfr_times`` (seconds): irregular on purpose."""


def require_bikes() -> Path:
    """Path of the real sample video, or skip the test with the reason."""
    if not BIKES.is_file():
        pytest.skip(f"sample video {BIKES} is not available")
    return BIKES


def require_ffmpeg() -> str:
    """Path of the ffmpeg CLI, or skip the test."""
    found = shutil.which("ffmpeg")
    if not found:
        pytest.skip("ffmpeg CLI is not installed")
    return found


def vfr_times(seconds: float) -> list[float]:
    """Irregular frame times (millisecond precision) covering ``seconds``."""
    times: list[float] = []
    t = 0.0
    i = 0
    while t < seconds:
        times.append(round(t, 3))
        t += VFR_STEPS[i % len(VFR_STEPS)]
        i += 1
    return times


def scene_color(time: float, cuts: Sequence[float]) -> tuple[int, int, int]:
    """A distinct solid colour for each shot delimited by ``cuts``."""
    palette = [(220, 40, 40), (20, 20, 120), (240, 240, 60), (20, 100, 20), (60, 220, 220), (120, 20, 120)]
    shot = sum(1 for c in cuts if time >= c)
    return palette[shot % len(palette)]


def picture(width: int, height: int, index: int, color: tuple[int, int, int]) -> np.ndarray:
    """A frame: solid colour, a white square in the top-left corner (orientation), a moving bar."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = color
    side = max(2, min(width, height) // 4)
    image[:side, :side] = 255
    bar = (index * 3) % max(width, 1)
    image[height // 2 :, bar : bar + 2] = 0
    return image


def make_video(
    path: Path,
    seconds: float = 1.0,
    fps: float = 25,
    size: tuple[int, int] = (160, 90),
    *,
    vfr: bool = False,
    times: Sequence[float] | None = None,
    rotation: int | None = None,
    cuts: Sequence[float] = (),
    codec: str = "libx264",
    pix_fmt: str | None = None,
    x264_params: str | None = None,
) -> list[float]:
    """Write a small video and return its frame times (seconds); ``times`` overrides ``fps``/``vfr``.

    ``x264_params`` is passed to libx264 (e.g. ``"keyint=7:bframes=3:open-gop=1"``).
    """
    width, height = size
    if times is None:
        times = vfr_times(seconds) if vfr else [i / fps for i in range(max(1, round(seconds * fps)))]
    time_base = Fraction(1, 1000)
    with av.open(str(path), mode="w") as out:
        options = {"x264-params": x264_params} if x264_params else None
        stream = out.add_stream(codec, rate=round(fps), options=options)
        assert isinstance(stream, av.video.VideoStream)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt or ("yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p")
        stream.codec_context.time_base = time_base
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for index, time in enumerate(times):
            frame = av.VideoFrame.from_ndarray(picture(width, height, index, scene_color(time, cuts)))
            frame.pts = round(time * 1000)
            frame.time_base = time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return [round(t * 1000) / 1000 for t in times]


def make_audio_only(path: Path, seconds: float = 1.0, rate: int = 16000) -> None:
    """Write an AAC file with a sine tone and no video stream."""
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("aac", rate=rate)
        stream.layout = "mono"
        samples = np.arange(int(seconds * rate), dtype=np.float32)
        tone = (0.2 * np.sin(2 * np.pi * 440 * samples / rate)).astype(np.float32)
        chunk = 1024
        for offset in range(0, len(tone), chunk):
            block = tone[offset : offset + chunk][None, :]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = offset
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
