"""Clips for editors: a segment with its sound, and a supercut of several segments, as MP4 (H.264 + AAC).

Every clip is re-encoded from its in point, never stream-copied, so its first picture is a key frame
shown at t=0 (a cut between key frames cannot freeze or show garbage at the start). Picture and sound
share one clock: the video's (``Frame.time``, seconds from the video stream's start). A clip's origin is
the time of its first picture, and its sound is decoded from that same instant (``AudioReader``), then
written in step with the pictures; both streams start at 0 and end together. Files are written atomically.

One file because a clip and a supercut share the audio reader, the encoders and the one-clock rule;
markers for editors are in ``markers``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import av.audio
import av.container
import av.video
import numpy as np
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter

from frameseek.errors import DecodeError, InputError
from frameseek.system.atomic import atomic_path
from frameseek.video.decode import Frame, iter_all_frames, open_video, probe

_X264_OPTIONS = {"preset": "veryfast", "crf": "23"}
_TIME_BASES = {"libx264": Fraction(1, 90000), "mpeg4": Fraction(1, 30000)}
"""Clip time bases: exact for common rates, fine for variable rates (MPEG-4 Part 2 allows < 2**16)."""
_MPEG4_BIT_RATE = 2_000_000
_MP4_OPTIONS = {"movflags": "+faststart"}

AUDIO_ENCODER = "aac"
"""FFmpeg's native AAC encoder (in every PyAV build)."""
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
"""Sample rates AAC can carry; a source at another rate is resampled to 48 kHz."""
SUPERCUT_AUDIO_RATE = 48000
_AUDIO_BIT_RATES = {1: 96_000, 2: 160_000}
_AUDIO_BLOCK = 4096
"""Samples handed to the AAC encoder at a time (it cuts them into its 1024-sample frames)."""
_SEEK_MARGIN = 0.5
"""Seconds before the in point that audio decoding starts from (a seek lands at or before its target)."""
_CONTIGUOUS = 0.02
"""Seconds: decoded audio this close to where the previous block ended continues it (no gap, no overlap)."""
_MAX_FPS = 60
_EPS = 1e-6


