"""A small fuzz run over corrupted videos: bit flips, zeroed ranges, swapped chunks and truncations.

Each corrupted file goes through what indexing does first (``probe``, then ``iter_frames``) in a worker
process, under a time limit and a memory limit. It must either give frames or raise ``DecodeError`` (one
line, naming the file): never another exception, a crash, a hang or a runaway allocation.
"""

from __future__ import annotations

import json
import random
import select
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

try:  # tests/ is not a package: pytest puts it on sys.path
    from videos import BIKES, make_video
except ImportError:  # pragma: no cover - if tests/ becomes a package
    from tests.videos import BIKES, make_video

pytestmark = pytest.mark.slow  # subprocesses (CLI runs, workers): outside the `-m "not slow"` lane

CASE_TIMEOUT_S = 20.0
WORKER_MEMORY_BYTES = 4 * 1024**3

WORKER = textwrap.dedent(
    """
    import json, resource, sys
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # a runaway allocation fails instead of swapping

    from frameseek.errors import DecodeError
    from frameseek.video.decode import iter_frames, probe

    for line in sys.stdin:
        path = line.rstrip("\\n")
        try:
            info = probe(path)
            frames = [f.time for f in iter_frames(path, fps=2.0, max_side=160)]
            reply = {"status": "frames", "frames": len(frames), "width": info.width, "height": info.height}
        except DecodeError as exc:
            reply = {"status": "decode_error", "message": str(exc)}
        except BaseException as exc:
            reply = {"status": "other", "type": type(exc).__name__, "message": " ".join(str(exc).split())}
        print(json.dumps(reply), flush=True)
    """
)


class DecodeWorker:
    """A long-lived decoding process (imports once); restarted after a hang or a crash."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        with open(self.log, "ab") as stderr:
            return subprocess.Popen(
                [sys.executable, "-c", WORKER, str(WORKER_MEMORY_BYTES)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )

    def decode(self, path: Path, timeout: float = CASE_TIMEOUT_S) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.close()
            return {"status": "timeout"}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait(timeout=10)
            self.proc = None
            return {"status": "crash", "exit": code}
        return dict(json.loads(line))

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.communicate(timeout=10)
            self.proc = None


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DecodeWorker]:
    w = DecodeWorker(tmp_path_factory.mktemp("fuzz-worker") / "stderr.log")
    yield w
    w.close()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The real sample video (H.264 MP4, index at the end) or, without it, a synthesized one."""
    if BIKES.is_file():
        return BIKES.read_bytes()
    path = tmp_path_factory.mktemp("fuzz-sample") / "sample.mp4"
    make_video(path, 4.0, size=(320, 180), cuts=(1.0, 2.5))
    return path.read_bytes()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-cases")


# ---------------------------------------------------------------------------------------- mutations


@dataclass(frozen=True)
class Mutation:
    """How to damage the sample: ``kind`` plus fractions of the file size (so any sample works)."""

    kind: str
    a: float
    b: float
    seed: int

    def apply(self, data: bytes) -> bytes:
        n = len(data)
        rng = random.Random(self.seed)
        out = bytearray(data)
        if self.kind == "flip":  # a few bits anywhere (header, index and payload alike)
            for _ in range(1 + int(self.a * 64)):
                out[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif self.kind == "flip-tail":  # the MP4 index (moov) is in the last few KB: flip bits there
            tail = max(64, min(n, int(n * 0.02)))
            for _ in range(1 + int(self.a * 32)):
                out[n - 1 - rng.randrange(tail)] ^= 1 << rng.randrange(8)
        elif self.kind == "zero":  # a zeroed range (up to a quarter of the file)
            start = int(self.a * n)
            end = min(n, start + 1 + int(self.b * n / 4))
            out[start:end] = bytes(end - start)
        elif self.kind == "swap":
            size = 1 + int(self.b * n / 8)
            i, j = rng.randrange(n - size), rng.randrange(n - size)
            out[i : i + size], out[j : j + size] = out[j : j + size], out[i : i + size]
        elif self.kind == "truncate":
            return bytes(out[: int(self.a * n)])
        elif self.kind == "truncate-flip":
            cut = bytearray(out[: max(1, int(self.a * n))])
            for _ in range(1 + int(self.b * 16)):
                cut[rng.randrange(len(cut))] ^= 1 << rng.randrange(8)
            return bytes(cut)
        return bytes(out)


FRACTION = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, allow_infinity=False)
MUTATIONS = st.builds(
    Mutation,
    kind=st.sampled_from(["flip", "flip-tail", "zero", "swap", "truncate", "truncate-flip"]),
    a=FRACTION,
    b=FRACTION,
    seed=st.integers(min_value=0, max_value=2**31 - 1),
)


def _check(reply: dict[str, Any], path: Path, mutation: Mutation | str) -> None:
    status = reply["status"]
    assert status in ("frames", "decode_error"), f"{mutation}: {reply}"
    if status == "decode_error":
        message = reply["message"]
        assert "\n" not in message and path.name in message, message
    else:
        assert reply["frames"] >= 1 and reply["width"] > 0 and reply["height"] > 0, reply


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
@given(mutation=MUTATIONS)
def test_corrupted_video_gives_frames_or_a_decode_error(
    worker: DecodeWorker, sample: bytes, scratch: Path, mutation: Mutation
) -> None:
    path = scratch / f"{mutation.kind}.mp4"
    path.write_bytes(mutation.apply(sample))
    _check(worker.decode(path), path, mutation)


@pytest.mark.parametrize(
    "cut", [1, 8, 40, 2_000, 100_000, -4_000, -600, -1], ids=lambda c: f"cut{c:+d}" if c < 0 else f"first{c}"
)
def test_truncations_at_structure_boundaries(
    worker: DecodeWorker, sample: bytes, scratch: Path, cut: int
) -> None:
    """Inside the first box, after it, inside the payload, inside and at the end of the index."""
    path = scratch / "truncated.mp4"
    path.write_bytes(sample[:cut])
    reply = worker.decode(path)
    _check(reply, path, f"cut {cut}")
    if 0 < cut <= 100_000:
        assert reply["status"] == "decode_error"  # no index (moov) yet: nothing can be located


def test_the_worker_reports_hangs_and_crashes(worker: DecodeWorker, scratch: Path) -> None:
    """The harness itself: a missing file is a SourceError ("other"), which _check would reject."""
    reply = worker.decode(scratch / "does-not-exist.mp4")
    assert reply == {"status": "other", "type": "SourceError", "message": reply["message"]}
    with pytest.raises(AssertionError):
        _check(reply, scratch / "does-not-exist.mp4", "missing")
