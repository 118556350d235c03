"""fast_decode's decoder options and range-parallel reading: exact PTS (vs ffprobe), one pass's frames.

Videos: the real ``bikes.mp4``, a VFR H.264 with B-frames and an open-GOP H.264 with B-pyramids.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import random
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from frameseek.errors import DecodeError, InputError, SourceError
from frameseek.indexing import reader as reader_module
from frameseek.indexing.reader import FrameReader, RangeReader, decode_workers_from_env
from frameseek.video.decode import Frame, iter_frames, probe, sample_frames
from frameseek.video.ranges import RangeJob, plan_ranges
from frameseek.video.sampling import Sampling
from videos import make_video, require_bikes, require_ffmpeg

LIMITS: dict[str, Any] = {"frame_limit": 10**6, "max_pixels": 10**9}


def ffprobe_times(path: Path, *decoder_options: str) -> list[float]:
    """ffprobe's decoded frame times (``best_effort_timestamp_time`` - stream ``start_time``).

    ``decoder_options`` go to ffprobe's decoder, e.g. ``-skip_frame noref``: an independent account of
    which frames such a decoder outputs.
    """
    require_ffmpeg()
    head = ["ffprobe", "-v", "error", "-select_streams", "v:0"]
    run = subprocess.run(
        [*head, "-show_entries", "stream=start_time", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    start = float(run.stdout.strip().strip(",") or 0.0)
    run = subprocess.run(
        [*head, *decoder_options, "-show_entries", "frame=best_effort_timestamp_time", "-of", "csv=p=0",
         str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    fields = (line.split(",")[0].strip() for line in run.stdout.splitlines())
    return [float(f) - start for f in fields if f and f != "N/A"]


def reference_grid(
    times: list[float], fps: float, start: float = 0.0, end: float | None = None
) -> list[float]:
    """For each grid time, the first frame time at or after it (deduplicated): an independent reference."""
    times = sorted(t for t in times if t >= start - 1e-9 and (end is None or t < end - 1e-9))
    kept: list[float] = []
    k = 0
    while times and start + k / fps <= times[-1] + 1e-9:
        grid = start + k / fps
        first = next(t for t in times if t >= grid - 1e-9)
        if not kept or first != kept[-1]:
            kept.append(first)
        k += 1
    return kept


class _Videos(dict[str, Path]):
    """The synthetic videos; ``"bikes"`` is looked up only when a test asks for it, so a missing street
    video skips the tests that need it and never the synthetic VFR and open-GOP cases."""

    def __missing__(self, key: str) -> Path:
        if key == "bikes":
            return require_bikes()
        raise KeyError(key)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ranges")
    vfr, open_gop = folder / "vfr_bframes.mp4", folder / "open_gop.mp4"
    make_video(vfr, 12.0, size=(96, 64), vfr=True, cuts=(2.5, 7.1), x264_params="keyint=9:bframes=3")
    make_video(
        open_gop,
        12.0,
        size=(96, 64),
        cuts=(1.3, 4.1, 8.8),
        x264_params="keyint=20:min-keyint=20:scenecut=0:bframes=3:b-pyramid=normal:open-gop=1",
    )
    return _Videos(vfr=vfr, open_gop=open_gop)


def _times(frames: Iterator[Frame] | list[Frame]) -> list[float]:
    return [f.time for f in frames]


def _same(a: list[Frame], b: list[Frame]) -> None:
    assert _times(a) == _times(b)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))


def _reader(sampling: Sampling, workers: int = 1, **kwargs: Any) -> FrameReader:
    return FrameReader(
        sampling, workers=workers, min_parallel_seconds=0.0, range_seconds=1.5, **LIMITS, **kwargs
    )


# --- fast_decode's decoder options: exact PTS ---------------------------------------------------------


@pytest.mark.parametrize("name", ["bikes", "vfr", "open_gop"])
@pytest.mark.parametrize("fps", [0.5, 1.0, 3.0, 10.0])
def test_fast_decode_samples_are_exact_ffprobe_pts(videos: dict[str, Path], name: str, fps: float) -> None:
    path = videos[name]
    every = ffprobe_times(path)
    sparse = fps <= (probe(path).fps or 0.0) / 4  # non-reference frames are skipped only on sparse grids
    options = ["-skip_loop_filter", "all", *(["-skip_frame", "noref"] if sparse else [])]
    decoded = ffprobe_times(
        path, *options
    )  # which frames ffmpeg's decoder outputs with fast_decode's options
    got = _times(_reader(Sampling(fps=fps))(path))
    assert got == pytest.approx(reference_grid(decoded, fps), abs=1e-6)
    assert all(min(abs(t - e) for e in every) < 1e-6 for t in got)  # each one a real frame's PTS
    if not sparse:  # the loop filter alone never moves a sample
        assert got == pytest.approx(reference_grid(every, fps), abs=1e-6)


@pytest.mark.parametrize("name", ["bikes", "vfr", "open_gop"])
def test_skipping_the_loop_filter_keeps_every_frame_and_time(videos: dict[str, Path], name: str) -> None:
    path = videos[name]
    for fps in (1.0, 25.0):
        plain = list(iter_frames(path, fps=fps, max_side=None))
        skipped = list(iter_frames(path, fps=fps, max_side=None, skip_loop_filter="all"))
        assert (
            _times(skipped)
            == _times(plain)
            == pytest.approx(reference_grid(ffprobe_times(path), fps), abs=1e-6)
        )


def test_fast_decode_skips_the_loop_filter_and_exact_frames_does_not(videos: dict[str, Path]) -> None:
    path = videos["bikes"]
    full = {f.time: f.image for f in iter_frames(path, fps=25.0)}  # every frame, filtered
    exact = list(sample_frames(path, Sampling(fast_decode=False), **LIMITS))
    assert all(np.array_equal(f.image, full[f.time]) for f in exact)  # --exact-frames: bit-identical
    fast = list(sample_frames(path, Sampling(), **LIMITS))
    differ = [f for f in fast if not np.array_equal(f.image, full[f.time])]
    assert differ  # the option is in effect (P-frames decoded from unfiltered references) ...
    for f in differ:  # ... and costs little: PSNR well above visible damage at full 640 px
        mse = np.mean((f.image.astype(np.float64) - full[f.time].astype(np.float64)) ** 2)
        assert 10 * np.log10(255.0**2 / mse) > 30.0


# --- ranges: a grid split anywhere gives one pass's frames --------------------------------------------


SAMPLINGS = [
    Sampling(),
    Sampling(fps=0.7, start=1.3, end=8.2),
    Sampling(fps=3.0, fast_decode=False),
    Sampling(fps=10.0),
]


@pytest.mark.parametrize("name", ["bikes", "vfr", "open_gop"])
def test_grid_ranges_concatenate_to_one_pass(videos: dict[str, Path], name: str) -> None:
    path = videos[name]
    rng = random.Random(name)
    for sampling in SAMPLINGS:
        whole = list(sample_frames(path, sampling, **LIMITS))
        points = round(12 * sampling.fps) + 2
        for _ in range(3):
            cuts = sorted(rng.sample(range(1, points), 4))
            bounds: list[int | None] = [0, *cuts, None]
            parts = [
                f
                for first, stop in itertools.pairwise(bounds)
                for f in sample_frames(path, sampling, points=(first or 0, stop), **LIMITS)
            ]
            _same(parts, whole)


def test_plan_ranges_covers_the_grid_once() -> None:
    plan = plan_ranges(Sampling(fps=2.0), 60.0, 16)
    assert plan[0][0] == 0 and plan[-1][1] is None
    assert all(a[1] == b[0] for a, b in itertools.pairwise(plan))  # contiguous, no overlap
    assert len(plan) == 8  # 120 grid points before 60 s, 16 per range
    assert plan_ranges(Sampling(fps=1.0, start=10.0, end=30.0), 60.0, 8) == [(0, 8), (8, 16), (16, None)]
    assert plan_ranges(Sampling(scene=True), 60.0, 8) == [(0, None)]
    assert plan_ranges(Sampling(), float("nan"), 8) == [(0, None)]


def test_range_job_round_trips_through_json() -> None:
    job = RangeJob(
        "/x.mp4", Sampling(fps=0.5, start=2.0, fast_decode=False), 10, 20, ((1, (3, 6)), (3, (9, None)))
    )
    assert RangeJob.from_json(job.to_json()) == job


# --- the range-parallel reader --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bikes", "vfr", "open_gop"])
def test_parallel_reader_gives_the_single_pass_frames(videos: dict[str, Path], name: str) -> None:
    path = videos[name]
    for sampling in [*SAMPLINGS, Sampling(fps=2.0, max_frames=9)]:
        single = list(_reader(sampling)(path))
        for workers in (2, 3):
            reader = _reader(sampling, workers)
            assert len(reader.plan(path)) >= workers  # really split
            _same(list(reader(path)), single)
    every = ffprobe_times(path)
    parallel = _times(_reader(Sampling(fps=1.0, fast_decode=False), 2)(path))
    assert parallel == pytest.approx(reference_grid(every, 1.0), abs=1e-6)


class _Recording(reader_module._Worker):
    started: ClassVar[list[reader_module._Worker]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _Recording.started.append(self)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[reader_module._Worker]:
    _Recording.started = []
    monkeypatch.setattr(reader_module, "_Worker", _Recording)
    return _Recording.started


def _all_reaped(workers: list[reader_module._Worker]) -> bool:
    return all(w.process.returncode is not None and not w.thread.is_alive() for w in workers)


def test_parallel_reader_stops_its_workers_when_the_consumer_stops(
    videos: dict[str, Path], recorded: list[reader_module._Worker]
) -> None:
    frames = _reader(Sampling(fps=4.0), 3)(videos["open_gop"])
    for _ in range(3):
        next(frames)
    assert len(recorded) == 2 and all(w.process.poll() is None for w in recorded)
    frames.close()
    assert _all_reaped(recorded)
    # the same when the consumer fails: the generator is closed as it goes away
    recorded.clear()
    with pytest.raises(RuntimeError):
        for _ in _reader(Sampling(fps=4.0), 2)(videos["open_gop"]):
            raise RuntimeError("consumer failed")
    assert len(recorded) == 1 and _all_reaped(recorded)


def test_parallel_reader_raises_a_worker_error_and_reaps_every_worker(
    videos: dict[str, Path],
    recorded: list[reader_module._Worker],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    original = RangeReader.jobs

    def broken_jobs(self: RangeReader) -> list[RangeJob]:
        jobs = original(self)
        return [dataclasses.replace(jobs[0], path=str(tmp_path / "gone.mp4")), *jobs[1:]]

    monkeypatch.setattr(RangeReader, "jobs", broken_jobs)
    with pytest.raises(SourceError, match="not found"):
        list(_reader(Sampling(fps=2.0), 3)(videos["vfr"]))
    assert len(recorded) == 2 and _all_reaped(recorded)


def test_parallel_reader_reports_a_worker_that_dies(
    videos: dict[str, Path], recorded: list[reader_module._Worker]
) -> None:
    frames = _reader(Sampling(fps=2.0), 2)(videos["vfr"])
    next(frames)  # range 0 is decoded here; the worker has just started
    recorded[0].process.kill()
    with pytest.raises(DecodeError, match="stopped"):
        list(frames)
    assert _all_reaped(recorded)


def test_ctrl_c_interrupts_the_parent_which_stops_the_workers(
    videos: dict[str, Path], recorded: list[reader_module._Worker]
) -> None:
    frames = _reader(Sampling(fps=2.0), 3)(videos["vfr"])
    with contextlib.closing(frames), pytest.raises(KeyboardInterrupt):
        for n, _ in enumerate(frames):
            # the terminal's Ctrl-C goes to the foreground process group: the workers are not in it
            assert all(os.getpgid(w.process.pid) != os.getpgid(0) for w in recorded)
            if n == 2:
                raise KeyboardInterrupt
    assert len(recorded) == 2 and _all_reaped(recorded)


def test_workers_do_not_outlive_a_crashed_parent(videos: dict[str, Path], tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, sys
        from frameseek.indexing import reader as r
        from frameseek.video.sampling import Sampling
        started = []
        class W(r._Worker):
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                started.append(self.process.pid)
        r._Worker = W
        frames = r.FrameReader(Sampling(fps=4.0), frame_limit=10**6, max_pixels=10**9, workers=3,
                               min_parallel_seconds=0.0, range_seconds=1.0)({str(videos["open_gop"])!r})
        next(frames)
        print(*started, flush=True)
        os._exit(0)  # no clean-up: as if the parent crashed
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    pids = [int(p) for p in run.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.1)
    assert not any(_running(p) for p in pids)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except FileNotFoundError:
        return False


def test_decode_workers_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(reader_module.DECODE_WORKERS_ENV, raising=False)
    assert decode_workers_from_env() == reader_module.DEFAULT_DECODE_WORKERS
    monkeypatch.setenv(reader_module.DECODE_WORKERS_ENV, "3")
    assert FrameReader(Sampling(), **LIMITS).workers == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(reader_module.DECODE_WORKERS_ENV, bad)
        with pytest.raises(InputError, match=reader_module.DECODE_WORKERS_ENV):
            decode_workers_from_env()


def test_short_videos_and_scene_sampling_decode_in_one_pass(
    videos: dict[str, Path], recorded: list[reader_module._Worker]
) -> None:
    path = videos["vfr"]
    assert FrameReader(Sampling(), workers=2, **LIMITS).plan(path) == [(0, None)]  # 12 s < the threshold
    assert len(list(_reader(Sampling(scene=True, scene_max_gap=2.0), 3)(path))) > 1
    assert recorded == []  # no worker started