class Segment(Protocol):
    """What a clip is cut from: ``SearchResult`` (or any object with these attributes)."""

    @property
    def video(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...


# ---------------------------------------------------------------------------------------- windows


def check_pads(pad_before: float, pad_after: float) -> None:
    """Handles must be finite, non-negative seconds."""
    for name, value in (("pad_before", pad_before), ("pad_after", pad_after)):
        if not (math.isfinite(value) and value >= 0):
            raise InputError(f"{name} must be a non-negative number of seconds, got {value}")


def check_window(start: float, end: float) -> None:
    """Reject an empty or negative clip window."""
    if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
        raise InputError(f"clip window must satisfy 0 <= start < end, got start={start} end={end}")


def padded_window(
    start: float,
    end: float,
    *,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
    duration: float | None = None,
) -> tuple[float, float]:
    """``[start - pad_before, end + pad_after]`` clamped to ``[0, duration]`` (the clip's in and out points).

    An InputError for a bad window or handles, or when nothing of the window is inside the video.
    """
    check_window(start, end)
    check_pads(pad_before, pad_after)
    first, last = max(0.0, start - pad_before), end + pad_after
    if duration is not None and duration > 0:
        last = min(last, duration)
        if last <= first:
            raise InputError(
                f"no frames between {first:.3f} s and {end + pad_after:.3f} s: the video is {duration:.3f} s long"
            )
    return first, last


# ---------------------------------------------------------------------------------------- audio


def _layout(channels: int) -> str:
    return "mono" if channels == 1 else "stereo"


class AudioReader:
    """A video's sound from ``start`` seconds on its video clock, as float samples at ``rate``/``channels``.

    ``read(n)`` returns exactly ``n`` samples per channel, shape ``(channels, n)``, each call continuing the
    last: silence where the file has none (before its first sample, in gaps, past its end, no audio stream).
    Times are the video's (``Frame.time``: seconds from the video stream's start), so sound read from ``t``
    plays with the picture of ``t`` even when the audio stream starts earlier or later than the video.
    ``rate``/``channels`` default to the source's (a rate AAC cannot carry becomes 48 kHz; more than two
    channels are mixed down to stereo).
    """

    def __init__(
        self, path: str | Path, start: float, *, rate: int | None = None, channels: int | None = None
    ) -> None:
        self._container, video = open_video(path)
        streams = [s for s in self._container.streams.audio if s.codec_context is not None]
        source = streams[0] if streams else None
        self.present = source is not None
        source_rate = source.codec_context.sample_rate if source is not None else 0
        source_channels = source.codec_context.channels if source is not None else 2
        self.rate = rate or (source_rate if source_rate in AAC_RATES else SUPERCUT_AUDIO_RATE)
        self.channels = channels or (1 if source_channels == 1 else 2)
        origin = video.start_time * video.time_base if video.start_time is not None and video.time_base else 0
        self._start = float(origin) + start  # on the container's clock (where packet times live)
        self._blocks: Iterator[tuple[int, np.ndarray]] = iter(()) if source is None else self._decoded(source)
        self._pending: tuple[int, np.ndarray] | None = None
        self._position = 0

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def read(self, samples: int) -> np.ndarray:
        """The next ``samples`` samples per channel (float32, ``(channels, samples)``)."""
        out = np.zeros((self.channels, max(0, samples)), dtype=np.float32)
        low, high = self._position, self._position + samples
        while samples > 0:
            if self._pending is None:
                self._pending = next(self._blocks, None)
                if self._pending is None:
                    break
            at, block = self._pending
            stop = at + block.shape[1]
            if stop <= low:  # before this read (audio before the in point)
                self._pending = None
                continue
            if at >= high:  # after this read: kept for the next one
                break
            a, b = max(at, low), min(stop, high)
            out[:, a - low : b - low] = block[:, a - at : b - at]
            if stop > high:
                break
            self._pending = None
        self._position = high
        return out

    def _decoded(self, stream: av.audio.AudioStream) -> Iterator[tuple[int, np.ndarray]]:
        """(position in samples from the in point, block) for the stream's sound, resampled."""
        resampler = av.AudioResampler(format="fltp", layout=_layout(self.channels), rate=self.rate)
        cursor: int | None = None
        for frame in self._frames(stream):
            for block in resampler.resample(frame):  # None flushes
                at = cursor
                if block.pts is not None and block.time_base is not None:
                    timed = round((float(block.pts * block.time_base) - self._start) * self.rate)
                    if cursor is None or abs(timed - cursor) > _CONTIGUOUS * self.rate:
                        at = timed
                data = block.to_ndarray().reshape(self.channels, -1)
                at = 0 if at is None else at
                cursor = at + data.shape[1]
                yield at, data

    def _frames(self, stream: av.audio.AudioStream) -> Iterator[av.AudioFrame | None]:
        """Decoded frames from just before the in point (None last, to flush the resampler)."""
        seeked = self._seek(stream, self._start - _SEEK_MARGIN)
        first = True
        for frame in self._decode_all(stream):
            if first and seeked and frame.time is not None and frame.time > self._start and self._start > 0:
                self._seek(stream, None)  # the seek landed after the in point: decode from the start
                seeked = first = False
                yield from self._decode_all(stream)
                break
            first = False
            yield frame
        yield None

    def _seek(self, stream: av.audio.AudioStream, seconds: float | None) -> bool:
        """Seek to the packet at or before ``seconds`` (None: the start); False if nothing moved."""
        try:
            if seconds is None or seconds <= 0:
                self._container.seek(0, backward=True)
                stream.codec_context.flush_buffers()
                return False
            assert stream.time_base is not None
            self._container.seek(math.floor(seconds / stream.time_base), stream=stream, backward=True)
            stream.codec_context.flush_buffers()
        except (av.FFmpegError, AssertionError):
            return False
        return True

    def _decode_all(self, stream: av.audio.AudioStream) -> Iterator[av.AudioFrame]:
        """Every frame that decodes (damaged packets skipped; stops at a damaged container)."""
        try:
            for packet in self._container.demux(stream):
                try:
                    yield from packet.decode()  # type: ignore[misc]
                except av.FFmpegError:
                    continue
        except av.FFmpegError:
            return


def has_audio(path: str | Path) -> bool:
    """True if the file has a decodable audio stream."""
    with AudioReader(path, 0.0) as reader:
        return reader.present


# ---------------------------------------------------------------------------------------- writing


def clip_encoder() -> str:
    """The H.264 encoder if this PyAV build has it, else MPEG-4 Part 2."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def even_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Fit ``max_side`` (aspect kept) and round down to even sizes (required by yuv420p)."""
    if max_side is not None and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = round(width * scale), round(height * scale)
    return max(2, width - width % 2), max(2, height - height % 2)


class _ClipWriter:
    """An MP4 being written: a video stream and, optionally, an AAC stream kept in step with it."""

    def __init__(
        self,
        out: av.container.OutputContainer,
        size: tuple[int, int],
        rate: Fraction,
        audio: tuple[int, int] | None,
        codec: str,
    ) -> None:
        self.out, self.size = out, size
        stream = out.add_stream(codec, rate=rate, options=_X264_OPTIONS if codec == "libx264" else {})
        if not isinstance(stream, av.video.VideoStream):
            raise DecodeError(f"{codec} is not a video encoder")
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = self.time_base = _TIME_BASES[codec]
        if codec == "mpeg4":
            stream.bit_rate = _MPEG4_BIT_RATE
        self.video = stream
        self.scaler = VideoReformatter()
        self.fitter = VideoReformatter()
        self.audio: av.audio.AudioStream | None = None
        self.audio_rate, self.channels = audio or (0, 0)
        if audio is not None:
            sound = out.add_stream(AUDIO_ENCODER, rate=self.audio_rate, layout=_layout(self.channels))
            if not isinstance(sound, av.audio.AudioStream):
                raise DecodeError(f"{AUDIO_ENCODER} is not an audio encoder")
            sound.bit_rate = _AUDIO_BIT_RATES[self.channels]
            self.audio = sound
        self.samples = 0
        self.last_pts: int | None = None
        self.last_duration: int | None = None

    def picture(self, image: np.ndarray, time: float | Fraction, *, key: bool = False) -> None:
        """Encode an RGB picture shown from ``time`` seconds of the clip (letterboxed to the clip's size)."""
        frame = av.VideoFrame.from_ndarray(self._fitted(image), format="rgb24")
        frame = self.scaler.reformat(frame, format="yuv420p")
        frame.pts = round(time / self.time_base)
        frame.time_base = self.time_base
        if key:
            frame.pict_type = PictureType.I
        self._mux(self.video.encode(frame))

    def sound(self, reader: AudioReader | None, until: int) -> None:
        """Write the sound up to sample ``until`` of the clip (from ``reader``; silence without one)."""
        if self.audio is None:
            return
        while self.samples < until:
            count = min(_AUDIO_BLOCK, until - self.samples)
            block = (
                reader.read(count)
                if reader is not None
                else np.zeros((self.channels, count), dtype=np.float32)
            )
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(block), format="fltp", layout=_layout(self.channels)
            )
            frame.sample_rate = self.audio_rate
            frame.pts, frame.time_base = self.samples, Fraction(1, self.audio_rate)
            self.samples += count
            self._mux(self.audio.encode(frame))

    def finish(self, last_pts: int, end: float | Fraction) -> None:
        """Flush both encoders; the last picture (``last_pts``) lasts until ``end`` seconds."""
        self.last_pts = last_pts
        self.last_duration = max(1, round(end / self.time_base) - last_pts)
        self._mux(self.video.encode(None))
        if self.audio is not None:
            self._mux(self.audio.encode(None))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            if self.last_pts is not None and packet.stream is self.video and packet.pts == self.last_pts:
                packet.duration = self.last_duration  # the video track ends where the sound does
            self.out.mux(packet)

    def _fitted(self, image: np.ndarray) -> np.ndarray:
        """``image`` scaled to fit the clip's size (aspect kept), centred on black."""
        width, height = self.size
        h, w = image.shape[:2]
        if (w, h) == (width, height):
            return np.ascontiguousarray(image)
        scale = min(width / w, height / h)
        fit_w, fit_h = min(width, max(1, round(w * scale))), min(height, max(1, round(h * scale)))
        if fit_w >= width - 2 and fit_h >= height - 2:  # the same shape but for rounding: no black bars
            fit_w, fit_h = width, height
        source = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        scaled = self.fitter.reformat(source, width=fit_w, height=fit_h, interpolation="AREA").to_ndarray()
        if (fit_w, fit_h) == (width, height):
            return scaled
        canvas = np.zeros((height, width, 3), dtype=np.uint8)
        top, left = (height - fit_h) // 2, (width - fit_w) // 2
        canvas[top : top + fit_h, left : left + fit_w] = scaled
        return canvas


