"""Range-parallel decoding, the worker side: a grid split into ranges, and the child process decoding them.

A parent (``frameseek.indexing.reader.RangeReader``) starts ``python -m frameseek.video.ranges`` per
worker, writes one JSON job on its stdin (the video, the sampling, the ranges it owns) and reads frames
from its stdout in a small binary protocol (below): a frame is its exact PTS time and its RGB pixels, so
no PyAV object crosses the process boundary. This module imports PyAV and numpy only (no torch): a worker
starts in ~0.3 s. Its stdout carries only the protocol (``print`` goes to stderr), its stderr is the
parent's, and it exits when the parent does (the pipe breaks at its next write; on Linux also at once,
by ``PR_SET_PDEATHSIG``).

Messages, each a 1-byte tag and a little-endian struct:

* ``F`` range index (u32), time (f64), height, width, channels (u32 each), then the pixels (uint8, C order);
* ``D`` range index (u32): that range is complete;
* ``E`` length (u32), then a UTF-8 JSON ``{"type": ..., "message": ...}``: decoding failed;
* ``X``: every range of this worker is done.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import signal
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from frameseek.errors import DecodeError, FrameseekError, InputError, SourceError
from frameseek.video.decode import Frame, GridRange, GridSampler, sample_frames
from frameseek.video.sampling import Sampling

FRAME = b"F"
DONE = b"D"
ERROR = b"E"
EXIT = b"X"
_FRAME_HEAD = struct.Struct("<IdIII")
_U32 = struct.Struct("<I")

_ERRORS: dict[str, type[FrameseekError]] = {
    "DecodeError": DecodeError,
    "SourceError": SourceError,
    "InputError": InputError,
}


def plan_ranges(sampling: Sampling, duration: float, points_per_range: int) -> list[GridRange]:
    """The grid of ``sampling`` over a ``duration``-second video cut into ranges of ``points_per_range``.

    Ranges are contiguous and in time order; the last one is open (``stop`` None), so frames past an
    underestimated duration still belong to a range. Scene sampling (sequential by nature) is one range.
    """
    if sampling.scene or not (math.isfinite(duration) and duration > 0):
        return [(0, None)]
    grid = GridSampler(sampling.fps, sampling.start or 0.0)
    end = duration if sampling.end is None else min(duration, sampling.end)
    points = max(1, math.ceil((end - grid.start) * sampling.fps - 1e-9))  # grid points before ``end``
    if sampling.max_frames is not None:
        points = min(points, sampling.max_frames)  # at most one kept frame per grid point
    step = max(1, points_per_range)
    firsts = list(range(0, points, step))
    return [(first, firsts[i + 1] if i + 1 < len(firsts) else None) for i, first in enumerate(firsts)]


@dataclass(frozen=True)
class RangeJob:
    """What one worker decodes: its ranges (index into the plan, grid range) of one video."""

    path: str
    sampling: Sampling
    frame_limit: int
    max_pixels: int
    ranges: tuple[tuple[int, GridRange], ...]

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "path": self.path,
                "sampling": self.sampling.as_dict(),
                "frame_limit": self.frame_limit,
                "max_pixels": self.max_pixels,
                "ranges": [[i, first, stop] for i, (first, stop) in self.ranges],
            }
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> RangeJob:
        data = json.loads(raw)
        return cls(
            path=str(data["path"]),
            sampling=Sampling.from_dict(data["sampling"]),
            frame_limit=int(data["frame_limit"]),
            max_pixels=int(data["max_pixels"]),
            ranges=tuple((int(i), (int(a), None if b is None else int(b))) for i, a, b in data["ranges"]),
        )


# ---- the wire protocol ------------------------------------------------------------------------------
def write_frame(out: BinaryIO, index: int, frame: Frame) -> None:
    image = np.ascontiguousarray(frame.image, dtype=np.uint8)
    height, width, channels = image.shape
    out.write(FRAME + _FRAME_HEAD.pack(index, frame.time, height, width, channels))
    out.write(image.data)


def write_error(out: BinaryIO, err: BaseException) -> None:
    name = type(err).__name__ if isinstance(err, FrameseekError) else "DecodeError"
    body = json.dumps({"type": name, "message": str(err) or type(err).__name__}).encode()
    out.write(ERROR + _U32.pack(len(body)) + body)


def error_from(body: bytes) -> FrameseekError:
    """The exception a worker reported, as the same frameseek error type (else a DecodeError)."""
    data = json.loads(body)
    return _ERRORS.get(str(data.get("type")), DecodeError)(str(data.get("message")))


Message = tuple[bytes, int, Frame | None]
"""(tag, range index, frame): ``F`` with a frame, ``D`` / ``X`` without; errors are raised."""


def read_messages(stream: BinaryIO) -> Iterator[Message]:
    """Messages from a worker's stdout until ``X``; a worker error is raised, a cut-off stream too."""

    def exactly(n: int) -> bytearray:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            read = stream.readinto(view[got:])  # type: ignore[attr-defined]
            if not read:
                raise EOFError
            got += read
        return buf

    while True:
        tag = bytes(exactly(1))
        if tag == FRAME:
            index, time, height, width, channels = _FRAME_HEAD.unpack(exactly(_FRAME_HEAD.size))
            pixels = exactly(height * width * channels)  # a bytearray: the image is writable, no copy
            image = np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, channels)
            yield FRAME, index, Frame(time=time, image=image)
        elif tag == DONE:
            yield DONE, _U32.unpack(exactly(_U32.size))[0], None
        elif tag == ERROR:
            (length,) = _U32.unpack(exactly(_U32.size))
            raise error_from(bytes(exactly(length)))
        elif tag == EXIT:
            yield EXIT, 0, None
            return
        else:
            raise DecodeError(f"range decoder sent an unknown message {tag!r}")


# ---- the worker process -----------------------------------------------------------------------------
def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the parent dies (no orphan decoding on after a crash)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def run_job(job: RangeJob, out: BinaryIO, decode: Callable[..., Iterator[Frame]] = sample_frames) -> None:
    """Decode each range of ``job`` in order, writing its frames, a ``D`` after each and ``X`` at the end."""
    for index, points in job.ranges:
        frames = decode(
            job.path, job.sampling, frame_limit=job.frame_limit, max_pixels=job.max_pixels, points=points
        )
        for frame in frames:
            write_frame(out, index, frame)
        out.write(DONE + _U32.pack(index))
        out.flush()
    out.write(EXIT)
    out.flush()


def main() -> int:
    """Entry point of ``python -m frameseek.video.ranges``: one job on stdin, frames on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    _die_with_parent()
    out: BinaryIO = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but the protocol may reach the pipe
    try:
        job = RangeJob.from_json(sys.stdin.buffer.read())
        run_job(job, out)
    except BrokenPipeError:  # the parent stopped reading: it no longer wants frames
        with contextlib.suppress(OSError):
            os.close(out.fileno())
        return 0
    except Exception as err:  # reported to the parent, which raises it as the same error
        with contextlib.suppress(OSError):
            write_error(out, err)
            out.flush()
        return 1
    return 0


def worker_command() -> list[str]:
    """The command line that starts a range worker with this interpreter."""
    return [sys.executable, "-m", "frameseek.video.ranges"]


if __name__ == "__main__":
    sys.exit(main())
