"""Stage 1, the frame reader: a video file + a sampling → its sampled frames with exact PTS times.

One decoder by default. With ``workers > 1`` (grid sampling, videos of at least ``min_parallel_seconds``)
the grid is cut into ranges of ``range_points`` grid points, handed round-robin to ``workers`` decoders:
this thread decodes every ``workers``-th range itself, child processes (``frameseek.video.ranges``) the
others, and the frames come out in time order, exactly those of one pass (same times, same pictures:
``sample_frames(points=...)``). Each child's frames wait in a bounded queue (about one range), so memory
stays flat; an error in a child is raised here as the same error; stopping early (the consumer closes the
iterator, an exception, Ctrl-C) kills and reaps every child.

Whether it pays (``benchmarks/decode_limit.py``, 2 cores, lite, 720p): see ``DEFAULT_DECODE_WORKERS``.
Children start at the first ``next()``, from the iterating thread, and die with it (``PR_SET_PDEATHSIG``):
iterate a parallel reader from one thread, as the runner's decode stage does.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

from av.codec.hwaccel import HWAccel

from frameseek.errors import DecodeError, FrameseekError, InputError
from frameseek.video.decode import Frame, GridRange, duration_of, sample_frames
from frameseek.video.ranges import DONE, EXIT, FRAME, RangeJob, plan_ranges, read_messages, worker_command
from frameseek.video.sampling import Sampling

DECODE_WORKERS_ENV = "FRAMESEEK_DECODE_WORKERS"
"""Environment setting: decoders per video (1 = one pass; N > 1 = this thread + N - 1 range workers)."""

DEFAULT_DECODE_WORKERS = 1
"""Range-parallel decoding is off by default because it does not pay on 2 cores. Measured with lite at
720p, 1 fps (``benchmarks/decode_limit.py``): the decode thread (0.75 CPU-s per 40 s) already runs beside
prepare + encode (~0.5 CPU-s) and both cores are busy; a second decoder adds CPU (decode 1.07 instead of
0.75 CPU-s per 40 s, indexing 1.69 instead of 1.25; 240 s: 9.1 instead of 7.8) that 2 cores do not have
spare. Its wall-clock gains on a loaded machine come from taking CPU from other processes. It is for
machines with idle cores (``FRAMESEEK_DECODE_WORKERS``)."""

MIN_PARALLEL_SECONDS = 120.0
"""Shorter videos are decoded in one pass even with workers: a worker costs ~0.3 s of CPU to start
(Python + PyAV + numpy imports, ``python -m frameseek.video.ranges``), ≤ 15 % of what it would decode
in 2 minutes of 720p at 1 fps (~2.2 CPU-s)."""

RANGE_SECONDS = 10.0
"""Video seconds per range (grid-aligned, so a range's seek decodes nothing a single pass would not)."""

MAX_RANGE_FRAMES = 32
"""At most this many grid points per range: a worker's queue holds one range (32 × 0.7 MB at 640 px)."""

_POLL_S = 0.1


def decode_workers_from_env() -> int:
    """``FRAMESEEK_DECODE_WORKERS`` (a whole number >= 1), else ``DEFAULT_DECODE_WORKERS``."""
    raw = os.environ.get(DECODE_WORKERS_ENV, "").strip()
    if not raw:
        return DEFAULT_DECODE_WORKERS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(
            f"environment variable {DECODE_WORKERS_ENV} must be a whole number >= 1, got {raw!r}"
        )
    return value


class FrameReader:
    """Reads the frames a ``Sampling`` keeps; calling it opens the file at once (bad input fails first)."""

    def __init__(
        self,
        sampling: Sampling,
        *,
        frame_limit: int,
        max_pixels: int,
        threads: int = 1,
        workers: int | None = None,
        min_parallel_seconds: float | None = None,
        range_seconds: float | None = None,
        hwaccel: HWAccel | None = None,
    ) -> None:
        self.sampling = sampling
        self.hwaccel = hwaccel  # GPU decoding (NVDEC) for the frames this process decodes itself
        self.frame_limit = frame_limit
        self.max_pixels = max_pixels
        self.threads = threads
        self.workers = decode_workers_from_env() if workers is None else max(1, workers)
        self.min_parallel_seconds = (
            MIN_PARALLEL_SECONDS if min_parallel_seconds is None else min_parallel_seconds
        )
        seconds = RANGE_SECONDS if range_seconds is None else range_seconds
        self.range_points = max(1, min(MAX_RANGE_FRAMES, round(seconds * sampling.fps)))

    @property
    def frame_cap(self) -> int:
        """How many frames one video may give at most."""
        return self.sampling.frame_cap(self.frame_limit)

    def __call__(self, path: Path) -> Generator[Frame, None, None]:
        ranges: list[GridRange] = [(0, None)]
        if self.workers > 1 and not self.sampling.scene:
            ranges = self.plan(path)
        first = self._decode(path, ranges[0])  # opens the file now: bad input fails here
        if len(ranges) == 1:
            return first
        return RangeReader(self, path, ranges).frames(first)

    def plan(self, path: Path) -> list[GridRange]:
        """The ranges ``path`` is decoded in (one, unless it is long enough to decode in parallel)."""
        duration = duration_of(path, self.max_pixels)
        if duration is None or duration < self.min_parallel_seconds:
            return [(0, None)]
        return plan_ranges(self.sampling, duration, self.range_points)

    def _decode(self, path: Path, points: GridRange) -> Generator[Frame, None, None]:
        # skip_unneeded: bit-identical samples, only less decoding (also with --exact-frames)
        return sample_frames(
            path,
            self.sampling,
            frame_limit=self.frame_limit,
            max_pixels=self.max_pixels,
            threads=self.threads,
            skip_unneeded=True,
            points=None if points == (0, None) else points,
            hwaccel=self.hwaccel,
        )


class _Worker:
    """One range-worker process and the thread that moves its frames into a bounded queue."""

    def __init__(self, job: RangeJob, maxsize: int, stop: threading.Event) -> None:
        self.queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=maxsize)
        self.stop = stop
        package_root = str(Path(__file__).resolve().parents[2])  # the folder holding frameseek/
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        # its own session: a Ctrl-C in the terminal interrupts the parent only, which then stops the workers
        self.process = subprocess.Popen(
            worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, start_new_session=True
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(job.to_json())
            self.process.stdin.close()
        except OSError:  # it died at once: its exit is reported by the pump
            pass
        self.thread = threading.Thread(target=self._pump, name="frameseek-range-reader", daemon=True)
        self.thread.start()

    def _put(self, item: tuple[Any, ...]) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            for tag, index, frame in read_messages(stdout):  # type: ignore[arg-type]
                if not self._put((tag, index, frame)):
                    return
        except FrameseekError as err:
            self._put((None, 0, err))
        except (EOFError, OSError, ValueError):
            if not self.stop.is_set():
                code = self.process.wait()
                self._put((None, 0, DecodeError(f"a range decoder stopped unexpectedly (exit code {code})")))

    def get(self) -> tuple[bytes, int, Frame | None]:
        """The next message; a worker's error is raised here."""
        while True:
            try:
                tag, index, item = self.queue.get(timeout=_POLL_S)
            except queue.Empty:
                if not self.thread.is_alive() and self.queue.empty():
                    raise DecodeError("a range decoder stopped without a result") from None
                continue
            if tag is None:
                raise item
            return tag, index, item

    def shut(self) -> None:
        """Kill the process (if still running), reap it, close its pipe, let the thread end."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.thread.join(timeout=5.0)


class RangeReader:
    """The frames of ``ranges`` (a plan of one video), in time order, from ``reader.workers`` decoders."""

    def __init__(self, reader: FrameReader, path: Path, ranges: list[GridRange]) -> None:
        self.reader = reader
        self.path = path
        self.ranges = ranges
        self.decoders = min(reader.workers, len(ranges))

    def jobs(self) -> list[RangeJob]:
        """What each child decodes: ranges ``w, w + N, w + 2N, ...`` for child ``w`` (1 .. N-1)."""
        n = self.decoders
        return [
            RangeJob(
                path=str(self.path),
                sampling=self.reader.sampling,
                frame_limit=self.reader.frame_limit,
                max_pixels=self.reader.max_pixels,
                ranges=tuple((i, r) for i, r in enumerate(self.ranges) if i % n == w),
            )
            for w in range(1, n)
        ]

    def frames(self, first: Iterator[Frame]) -> Generator[Frame, None, None]:
        """Yield the frames; ``first`` (already open) is range 0, decoded here. Children start lazily."""
        stop = threading.Event()
        workers: list[_Worker] = []
        local: Iterator[Frame] | None = first
        cap = self.reader.frame_cap
        kept = 0
        try:
            for job in self.jobs():  # appended one by one: a failed start still shuts the earlier ones
                workers.append(_Worker(job, self.reader.range_points + 2, stop))
            for i, points in enumerate(self.ranges):
                owner = i % self.decoders
                if owner == 0:
                    if i > 0:
                        local = self.reader._decode(self.path, points)
                    assert local is not None
                    for frame in local:
                        yield frame
                        kept += 1
                        if kept >= cap:
                            return
                    continue
                worker = workers[owner - 1]
                while True:
                    tag, index, item = worker.get()
                    if tag == FRAME and index == i and item is not None:
                        yield item
                        kept += 1
                        if kept >= cap:
                            return
                    elif tag == DONE and index == i:
                        break
                    elif tag == EXIT:
                        raise DecodeError(f"a range decoder ended before range {i}")
                    else:
                        raise DecodeError(f"a range decoder sent range {index} while {i} was expected")
        finally:
            stop.set()
            close = getattr(local, "close", None)
            if close is not None:
                close()
            for worker in workers:
                worker.shut()