# ---------------------------------------------------------------------------------------- clip


def export_clip(
    path_video: str | Path,
    start: float,
    end: float,
    out_mp4: str | Path,
    *,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
    audio: bool = True,
    max_side: int | None = None,
) -> Path:
    """Re-encode ``[start - pad_before, end + pad_after)`` seconds (clamped to the video) to an MP4.

    H.264 (MPEG-4 Part 2 without libx264) and, when the video has sound and ``audio``, AAC. The clip starts
    at its first picture (a key frame at t=0) with the sound of that instant, and keeps the source's frame
    times (variable rates too); a video without sound gives a video-only clip.
    """
    check_window(start, end)
    check_pads(pad_before, pad_after)
    target = Path(out_mp4)
    info = probe(path_video)  # SourceError / DecodeError before anything is written
    first, last = padded_window(
        start, end, pad_before=pad_before, pad_after=pad_after, duration=info.duration
    )
    rate = Fraction(info.fps).limit_denominator(1001) if info.fps else Fraction(25)
    frames = iter_all_frames(path_video, start=first, end=last)
    try:
        with atomic_path(target) as tmp:
            _encode_clip(path_video, frames, tmp, rate, last, audio, max_side)
    except av.FFmpegError as err:
        raise DecodeError(f"could not write the clip {target}: {' '.join(str(err).split())}") from None
    finally:
        frames.close()
    return target


