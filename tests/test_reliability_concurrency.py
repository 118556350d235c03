"""Concurrency: two processes indexing one video at once, and many threads querying one Searcher.

The two processes are real CLI runs (``frameseek.cli.main``) with one instrumentation: just before taking
the index lock, each writes a marker and waits until both are there, so they really do race for the lock
(without it, one interpreter could finish importing torch long after the other finished indexing).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from frameseek.search import Searcher, SearchResponse
from frameseek.storage import VideoIndex
from frameseek.video.sampling import Sampling

try:  # tests/ is not a package: pytest puts it on sys.path
    from reliability_support import (
        assert_nothing_half_written,
        cli_env,
        complete_indexes,
        lite_model_ref,
        shared_lite_model,
    )
    from videos import make_video
except ImportError:  # pragma: no cover - if tests/ becomes a package
    from tests.reliability_support import (
        assert_nothing_half_written,
        cli_env,
        complete_indexes,
        lite_model_ref,
        shared_lite_model,
    )
    from tests.videos import make_video

pytestmark = pytest.mark.slow  # subprocesses (CLI runs, workers): outside the `-m "not slow"` lane

BARRIER_TIMEOUT_S = 240.0

# `python -m frameseek.cli` plus a barrier in front of the index lock (see the module docstring).
RACING_CLI = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path

    import frameseek.storage.store as store

    real_lock_for = store.lock_for

    def lock_for(folder):
        if "visual" not in Path(folder).parts:  # a text track's lock: not the race under test
            return real_lock_for(folder)
        markers = Path(os.environ["RACE_DIR"])
        (markers / f"ready-{os.getpid()}").write_text(str(folder))
        deadline = time.monotonic() + float(os.environ["RACE_TIMEOUT"])
        while len(list(markers.glob("ready-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        return real_lock_for(folder)

    store.lock_for = lock_for
    from frameseek.cli import main

    main(sys.argv[1:])
    """
)


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> str:
    return lite_model_ref(tmp_path_factory)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("race") / "clip.mp4"
    make_video(path, 8.0, fps=10, size=(96, 64), cuts=(2.0, 4.0, 6.0))
    return path


def test_two_processes_index_one_video_into_one_index(tmp_path: Path, clip: Path, lite: str) -> None:
    home, race = tmp_path / "home", tmp_path / "race"
    race.mkdir()
    env = cli_env(home, {"RACE_DIR": str(race), "RACE_TIMEOUT": str(BARRIER_TIMEOUT_S)})
    command = [sys.executable, "-c", RACING_CLI, "index", str(clip), "--fps", "2", "--model", lite, "--json"]
    procs = [
        subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=BARRIER_TIMEOUT_S + 120) for p in procs]
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
        assert stderr == ""
    markers = sorted(race.glob("ready-*"))
    assert len(markers) == 2, "both processes must have reached the index lock"
    assert len({m.read_text() for m in markers}) == 1  # and it was the same index folder

    reports = [json.loads(stdout) for stdout, _ in outputs]
    assert sorted(r["metrics"]["index_reused"] for r in reports) == [False, True]  # one built, one waited
    videos = [r["videos"] for r in reports]
    assert videos[0] == videos[1]
    [video] = videos[0]
    assert video["frames"] == 16

    [folder] = complete_indexes(home)
    assert str(folder) == video["index"]
    index = VideoIndex.load(folder)
    assert len(index) == 16 and len(list((folder / "thumbs").glob("*.jpg"))) == 16
    assert np.allclose(np.linalg.norm(index.embeddings, axis=1), 1.0, atol=1e-4)
    assert_nothing_half_written(home, allow_index=True)
    library = json.loads((home / "libraries" / "default" / "library.json").read_text(encoding="utf-8"))
    assert [v["index_folder"] for v in library["videos"]] == [str(folder)]  # recorded once, not twice


QUERIES = [
    "a red wall",
    "a blue screen with a white square",
    "a yellow field",
    "green trees",
    "un perro en la playa",
    "自転車に乗った人",
    "🚴 on a 🏖️",
    "a person riding a bicycle " * 40,
]


Signature = tuple[list[tuple[float, float, float]], np.ndarray]


def _signature(response: SearchResponse) -> Signature:
    """Where the hits are (exact) and their scores (compared with a float tolerance)."""
    return [(r.time, r.start, r.end) for r in response.results], np.array([r.score for r in response.results])


def _same(a: Signature, b: Signature) -> bool:
    return a[0] == b[0] and np.allclose(a[1], b[1], atol=1e-5)


def test_many_threads_query_one_searcher(
    fs_home: Path, clip: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    searcher = Searcher(shared_lite_model(tmp_path_factory), sampling=Sampling(fps=2.0))
    searcher.index(clip)  # built once; the threads all reuse it
    expected = {q: _signature(searcher.search(clip, q, top_k=3)) for q in QUERIES}
    expected_library: dict[str, Signature] = {}
    searcher.add([clip], "race")
    for q in QUERIES:
        expected_library[q] = _signature(searcher.search_library(q, library="race", top_k=3))

    jobs = [(q, kind) for _ in range(4) for q in QUERIES for kind in ("video", "library")]
    started = time.perf_counter()

    def run(job: tuple[str, str]) -> Signature:
        q, kind = job
        if kind == "video":
            return _signature(searcher.search(clip, q, top_k=3))
        return _signature(searcher.search_library(q, library="race", top_k=3))

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(run, jobs))
    for (q, kind), signature in zip(jobs, got, strict=True):
        assert _same(signature, (expected if kind == "video" else expected_library)[q]), (q, kind)
    assert time.perf_counter() - started < 120
    assert len(complete_indexes(fs_home)) == 1
    assert_nothing_half_written(fs_home, allow_index=True)
