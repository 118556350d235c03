"""Interruptions: SIGKILL of `frameseek index` mid-way, Ctrl-C (SIGINT), and the lock a killed process held.

A killed indexer leaves its temporary thumbnails and its lock file behind. The next run must neither
trust that partial work (it rebuilds, and publishes a complete index) nor trip over it (the lock is an
``flock``, released by the kernel when its holder dies; the stale temporaries are removed under the lock).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from frameseek.storage import VideoIndex

try:  # tests/ is not a package: pytest puts it on sys.path
    from reliability_support import (
        assert_nothing_half_written,
        cli_command,
        cli_env,
        complete_indexes,
        leftovers,
        lite_model_ref,
        run_cli,
    )
    from videos import make_video
except ImportError:  # pragma: no cover - if tests/ becomes a package
    from tests.reliability_support import (
        assert_nothing_half_written,
        cli_command,
        cli_env,
        complete_indexes,
        leftovers,
        lite_model_ref,
        run_cli,
    )
    from tests.videos import make_video

pytestmark = pytest.mark.slow  # subprocesses (CLI runs, workers): outside the `-m "not slow"` lane

SECONDS = 40.0
FPS = 2  # 80 frames: a few seconds of encoding, long enough to be caught mid-way
FRAMES = int(SECONDS * FPS)
START_TIMEOUT_S = 240.0


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> str:
    return lite_model_ref(tmp_path_factory)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("interrupt") / "long.mp4"
    make_video(path, SECONDS, fps=10, size=(96, 64))
    return path


def _index_args(video: Path, lite: str) -> list[str]:
    return ["index", str(video), "--fps", str(FPS), "--model", lite, "--json"]


def _thumbnails_in_progress(home: Path) -> list[Path]:
    """Thumbnails written by a running build (its temporary ``.thumbs-*`` folder)."""
    return sorted((home / "indexes").glob("*/*/visual/.thumbs-*/*.jpg"))


@pytest.fixture
def indexer(tmp_path: Path, long_video: Path, lite: str) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """`frameseek index` started in the background, returned once it is decoding and encoding frames."""
    home = tmp_path / "home"
    proc = subprocess.Popen(
        cli_command(*_index_args(long_video, lite)),
        env=cli_env(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _thumbnails_in_progress(home):
            if proc.poll() is not None:
                pytest.fail(f"the indexer ended (exit {proc.returncode}) before it could be interrupted")
            if time.monotonic() > deadline:
                pytest.fail("the indexer wrote no frame within the time limit")
            time.sleep(0.02)
        yield proc, home
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)


def test_sigkill_mid_way_then_the_next_run_rebuilds(
    indexer: tuple[subprocess.Popen[str], Path], long_video: Path, lite: str
) -> None:
    proc, home = indexer
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    # what the killed run left: no published index, a lock file, temporary thumbnails
    assert complete_indexes(home) == []
    [lock_file] = sorted((home / "indexes").glob("*/*/visual/*.lock"))
    assert any(".thumbs-" in item for item in leftovers(home))

    # the stale lock does not block: flock locks die with their process
    lock = FileLock(str(lock_file), timeout=2)
    with lock:
        assert lock.is_locked

    second = run_cli(_index_args(long_video, lite), home)
    assert second.returncode == 0, second.stderr
    assert second.stderr == ""
    data = json.loads(second.stdout)
    [video] = data["videos"]
    assert video["frames"] == FRAMES
    assert data["metrics"]["index_reused"] is False  # rebuilt, the partial work was not trusted

    [folder] = complete_indexes(home)
    assert str(folder) == video["index"]
    index = VideoIndex.load(folder)
    assert len(index) == FRAMES
    assert index.times[0] == 0.0 and index.times[-1] == pytest.approx(SECONDS - 1 / FPS, abs=1e-3)
    assert len(list((folder / "thumbs").glob("*.jpg"))) == FRAMES
    assert_nothing_half_written(home, allow_index=True)  # the killed run's temporaries are gone too


def test_ctrl_c_exits_130_with_one_line_and_nothing_half_written(
    indexer: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, home = indexer
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.splitlines() == ["interrupted"], stderr
    assert stdout == ""
    assert_nothing_half_written(home, allow_index=False)
    # the lock was released on the way out
    for lock_file in (home / "indexes").glob("*/*/visual/*.lock"):
        with FileLock(str(lock_file), timeout=0):
            pass


def test_discard_stale_temporaries_removes_only_what_a_writer_of_that_target_leaves(tmp_path: Path) -> None:
    """The clean-up the next build runs under the index lock: its own leftovers, nothing of a neighbour."""
    import tempfile

    from frameseek.system.atomic import atomic_dir, discard_stale_temporaries

    target = tmp_path / "abc123-def456"
    stale = [
        Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=tmp_path)),  # atomic_dir's
        Path(tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=tmp_path)[1]),  # atomic_path's
        tmp_path / f".{target.name}.old-4242",  # atomic_dir's replaced copy
        Path(tempfile.mkdtemp(prefix=f".thumbs-{target.name}-", dir=tmp_path)),  # the build's thumbnails
    ]
    stale[2].mkdir()
    kept = [
        tmp_path / f".{target.name}.extra.abcdefgh.tmp",  # another target's temporary ("<name>.extra")
        tmp_path / ".thumbs-abc123-other-xyz",  # another index's build in progress
        tmp_path / f"{target.name}.lock",
    ]
    for path in kept[:2]:
        path.mkdir()
    kept[2].touch()
    with atomic_dir(target) as tmp:
        (tmp / "meta.json").write_text("{}")
    assert sorted(discard_stale_temporaries(target, f".thumbs-{target.name}-")) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, *(p.name for p in kept)])
    assert (target / "meta.json").is_file()