def _encode_clip(
    path: str | Path,
    frames: Iterator[Frame],
    tmp: Path,
    rate: Fraction,
    last: float,
    audio: bool,
    max_side: int | None,
) -> None:
    """Encode ``frames`` (times kept, shifted so the first is at 0) and their sound into ``tmp``."""
    with av.open(str(tmp), mode="w", format="mp4", options=dict(_MP4_OPTIONS)) as out:
        writer: _ClipWriter | None = None
        reader: AudioReader | None = None
        origin = 0.0
        previous: Frame | None = None
        try:
            for frame in frames:
                if writer is None:
                    origin = frame.time
                    reader = AudioReader(path, origin) if audio else None
                    sound = (reader.rate, reader.channels) if reader is not None and reader.present else None
                    size = even_size(frame.image.shape[1], frame.image.shape[0], max_side)
                    writer = _ClipWriter(out, size, rate, sound, clip_encoder())
                writer.sound(reader, round((frame.time - origin) * writer.audio_rate))
                writer.picture(frame.image, frame.time - origin)
                previous = frame
            if writer is None or previous is None:
                raise InputError(f"no frames between {origin:.3f} s and {last:.3f} s in {path}")
            end = min(last, previous.time + float(1 / rate)) - origin
            writer.sound(reader, round(end * writer.audio_rate))
            writer.finish(round((previous.time - origin) / writer.time_base), end)
        finally:
            if reader is not None:
                reader.close()


# ---------------------------------------------------------------------------------------- supercut


def _supercut_rate(fps: float | None, rates: Sequence[float | None]) -> Fraction:
    """The given rate, else the highest source rate (at most 60), else 25."""
    if fps is not None:
        if not (math.isfinite(fps) and 0 < fps <= 240):
            raise InputError(f"fps must be a number of frames per second in (0, 240], got {fps}")
        return Fraction(fps).limit_denominator(1001)
    known = [Fraction(r).limit_denominator(1001) for r in rates if r]
    return min(max(known), Fraction(_MAX_FPS)) if known else Fraction(25)


