"""PyAV streaming decoder: frames with exact timestamps, sampled on a time grid or at shot changes.

Timestamps: ``Frame.time = (pts - stream.start_time) * stream.time_base`` in seconds, so the first frame
of a stream is at ~0 (ffprobe's ``best_effort_timestamp_time`` minus the stream's ``start_time``). A frame
without a PTS uses its DTS; one with neither continues from the previous frame at the nominal rate.

One module because every reader here (sampled, every frame, thumbnails, one frame, probe) is the same
short pipeline — open → configure the decoder → leave out unneeded packets → clock → select → convert —
whose steps share private invariants: the wanted-time contract between a selector and the packet filter,
the seek-then-rewind fallback, and the ``_EPS`` of every grid comparison that splitting a grid into
ranges relies on (``sample_frames(points=...)``). Split, those would become semi-public API between
modules. Its public building blocks (``open_video``, ``FrameClock``, ``to_image``, ``stream_duration``)
serve the other readers: key-frame previews (``frameseek.video.preview``) and clips
(``frameseek.editing.clips``). Range-parallel decoding in worker processes is its own module
(``frameseek.video.ranges``); the tolerant packet loop is ``frameseek.video.packets``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import av.container
import av.video
import numpy as np
from av.codec.hwaccel import HWAccel
from av.video.reformatter import VideoReformatter

from frameseek.errors import DecodeError, InputError, SourceError, one_line
from frameseek.settings import limits
from frameseek.video.packets import decoded_packets
from frameseek.video.sampling import MAX_VIDEO_SECONDS, Sampling
from frameseek.video.scenes import (
    DEFAULT_MIN_SCENE_LEN,
    DEFAULT_THRESHOLD,
    THUMB_WIDTH,
    ContentDetector,
    thumb_size,
)

log = logging.getLogger(__name__)

_EPS = 1e-9
"""Seconds of slack when comparing a frame time with a grid time (float rounding only)."""

_MAX_PACKETS_WITHOUT_FRAME = 5000
"""Packets demuxed without a single decoded frame before a file is given up as corrupt."""

_OPEN_OPTIONS = {"protocol_whitelist": "file"}
"""A local file may not make FFmpeg open network URLs (e.g. a playlist disguised as a video)."""

LoopFilterSkip = Literal["all", "nokey", "nointra", "bidir", "noref"]
"""Which frames the H.264 / HEVC decoder may leave unfiltered (FFmpeg's ``skip_loop_filter`` values)."""

FAST_LOOP_FILTER_SKIP: LoopFilterSkip = "all"
"""``fast_decode``'s loop-filter skipping (``benchmarks/decode_limit.py``: 40 s of real footage, lite).

Cost: the pipeline's decode of 720p at 1 fps (non-reference frames and GOP tails already skipped) takes
0.75 instead of 0.88 CPU-s (-15 %; every frame decoded: 1.59). Effect, vs the fully decoded, filtered
frame at the same PTS: lite embedding cosine mean / min 0.9989 / 0.994 (720p), 0.9989 / 0.990 (1080p),
0.9974 / 0.989 (360p); PSNR at 224 px median 48-53 dB, worst 40 dB (no visible difference at the
thumbnails' 320 px either). ``nokey`` (key frames filtered) is no better (0.9980 at 360p); ``bidir``
leaves most kept frames untouched (only referenced B-frames go unfiltered), so it cannot save much.
Times never change: the loop filter does not decide which frames decode."""


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` learns about a video: upright size, rotation (degrees, counter-clockwise), rate."""

    duration: float | None
    width: int
    height: int
    fps: float | None
    rotation: int
    codec: str
    frame_count: int | None


@dataclass(frozen=True)
class Frame:
    """One decoded picture: ``time`` in seconds from the stream start, ``image`` HxWx3 uint8 RGB upright."""

    time: float
    image: np.ndarray


class GridSampler:
    """Keep the first frame at or after each grid time ``start + k / fps`` (works for variable rates)."""

    def __init__(self, fps: float, start: float = 0.0, first: int = 0) -> None:
        self.fps = fps
        self.start = start
        self._k = first  # grid points before ``first`` belong to someone else (a range decoded elsewhere)

    def grid_time(self, k: int) -> float:
        """Time of grid point ``k``."""
        return self.start + k / self.fps

    def next_time(self) -> float:
        """The grid time the next kept frame must be at or after."""
        return self.grid_time(self._k)

    def accept(self, time: float) -> bool:
        """True if the frame at ``time`` is the first one at or after the next grid time."""
        if time < self.grid_time(self._k) - _EPS:
            return False
        k = max(self._k + 1, math.floor((time - self.start) * self.fps))
        while self.grid_time(k) <= time + _EPS:
            k += 1
        while k - 1 > self._k and self.grid_time(k - 1) > time + _EPS:
            k -= 1
        self._k = k
        return True


def select_grid_indices(times: Iterable[float], fps: float, start: float = 0.0) -> list[int]:
    """Indices of the frames (given their times, in decode order) that grid sampling at ``fps`` keeps."""
    sampler = GridSampler(fps, start)
    return [i for i, time in enumerate(times) if sampler.accept(time)]


def error_reason(err: BaseException) -> str:
    """An FFmpeg / OS error as a short reason for a message: its ``strerror`` when it has one (FFmpeg's
    own wording, without the file name), one line (``frameseek.errors.one_line``), no final full stop."""
    return one_line(getattr(err, "strerror", None) or err).rstrip(".")


def _is_picture_stream(stream: av.video.VideoStream) -> bool:
    """False for cover art (an attached picture), which is not a video."""
    return not (int(stream.disposition) & int(av.stream.Disposition.attached_pic))


def open_video(
    path: str | Path, max_pixels: int | None = None, hwaccel: HWAccel | None = None
) -> tuple[av.container.InputContainer, av.video.VideoStream]:
    """Open ``path`` and pick its video stream; SourceError / DecodeError with one-line messages.

    ``max_pixels`` (per frame) defaults to ``FRAMESEEK_MAX_PIXELS`` for callers that pass no limits.
    ``hwaccel`` (e.g. NVDEC: ``devices.Device.decoder_hwaccel``) decodes on the GPU; when FFmpeg cannot
    open that hardware here the file is opened for software decoding instead, with one warning.
    """
    p = Path(path)
    if not p.exists():
        raise SourceError(f"video file not found: {p}")
    if p.is_dir():
        raise SourceError(f"{p} is a folder, not a video file")
    if p.stat().st_size == 0:
        raise DecodeError(f"{p} is not a readable video: the file is empty")
    try:
        container = _open_container(p, hwaccel)
    except PermissionError as err:
        raise SourceError(f"cannot read {p}: {error_reason(err)}") from None
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as err:
        raise DecodeError(f"{p} is not a readable video: {error_reason(err)}") from None
    streams = [s for s in container.streams.video if _is_picture_stream(s)]
    if not streams:
        container.close()
        raise DecodeError(f"{p} has no video stream")
    decodable = [s for s in streams if s.codec_context is not None]
    if not decodable:
        container.close()
        raise DecodeError(f"{p} is not a readable video: its video codec is not supported")
    stream = decodable[0]
    if stream.width * stream.height > (max_pixels if max_pixels is not None else limits().max_pixels):
        container.close()
        raise DecodeError(f"{p} is too large to decode: {stream.width}x{stream.height} pixels per frame")
    return container, stream


def _open_container(path: Path, hwaccel: HWAccel | None) -> av.container.InputContainer:
    if hwaccel is not None:
        try:
            return av.open(
                str(path), mode="r", options=dict(_OPEN_OPTIONS), metadata_errors="ignore", hwaccel=hwaccel
            )
        except av.FFmpegError as err:  # no such device here, no driver, or a codec it cannot decode
            if not path.is_file():
                raise
            _warn_software_decoding(f"GPU decoding is not available ({error_reason(err)})")
    return av.open(str(path), mode="r", options=dict(_OPEN_OPTIONS), metadata_errors="ignore")


_warned: set[str] = set()


def _warn_software_decoding(reason: str) -> None:
    if reason not in _warned:  # once per reason and process, not once per video
        _warned.add(reason)
        log.warning("%s: decoding on the CPU", reason)


def _configure(
    stream: av.video.VideoStream,
    threads: int,
    keyframes_only: bool,
    skip_nonref: bool = False,
    skip_loop_filter: LoopFilterSkip | None = None,
) -> None:
    """Decoder threading, key-frame skipping, non-reference-frame skipping, loop-filter skipping.

    ``skip_loop_filter`` is FFmpeg's ``AVCodecContext.skip_loop_filter`` (H.264 / HEVC deblocking), an
    option the codec reads when it opens, i.e. at the first decoded packet: it must be set before that.
    """
    ctx = stream.codec_context
    ctx.thread_count = threads
    if threads != 1:
        ctx.thread_type = "AUTO"
    if keyframes_only:
        ctx.skip_frame = "NONKEY"
    elif skip_nonref:
        ctx.skip_frame = "NONREF"
    if skip_loop_filter is not None and not ctx.is_open:
        ctx.options = {**ctx.options, "skip_loop_filter": skip_loop_filter}


def _sparse_sampling(stream: av.video.VideoStream, fps: float) -> bool:
    """True when sampling keeps at most one frame in four, so skipping B-frames loses no grid point."""
    rate = stream.average_rate or stream.guessed_rate
    return rate is not None and rate > 0 and fps <= float(rate) / 4


WantedTime = Callable[[], float | None]
"""The earliest frame time still wanted (seconds from the stream start), or None while every frame is."""


def _needed_packets(
    packets: Iterable[av.Packet], stream: av.video.VideoStream, wanted: WantedTime | None
) -> Iterator[av.Packet | None]:
    """``packets`` without the runs that no wanted frame can depend on (the tails of key-frame groups).

    Packets showing before the wanted time are held back. A key frame at or before the wanted time drops
    what is held (nothing from it on refers back: the wanted frame decodes from this key frame), and the
    hold becomes that key frame; a packet at or after the wanted time releases the hold first. Frames that
    do decode are bit-identical to a full decode's, and every frame at or after the wanted time decodes;
    frames before it may be missing or, in open-GOP streams, damaged, which a sampler waiting for the wanted
    time never keeps. On regular 2 s GOPs at 1 fps this leaves out the second half of every GOP.
    ``None`` in the output stands for "packets were left out here": the decoder must be flushed before the
    next packet (a key frame), exactly as after a seek.
    """
    if wanted is None:
        yield from packets
        return
    origin = stream.start_time or 0
    time_base = stream.time_base or Fraction(1, 1_000_000)
    held: list[av.Packet] = []
    fed = skipped = False

    def release() -> Iterator[av.Packet | None]:
        nonlocal skipped
        if skipped and held:
            yield None  # packets were left out: the decoder restarts at the key frame, as after a seek
            skipped = False
        yield from held
        held.clear()

    for packet in packets:
        if packet.size == 0:  # end of stream: what is held shows before the wanted time
            if not fed:  # ... but with nothing decoded yet it shows whether the file decodes at all
                yield from release()
            yield packet
            continue
        target = wanted()
        if (
            target is not None
            and packet.pts is not None
            and float((packet.pts - origin) * time_base) < target - _EPS
        ):
            if packet.is_keyframe and held:
                held.clear()
                skipped = True
            held.append(packet)
            continue
        yield from release()
        yield packet
        fed = True
    if not fed:
        yield from release()


def _decoded(
    container: av.container.InputContainer,
    stream: av.video.VideoStream,
    label: str,
    wanted: WantedTime | None = None,
) -> Iterator[av.VideoFrame]:
    """Every frame that decodes, in presentation order; stops cleanly at corruption or truncation.

    With ``wanted``, frames before the wanted time may be skipped (see ``_needed_packets``).
    """

    def corrupt(errors: int, err: av.FFmpegError) -> None:
        log.warning("%s: giving up after %d decode errors (%s)", label, errors, error_reason(err))

    def flushed(packets: Iterator[av.Packet | None]) -> Iterator[av.Packet]:
        for packet in packets:
            if packet is None:  # a cut in the packets: drop what the decoder holds (see _needed_packets)
                stream.codec_context.flush_buffers()
            else:
                yield packet

    packets_without_frame = 0
    try:
        packets = flushed(_needed_packets(container.demux(stream), stream, wanted))
        for _packet, frames in decoded_packets(packets, corrupt):
            packets_without_frame = 0 if frames else packets_without_frame + 1
            if packets_without_frame > _MAX_PACKETS_WITHOUT_FRAME:
                log.warning("%s: giving up, %d packets without a picture", label, packets_without_frame)
                return
            yield from frames  # type: ignore[misc]
    except av.FFmpegError as err:
        log.warning("%s: stopped reading at a damaged or truncated part (%s)", label, error_reason(err))


class FrameClock:
    """Frame times in seconds relative to the stream start, from PTS (else DTS, else extrapolated)."""

    def __init__(self, stream: av.video.VideoStream) -> None:
        self.time_base: Fraction = stream.time_base or Fraction(1, 1_000_000)
        self.origin: int = stream.start_time or 0
        rate = stream.average_rate or stream.guessed_rate
        self.step = float(1 / rate) if rate else 1 / 25
        self.last: float | None = None

    def time(self, frame: av.VideoFrame) -> float:
        """Seconds of ``frame`` from the stream start."""
        pts = frame.pts if frame.pts is not None else frame.dts
        if pts is None:
            value = 0.0 if self.last is None else self.last + self.step
        else:
            value = float((pts - self.origin) * self.time_base)
        self.last = value
        return value


def _seek(container: av.container.InputContainer, stream: av.video.VideoStream, start: float) -> bool:
    """Seek to the key frame at or before ``start``; False if the container cannot seek."""
    clock = FrameClock(stream)
    target = clock.origin + math.floor(start / clock.time_base)
    try:
        container.seek(target, stream=stream, backward=True, any_frame=False)
    except (av.FFmpegError, OverflowError):  # a time past FFmpeg's 64-bit timestamps: decode from the start
        return False
    return True


def _timed_frames(
    container: av.container.InputContainer,
    stream: av.video.VideoStream,
    start: float | None,
    *,
    preroll: bool = False,
    wanted: WantedTime | None = None,
) -> Generator[tuple[av.VideoFrame, float], None, None]:
    """(frame, time) at or after ``start`` (``preroll``: also those from the key frame before it); closes.

    ``wanted``: frames before the time it returns may be skipped (see ``_needed_packets``).
    """
    label = str(container.name)
    floor = None if preroll or start is None else start - _EPS
    try:
        clock = FrameClock(stream)
        decoded = 0
        seeked = bool(start) and _seek(container, stream, start or 0.0)
        for frame in _decoded(container, stream, label, wanted):
            time = clock.time(frame)
            if seeked and decoded == 0 and time > (start or 0.0) + _EPS:
                log.debug("%s: seek landed after %.3f s, decoding from the beginning", label, start)
                yield from _rewound(container, stream, label, floor, wanted)
                return
            decoded += 1
            if floor is None or time >= floor:
                yield frame, time
        if decoded == 0:
            raise DecodeError(f"{label} has no decodable video frames")
    finally:
        container.close()


def _rewound(
    container: av.container.InputContainer,
    stream: av.video.VideoStream,
    label: str,
    floor: float | None,
    wanted: WantedTime | None = None,
) -> Iterator[tuple[av.VideoFrame, float]]:
    """Rewind to the first packet and yield (frame, time) for frames at or after ``floor``."""
    try:
        container.seek(0, backward=True)
    except av.FFmpegError as err:
        raise DecodeError(f"{label} cannot be rewound: {error_reason(err)}") from None
    stream.codec_context.flush_buffers()
    clock = FrameClock(stream)
    for frame in _decoded(container, stream, label, wanted):
        time = clock.time(frame)
        if floor is None or time >= floor:
            yield frame, time


def _quarter_turns(rotation: float) -> int:
    """Counter-clockwise display rotation in degrees -> number of 90-degree turns (0-3)."""
    return round(rotation / 90) % 4


def _fit(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Size that fits ``max_side`` (aspect kept); unchanged when already small enough."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _display_size(frame: av.VideoFrame, sar: Fraction | None) -> tuple[int, int]:
    """Frame size with non-square pixels stretched to square ones."""
    if sar and sar > 0 and sar != 1:
        return max(1, round(frame.width * sar)), frame.height
    return frame.width, frame.height


def to_image(
    frame: av.VideoFrame, max_side: int | None, sar: Fraction | None, scaler: VideoReformatter | None = None
) -> np.ndarray:
    """Convert one kept frame to an upright HxWx3 uint8 RGB array (scaled in C by swscale)."""
    width, height = _fit(*_display_size(frame, sar), max_side)
    same = (width, height) == (frame.width, frame.height)
    scaler = scaler or VideoReformatter()
    rgb = scaler.reformat(
        frame, width=width, height=height, format="rgb24", interpolation=None if same else "AREA"
    )
    image = rgb.to_ndarray()
    turns = _quarter_turns(frame.rotation)
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def _small(frame: av.VideoFrame, thumb_width: int, scaler: VideoReformatter) -> np.ndarray:
    """A thumbnail of ``frame`` for the scene detector (rotation ignored: differences do not care)."""
    width, height = thumb_size(frame.width, frame.height, thumb_width)
    return scaler.reformat(
        frame, width=width, height=height, format="rgb24", interpolation="AREA"
    ).to_ndarray()


class _SceneSelector:
    """Keep the first frame, each frame that starts a new shot, and one frame at least every ``max_gap``."""

    def __init__(self, threshold: float, max_gap: float, thumb_width: int) -> None:
        self.detector = ContentDetector(threshold, DEFAULT_MIN_SCENE_LEN)
        self.max_gap = max_gap
        self.thumb_width = thumb_width
        self.scaler = VideoReformatter()  # one swscale context for all frames: ~10x faster than per frame
        self.last_kept: float | None = None

    def accept(self, frame: av.VideoFrame, time: float) -> bool:
        """Feed every frame in order; True for the frames to keep."""
        cut = self.detector.update(time, _small(frame, self.thumb_width, self.scaler))
        if self.last_kept is None or cut or time - self.last_kept >= self.max_gap - _EPS:
            self.last_kept = time
            return True
        return False


class _GridSelector:
    """Adapter from ``GridSampler`` to the selector interface."""

    def __init__(self, fps: float, start: float, first: int = 0) -> None:
        self.sampler = GridSampler(fps, start, first)

    def accept(self, frame: av.VideoFrame, time: float) -> bool:
        """True for the first frame at or after each grid time."""
        return self.sampler.accept(time)

    def wanted(self) -> float:
        """The next grid time: no earlier frame will be kept."""
        return self.sampler.next_time()


class _EveryFrame:
    """Keeps every frame."""

    def accept(self, frame: av.VideoFrame, time: float) -> bool:
        """Always True."""
        return True


_Selector = _SceneSelector | _GridSelector | _EveryFrame


def _check_options(
    fps: float,
    start: float | None,
    end: float | None,
    max_frames: int | None,
    max_side: int | None,
    threads: int,
    scene_max_gap: float,
) -> None:
    """Reject impossible sampling options with an InputError."""
    if not (math.isfinite(fps) and fps > 0):
        raise InputError(f"fps must be a positive number, got {fps}")
    for name, value in (("start", start), ("end", end)):
        if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_VIDEO_SECONDS):
            raise InputError(f"{name} must be a number of seconds in [0, {MAX_VIDEO_SECONDS:g}], got {value}")
    if end is not None and not (end > (start or 0.0)):
        raise InputError(f"end ({end}) must be after start ({start or 0.0})")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"max_frames must be at least 1, got {max_frames}")
    if max_side is not None and max_side < 16:
        raise InputError(f"max_side must be at least 16 pixels, got {max_side}")
    if threads < 0:
        raise InputError(f"threads must be >= 0 (0 = FFmpeg decides), got {threads}")
    if not scene_max_gap > 0:
        raise InputError(f"scene_max_gap must be positive, got {scene_max_gap}")


def iter_frames(
    path: str | Path,
    *,
    fps: float = 1.0,
    start: float | None = None,
    end: float | None = None,
    max_frames: int | None = None,
    scene: bool = False,
    scene_threshold: float = DEFAULT_THRESHOLD,
    scene_max_gap: float = 10.0,
    max_side: int | None = 640,
    threads: int = 1,
    keyframes_only: bool = False,
    skip_nonref: bool = False,
    skip_unneeded: bool = False,
    skip_loop_filter: LoopFilterSkip | None = None,
) -> Generator[Frame, None, None]:
    """Stream the frames of ``[start, end)`` kept by grid sampling at ``fps``, or by ``scene`` sampling.

    ``skip_nonref`` (grid sampling at ≤ 1/4 of the video's frame rate only) lets the decoder skip frames
    no other frame depends on (most B-frames): 1.5–2× faster decoding of typical H.264, and each grid point
    then keeps the first *decoded* frame at or after it — a few frames later at most, its time still the
    frame's exact PTS.

    ``skip_unneeded`` (grid sampling) does not decode the packets between a kept frame and the next key
    frame when the next grid time is at or after that key frame (``_needed_packets``). The kept frames
    are the same as without it: only decoding work that no kept frame depends on is left out.

    ``skip_loop_filter`` leaves H.264 / HEVC deblocking out on those frames (see ``LoopFilterSkip``): the
    same frames at the same times, their pictures slightly blockier (``FAST_LOOP_FILTER_SKIP``).
    """
    _check_options(fps, start, end, max_frames, max_side, threads, scene_max_gap)
    frame_limit = limits().max_frames
    return _start_sampling(
        path,
        fps=fps,
        start=start,
        end=end,
        cap=min(max_frames or frame_limit, frame_limit),
        scene=scene,
        scene_threshold=scene_threshold,
        scene_max_gap=scene_max_gap,
        max_side=max_side,
        threads=threads,
        keyframes_only=keyframes_only,
        skip_nonref=skip_nonref,
        skip_unneeded=skip_unneeded,
        skip_loop_filter=skip_loop_filter,
        max_pixels=None,
    )


GridRange = tuple[int, int | None]
"""Grid points ``[first, stop)`` of a sampling (``stop`` None: to the end), decoded as one range."""


def sample_frames(
    path: str | Path,
    sampling: Sampling,
    *,
    frame_limit: int,
    max_pixels: int,
    threads: int = 1,
    skip_unneeded: bool = True,
    points: GridRange | None = None,
    hwaccel: HWAccel | None = None,
) -> Generator[Frame, None, None]:
    """``iter_frames`` for a ``Sampling`` (already validated) and the caller's limits (read once).

    ``hwaccel``: decode on a GPU (see ``open_video``); the frames and their times are the same.

    ``skip_unneeded`` defaults on: the samples are bit-identical, only less is decoded. ``fast_decode``
    skips non-reference frames (sparse grids) and the loop filter (``FAST_LOOP_FILTER_SKIP``).

    ``points`` (grid sampling): only the frames kept for grid points ``[first, stop)``, i.e. those in
    ``[grid(first), grid(stop))``, from a seek to the key frame before ``grid(first)``. Splitting the grid
    into ranges gives exactly the frames (times and pictures) of one pass over the whole window: a frame
    is kept iff some grid point lies in (previous frame's time, its time], which is the same inside a
    range as in the whole pass, and each kept frame lies in exactly one range.
    """
    start, end, first = sampling.start, sampling.end, 0
    if points is not None and not sampling.scene:
        first, stop = points
        origin = sampling.start or 0.0
        grid = GridSampler(sampling.fps, origin)
        start = grid.grid_time(first) if first > 0 else sampling.start
        if stop is not None:
            end = grid.grid_time(stop) if end is None else min(end, grid.grid_time(stop))
    return _start_sampling(
        path,
        fps=sampling.fps,
        start=start,
        end=end,
        cap=sampling.frame_cap(frame_limit),
        scene=sampling.scene,
        scene_threshold=DEFAULT_THRESHOLD,
        scene_max_gap=sampling.scene_max_gap,
        max_side=sampling.max_side,
        threads=threads,
        keyframes_only=False,
        skip_nonref=sampling.fast_decode,
        skip_unneeded=skip_unneeded,
        skip_loop_filter=FAST_LOOP_FILTER_SKIP if sampling.fast_decode else None,
        max_pixels=max_pixels,
        origin=sampling.start,
        first_point=first,
        hwaccel=hwaccel,
    )


def _start_sampling(
    path: str | Path,
    *,
    fps: float,
    start: float | None,
    end: float | None,
    cap: int,
    scene: bool,
    scene_threshold: float,
    scene_max_gap: float,
    max_side: int | None,
    threads: int,
    keyframes_only: bool,
    skip_nonref: bool,
    skip_unneeded: bool,
    skip_loop_filter: LoopFilterSkip | None,
    max_pixels: int | None,
    origin: float | None = None,
    first_point: int = 0,
    hwaccel: HWAccel | None = None,
) -> Generator[Frame, None, None]:
    """Open ``path`` now (missing / unreadable / no video fails here, not at the first ``next()``).

    The grid is ``origin + k / fps`` (``origin`` defaults to ``start``) from point ``first_point`` on.
    """
    container, stream = open_video(path, max_pixels, hwaccel)
    nonref = skip_nonref and not scene and _sparse_sampling(stream, fps)
    _configure(stream, threads, keyframes_only, nonref, skip_loop_filter)
    grid_origin = (origin if first_point else start) or 0.0
    selector: _Selector = (
        _SceneSelector(scene_threshold, scene_max_gap, THUMB_WIDTH)
        if scene
        else _GridSelector(fps, grid_origin, first_point)
    )
    wanted = selector.wanted if skip_unneeded and isinstance(selector, _GridSelector) else None
    return _sampled(container, stream, start, end, selector, cap, max_side, wanted)


def _sampled(
    container: av.container.InputContainer,
    stream: av.video.VideoStream,
    start: float | None,
    end: float | None,
    selector: _Selector,
    cap: int,
    max_side: int | None,
    wanted: WantedTime | None = None,
) -> Generator[Frame, None, None]:
    """The frames ``selector`` keeps in ``[start, end)``, at most ``cap``, converted to RGB."""
    sar = stream.sample_aspect_ratio
    scaler = VideoReformatter()
    kept = 0
    frames = _timed_frames(container, stream, start, wanted=wanted)
    try:
        for frame, time in frames:
            if end is not None and time >= end - _EPS:
                break
            if selector.accept(frame, time):
                yield Frame(time=time, image=to_image(frame, max_side, sar, scaler))
                kept += 1
                if kept >= cap:
                    break
    finally:
        frames.close()


def iter_all_frames(
    path: str | Path, *, start: float | None = None, end: float | None = None, max_side: int | None = None
) -> Generator[Frame, None, None]:
    """Stream every frame in ``[start, end)`` (no sampling, e.g. to re-encode a clip), upright RGB."""
    _check_options(1.0, start, end, None, max_side, 1, 1.0)
    container, stream = open_video(path)
    return _sampled(container, stream, start, end, _EveryFrame(), limits().max_frames, max_side)


def iter_small_frames(
    path: str | Path, *, thumb_width: int = THUMB_WIDTH, start: float | None = None, threads: int = 1
) -> Iterator[tuple[float, np.ndarray]]:
    """Every decoded frame as ``(time, thumbnail)``, thumbnails ``thumb_width`` wide (for scene detection)."""
    container, stream = open_video(path)
    _configure(stream, threads, False)
    scaler = VideoReformatter()
    return ((t, _small(frame, thumb_width, scaler)) for frame, t in _timed_frames(container, stream, start))


def frame_at(path: str | Path, time: float, *, max_side: int | None = None) -> Frame:
    """The frame on screen at ``time`` seconds: the last one starting at or before it (+0.5 ms slack)."""
    if not (math.isfinite(time) and time >= 0):
        raise InputError(f"time must be a non-negative number of seconds, got {time}")
    container, stream = open_video(path)
    sar = stream.sample_aspect_ratio
    duration = stream_duration(container, stream)
    chosen: tuple[av.VideoFrame, float] | None = None
    frames = _timed_frames(container, stream, time, preroll=True)
    try:
        for frame, frame_time in frames:
            if chosen is not None and frame_time > time + 5e-4:
                break
            chosen = (frame, frame_time)
    finally:
        frames.close()
    if chosen is None or (duration is not None and time > duration + 5e-4 and chosen[1] < time):
        raise InputError(f"{time:.3f} s is past the end of {path} ({(duration or 0.0):.3f} s)")
    return Frame(time=chosen[1], image=to_image(chosen[0], max_side, sar))


def _first_frame(container: av.container.InputContainer, stream: av.video.VideoStream) -> av.VideoFrame:
    """The first decodable frame, or DecodeError."""
    for frame in _decoded(container, stream, str(container.name)):
        return frame
    raise DecodeError(f"{container.name} has no decodable video frames")


def probe(path: str | Path) -> VideoInfo:
    """Read a video's header and first frame: duration, upright size, rate, rotation, codec, frame count."""
    container, stream = open_video(path)
    try:
        first = _first_frame(container, stream)
        rotation = _quarter_turns(first.rotation) * 90
        width, height = _display_size(first, stream.sample_aspect_ratio)
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            duration=stream_duration(container, stream),
            width=width,
            height=height,
            fps=_rate(stream),
            rotation=rotation,
            codec=stream.codec_context.name,
            frame_count=stream.frames or None,
        )
    finally:
        container.close()


def duration_of(path: str | Path, max_pixels: int | None = None) -> float | None:
    """The video's duration in seconds from its header (None if unknown); opening errors as ``open_video``."""
    container, stream = open_video(path, max_pixels)
    try:
        return stream_duration(container, stream)
    finally:
        container.close()


def stream_duration(container: av.container.InputContainer, stream: av.video.VideoStream) -> float | None:
    """Stream duration in seconds, else the container's, else None."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _rate(stream: av.video.VideoStream) -> float | None:
    """Average frame rate (frames per second), else FFmpeg's guess, else None."""
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else None


def frame_times(path: str | Path, *, keyframes_only: bool = False) -> list[float]:
    """Times of every decoded frame (no pixel conversion): for tests and diagnostics."""
    container, stream = open_video(path)
    _configure(stream, 1, keyframes_only)
    return [time for _, time in _timed_frames(container, stream, None)]
