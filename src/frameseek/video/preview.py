"""A coarse first look at a long video: one key frame near each of ``count`` evenly spaced times.

Decoding a key frame needs nothing before it, so each look is a seek plus one picture: a 30-minute video
gives its first ranked moments in seconds while the full index (every sampled frame) fills in behind.
Times are the key frames' exact PTS, like every other frame time.
"""

from __future__ import annotations

from collections.abc import Iterator

import av

from frameseek.errors import DecodeError
from frameseek.video.decode import Frame, FrameClock, open_video, stream_duration, to_image

PREVIEW_MIN_SECONDS = 300.0
"""Videos at least this long get a preview pass before their full index (shorter ones index in seconds)."""

PREVIEW_SPACING = 10.0
"""Seconds between preview looks, at most ``PREVIEW_MAX_FRAMES`` of them."""

PREVIEW_MAX_FRAMES = 120


def preview_times(
    duration: float, spacing: float = PREVIEW_SPACING, most: int = PREVIEW_MAX_FRAMES
) -> list[float]:
    """Evenly spaced look-up times covering ``[0, duration)``."""
    count = max(1, min(most, int(duration // spacing)))
    step = duration / count
    return [i * step for i in range(count)]


def preview_frames(path: str, *, max_side: int, max_pixels: int, count: int | None = None) -> list[Frame]:
    """The key frame at or before each preview time (distinct frames only), upright RGB ≤ ``max_side``."""
    frames = iter_preview_frames(path, max_side=max_side, max_pixels=max_pixels, count=count)
    return sorted(frames, key=lambda f: f.time)


def iter_preview_frames(
    path: str, *, max_side: int, max_pixels: int, count: int | None = None
) -> Iterator[Frame]:
    """``preview_frames`` one at a time, as each is decoded (in time order: each look seeks forward), so
    a consumer can encode the first looks while the later ones are still being decoded."""
    container, stream = open_video(path, max_pixels)
    try:
        duration = stream_duration(container, stream)
        if not duration:
            return
        ctx = stream.codec_context
        ctx.skip_frame = "NONKEY"
        clock = FrameClock(stream)
        sar = stream.sample_aspect_ratio
        seen: set[float] = set()
        times = preview_times(duration) if count is None else preview_times(duration, duration / count, count)
        for t in times:
            target = clock.origin + int(t / clock.time_base)
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
            except av.FFmpegError:
                return  # not seekable: no preview, the full pass still runs
            ctx.flush_buffers()
            frame = _first_decoded(container, stream)
            if frame is None:
                continue
            time = clock.time(frame)
            if time in seen:
                continue
            seen.add(time)
            yield Frame(time=time, image=to_image(frame, max_side, sar))
    except DecodeError:
        return
    finally:
        container.close()


def _first_decoded(
    container: av.container.InputContainer, stream: av.video.VideoStream
) -> av.VideoFrame | None:
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                return frame  # type: ignore[no-any-return]
    except av.FFmpegError:
        return None
    return None