class _Pictures:
    """A segment's source pictures, resampled to the supercut's rate from its ``origin``: the source frame
    nearest the in point (the one on screen at it on a tie), so a source at the supercut's rate keeps its own
    frames, none shown late."""

    def __init__(self, path: str | Path, first: float, last: float, source_fps: float | None) -> None:
        self.path, self.first, self.last = path, first, last
        step = 1.0 / (source_fps or 25.0)
        self._frames = iter_all_frames(path, start=max(0.0, first - step), end=last)
        shown = next(self._frames, None)
        if shown is None:
            self._frames.close()
            raise InputError(f"no frames between {first:.3f} s and {last:.3f} s in {path}")
        coming = next(self._frames, None)
        while coming is not None and abs(coming.time - first) < abs(shown.time - first):
            shown, coming = coming, next(self._frames, None)
        self.origin = shown.time
        self._shown, self._coming = shown, coming

    def __enter__(self) -> _Pictures:
        return self

    def __exit__(self, *exc: object) -> None:
        self._frames.close()

    def images(self, count: int, rate: Fraction) -> Iterator[np.ndarray]:
        """The picture on screen at ``origin + k / rate`` for ``k < count``."""
        for k in range(count):
            time = self.origin + float(k / rate)
            while self._coming is not None and self._coming.time <= time + _EPS:
                self._shown, self._coming = self._coming, next(self._frames, None)
            yield self._shown.image


def export_supercut(
    hits: Sequence[Segment],
    out_mp4: str | Path,
    *,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
    audio: bool = True,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
    max_side: int | None = None,
) -> Path:
    """The hits' segments (with handles, clamped to each video), one after another, as one MP4.

    Sources may differ in size, rate and sound: every picture is fitted (aspect kept, black bars) to
    ``size`` (default: the largest source, within ``max_side``), the pictures are resampled to ``fps``
    (default: the highest source rate, at most 60), the sound to 48 kHz stereo AAC (silence for a source
    without sound, or for all of it without ``audio``). Each segment starts with a key frame; its sound is
    cut at the same instants as its pictures, so every segment stays in sync however many come before it.
    """
    if not hits:
        raise InputError("a supercut needs at least one hit")
    check_pads(pad_before, pad_after)
    target = Path(out_mp4)
    infos = {str(hit.video): probe(hit.video) for hit in hits}
    windows = [
        padded_window(
            hit.start,
            hit.end,
            pad_before=pad_before,
            pad_after=pad_after,
            duration=infos[str(hit.video)].duration,
        )
        for hit in hits
    ]
    rate = _supercut_rate(fps, [info.fps for info in infos.values()])
    if size is None:
        largest = max(infos.values(), key=lambda info: info.width * info.height)
        size = even_size(largest.width, largest.height, max_side)
    else:
        size = even_size(*size, None)
    sound = (SUPERCUT_AUDIO_RATE, 2) if audio else None
    try:
        with (
            atomic_path(target) as tmp,
            av.open(str(tmp), mode="w", format="mp4", options=dict(_MP4_OPTIONS)) as out,
        ):
            writer = _ClipWriter(out, size, rate, sound, clip_encoder())
            done = 0  # frames written
            for hit, (first, last) in zip(hits, windows, strict=True):
                with _Pictures(hit.video, first, last, infos[str(hit.video)].fps) as pictures:
                    count = max(1, round((last - first) * rate))  # the asked length; the phase moved
                    reader = (
                        AudioReader(hit.video, pictures.origin, rate=SUPERCUT_AUDIO_RATE, channels=2)
                        if audio
                        else None
                    )
                    with reader if reader is not None else nullcontext():
                        for k, image in enumerate(pictures.images(count, rate)):
                            time = Fraction(done + k) / rate
                            writer.sound(reader, round(time * SUPERCUT_AUDIO_RATE))
                            writer.picture(image, time, key=k == 0)
                        writer.sound(reader, round(Fraction(done + count) / rate * SUPERCUT_AUDIO_RATE))
                done += count
            writer.finish(round(Fraction(done - 1) / rate / writer.time_base), Fraction(done) / rate)
    except av.FFmpegError as err:
        raise DecodeError(f"could not write the supercut {target}: {' '.join(str(err).split())}") from None
    return target
