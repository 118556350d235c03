"""Write a search hit's picture (JPEG) and its segment (H.264 MP4, no audio), atomically."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.video
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

from frameseek.atomic import atomic_path
from frameseek.errors import DecodeError, InputError
from frameseek.video.decode import Frame, frame_at, iter_all_frames, probe

_X264_OPTIONS = {"preset": "veryfast", "crf": "23"}
_TIME_BASES = {"libx264": Fraction(1, 90000), "mpeg4": Fraction(1, 30000)}
"""Clip time bases: exact for common rates, fine for variable rates (MPEG-4 Part 2 allows < 2**16)."""
_MPEG4_BIT_RATE = 2_000_000


def export_frame(
    path_video: str | Path,
    time: float,
    out_jpeg: str | Path,
    *,
    max_side: int | None = None,
    quality: int = 90,
) -> Path:
    """Save the frame on screen at ``time`` seconds as a JPEG (upright, scaled to ``max_side``)."""
    frame = frame_at(path_video, time, max_side=max_side)
    target = Path(out_jpeg)
    with atomic_path(target) as tmp:
        Image.fromarray(frame.image).save(tmp, format="JPEG", quality=quality)
    return target


def clip_encoder() -> str:
    """The H.264 encoder if this PyAV build has it, else MPEG-4 Part 2."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _even_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Fit ``max_side`` (aspect kept) and round down to even sizes (required by yuv420p)."""
    if max_side is not None and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = round(width * scale), round(height * scale)
    return max(2, width - width % 2), max(2, height - height % 2)


def _add_video_stream(
    out: av.container.OutputContainer, size: tuple[int, int], rate: Fraction
) -> av.video.VideoStream:
    """An encoder stream for the clip."""
    codec = clip_encoder()
    stream = out.add_stream(codec, rate=rate, options=_X264_OPTIONS if codec == "libx264" else {})
    if not isinstance(stream, av.video.VideoStream):
        raise DecodeError(f"{codec} is not a video encoder")
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.codec_context.time_base = _TIME_BASES[codec]
    if codec == "mpeg4":
        stream.bit_rate = _MPEG4_BIT_RATE
    return stream


def _encode(
    stream: av.video.VideoStream, out: av.container.OutputContainer, frame: av.VideoFrame | None
) -> None:
    """Encode one frame (None flushes) and mux the packets."""
    for packet in stream.encode(frame):
        out.mux(packet)


def _picture(image: np.ndarray, size: tuple[int, int], scaler: VideoReformatter) -> av.VideoFrame:
    """An RGB array as a yuv420p frame of exactly ``size``."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return scaler.reformat(frame, width=size[0], height=size[1], format="yuv420p", interpolation="AREA")


def _check_window(start: float, end: float) -> None:
    """Reject an empty or negative clip window."""
    if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
        raise InputError(f"clip window must satisfy 0 <= start < end, got start={start} end={end}")


def export_clip(
    path_video: str | Path,
    start: float,
    end: float,
    out_mp4: str | Path,
    *,
    max_side: int | None = None,
) -> Path:
    """Re-encode the frames in ``[start, end)`` seconds to an MP4 (H.264, or MPEG-4 without libx264)."""
    _check_window(start, end)
    target = Path(out_mp4)
    info = probe(path_video)  # SourceError / DecodeError before anything is written
    rate = Fraction(info.fps).limit_denominator(1001) if info.fps else Fraction(25)
    frames = iter_all_frames(path_video, start=start, end=end)
    try:
        with atomic_path(target) as tmp:
            _encode_clip(
                frames,
                tmp,
                rate,
                max_side,
                f"no frames between {start:.3f} s and {end:.3f} s in {path_video}",
            )
    except av.FFmpegError as err:
        raise DecodeError(f"could not write the clip {target}: {' '.join(str(err).split())}") from None
    finally:
        frames.close()
    return target


def _encode_clip(
    frames: Iterator[Frame], tmp: Path, rate: Fraction, max_side: int | None, empty: str
) -> None:
    """Encode ``frames`` (times kept, shifted to start at 0) into the MP4 file ``tmp``."""
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream: av.video.VideoStream | None = None
        size = (0, 0)
        scaler = VideoReformatter()
        first = 0.0
        for frame in frames:
            if stream is None:
                size = _even_size(frame.image.shape[1], frame.image.shape[0], max_side)
                stream, first = _add_video_stream(out, size, rate), frame.time
            time_base = _TIME_BASES[stream.codec_context.name]
            picture = _picture(frame.image, size, scaler)
            picture.pts = round((frame.time - first) / time_base)
            picture.time_base = time_base
            _encode(stream, out, picture)
        if stream is None:
            raise InputError(empty)
        _encode(stream, out, None)


def hit_stem(rank: int, video: str | Path, time: float) -> str:
    """File name stem for the ``rank``-th hit: ``01-<video stem>-4.040s``."""
    return f"{rank:02d}-{Path(video).stem}-{time:.3f}s"


def export_hits(hits: Sequence[tuple[str | Path, float, float, float]], folder: Path) -> list[dict[str, str]]:
    """Each hit ``(video, time, start, end)``'s frame (JPEG) and segment clip (MP4), ranked, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, (video, time, start, end) in enumerate(hits, 1):
        stem = hit_stem(rank, video, time)
        frame = export_frame(Path(video), time, folder / f"{stem}.jpg")
        clip = export_clip(Path(video), start, end, folder / f"{stem}.mp4")
        written.append({"frame": str(frame), "clip": str(clip)})
    return written
