"""Runners built from a picklable ``RunnerSpec`` (``frameseek.indexing.spec``), and the store's one-call
get-or-build that they (and every track) use."""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path

import pytest

from frameseek.errors import InputError
from frameseek.indexing.distributor import InProcessDistributor
from frameseek.indexing.spec import RunnerSpec
from frameseek.search import Searcher
from frameseek.storage.store import get_or_build
from frameseek.video.sampling import Sampling
from test_search import shared_model  # tests/ is on sys.path (like conftest)
from videos import make_video


def test_a_searchers_spec_travels_and_builds_a_runner_with_its_settings(tmp_path: Path) -> None:
    searcher = Searcher(shared_model(), sampling=Sampling(fps=2.0), batch_size=4, decode_threads=2)
    spec = pickle.loads(pickle.dumps(searcher.spec))
    assert spec == searcher.spec
    assert (spec.model, spec.sampling, spec.batch_size, spec.decode_threads) == (
        "lite",
        Sampling(fps=2.0),
        4,
        2,
    )
    runner = spec.build()  # where it runs: a handle that loads the model on first use
    assert runner.encoder.batch_size == 4 and runner.decode_threads == 2 and runner.limits == searcher.limits
    assert searcher.runner.encoder.model is searcher.model  # this process's runner: the model it holds


def test_a_checkpoint_folder_travels_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ckpt").mkdir()
    monkeypatch.chdir(tmp_path)
    assert RunnerSpec("ckpt").model == str(tmp_path / "ckpt")
    assert RunnerSpec("lite").model == "lite"
    with pytest.raises(InputError, match="batch size"):
        RunnerSpec("lite", batch_size=0)


def test_the_in_process_distributor_runs_on_the_searchers_runner(fs_home: Path, tmp_path: Path) -> None:
    distributor = InProcessDistributor()
    searcher = Searcher(shared_model(), sampling=Sampling(fps=2.0), distributor=distributor)
    assert distributor.runner(searcher.spec, searcher.runner) is searcher.runner
    video = tmp_path / "clip.mp4"
    make_video(video, seconds=2.0, size=(96, 64))
    (outcome,) = searcher.index(str(video))
    assert outcome.index is not None and len(outcome.index) == 4
    assert outcome.index.model_fingerprint == searcher.model.fingerprint

    # without a local runner, one is built from the spec and kept for any spec that builds the same runner
    built = distributor.runner(searcher.spec)
    assert built is not searcher.runner
    assert distributor.runner(searcher.spec.but(sampling=Sampling(fps=3.0))) is built
    assert distributor.runner(searcher.spec.but(batch_size=2)) is not built


def test_get_or_build_builds_an_entry_once_while_racers_wait_and_reuse_it(tmp_path: Path) -> None:
    path = tmp_path / "track" / "key.json"
    builds: list[int] = []

    def load() -> str | None:
        return path.read_text() if path.is_file() else None

    def build() -> str:
        builds.append(threading.get_ident())
        time.sleep(0.2)  # the other callers reach the lock meanwhile
        path.write_text("built")
        return "built"

    found: list[tuple[str, bool]] = []
    threads = [
        threading.Thread(target=lambda: found.append(get_or_build(path, load, build))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert sorted(found) == [("built", False), ("built", False), ("built", True)]
    assert get_or_build(path, load, build) == ("built", False) and len(builds) == 1
