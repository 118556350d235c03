"""Indexing on a real local Ray cluster (``RayDistributor``) and the keep-going path of ``frameseek index``.

One cluster (2 CPUs) serves the module; the library built on it must equal the in-process one.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from frameseek import cli
from frameseek.errors import InputError
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import create_model
from frameseek.search import Searcher
from frameseek.storage.library import library_entries
from frameseek.storage.visual import VideoIndex
from frameseek.video.sampling import Sampling
from videos import MSRVTT_DIR, make_video  # tests/ is on sys.path (like conftest)

CLIPS = ("video740.mp4", "video1672.mp4")  # 11 s and 14 s at 298x224: about 25 frames at 1 fps


def _videos(folder: Path, *, bad: bool = False) -> Path:
    """Two MSR-VTT clips and a synthetic video (and random bytes named bad.mp4) in ``folder``."""
    folder.mkdir(parents=True)
    for name in CLIPS:
        if not (MSRVTT_DIR / name).is_file():
            pytest.skip(f"sample clip {MSRVTT_DIR / name} is not available")
        shutil.copy(MSRVTT_DIR / name, folder / name)
    make_video(folder / "synthetic.mp4", seconds=3.0, size=(160, 96))
    if bad:
        (folder / "bad.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    return folder


@pytest.fixture(scope="module")
def model() -> DualEncoder:
    return create_model("lite")


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    ray = pytest.importorskip("ray")
    started = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never a stray one
    print(f"local Ray cluster up in {time.perf_counter() - started:.1f} s")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray-home")


@pytest.fixture(scope="module")
def distributor(cluster: object, ray_home: Path) -> Iterator[object]:
    from frameseek.indexing.ray_distributor import RayDistributor

    with RayDistributor(model="lite", home=ray_home) as d:
        yield d


def _by_sha(library: str) -> dict[str, VideoIndex]:
    return {e["video_sha256"]: VideoIndex.load(Path(e["index_folder"])) for e in library_entries(library)}


@pytest.mark.slow
def test_a_local_cluster_builds_the_same_library_as_one_process(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model: DualEncoder,
    distributor: object,
    ray_home: Path,
) -> None:
    videos = _videos(tmp_path / "videos")
    monkeypatch.setenv("FRAMESEEK_HOME", str(tmp_path / "sequential-home"))
    Searcher(model).add([str(videos)], "trio")
    sequential = _by_sha("trio")

    monkeypatch.setenv("FRAMESEEK_HOME", str(ray_home))  # the cluster was started with another home
    calls: list[tuple[str, float, float | None]] = []
    started = time.perf_counter()
    outcomes, metrics = Searcher(model, distributor=distributor).add(  # type: ignore[arg-type]
        [str(videos)], "trio", progress=lambda *call: calls.append(call)
    )
    print(f"3 videos on the cluster in {time.perf_counter() - started:.1f} s: {metrics.stages}")
    assert [o.error for o in outcomes] == [None, None, None]
    assert [o.job.source.title for o in outcomes] == ["synthetic", "video1672", "video740"]  # sources' order
    assert calls == [("index", float(n), 3.0) for n in range(4)]  # videos done / total on the driver
    assert pickle.loads(pickle.dumps(outcomes[0])).index.times.tolist() == outcomes[0].index.times.tolist()

    on_cluster = _by_sha("trio")
    assert on_cluster.keys() == sequential.keys()
    for sha, index in on_cluster.items():
        assert index.folder.is_relative_to(ray_home / "indexes")  # the driver's FRAMESEEK_HOME got them
        assert index.video_path == sequential[sha].video_path
        np.testing.assert_array_equal(index.times, sequential[sha].times)
        np.testing.assert_allclose(index.embeddings, sequential[sha].embeddings, atol=1e-5)
        assert len(list((index.folder / "thumbs").glob("*.jpg"))) == len(index)
    assert metrics.frames_encoded == sum(len(i) for i in on_cluster.values())


@pytest.mark.slow
def test_a_dead_worker_is_replaced_and_its_video_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: DualEncoder, distributor: object, ray_home: Path
) -> None:
    import ray

    from frameseek.indexing.ray_distributor import RayDistributor

    assert isinstance(distributor, RayDistributor)
    monkeypatch.setenv("FRAMESEEK_HOME", str(ray_home))
    video = tmp_path / "crash.mp4"
    make_video(video, seconds=2.0, size=(96, 64))
    searcher = Searcher(model, sampling=Sampling(fps=2.0), distributor=distributor)
    distributor.start(searcher.spec, local=searcher.runner)
    monkeypatch.setattr(distributor, "retries", 0)
    ray.kill(distributor._slots[0].actor)  # the worker the next job goes to is dead
    outcomes, _ = searcher.add([str(video)], "crash", keep_going=True)
    assert outcomes[0].index is None
    assert outcomes[0].error is not None and "the Ray worker indexing it died (1 try" in outcomes[0].error

    monkeypatch.setattr(distributor, "retries", 1)
    ray.kill(distributor._slots[0].actor)  # its replacement, too
    outcomes, _ = searcher.add([str(video)], "crash", keep_going=True)
    assert outcomes[0].error is None and outcomes[0].index is not None and len(outcomes[0].index) == 4
    assert [e["title"] for e in library_entries("crash")] == ["crash"]


@pytest.mark.slow
def test_frameseek_index_ray_json_reports_the_bad_video_and_lands_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], distributor: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from frameseek.indexing.ray_distributor import RayDistributor

    assert isinstance(distributor, RayDistributor)
    distributor.close()  # its workers hold both CPUs of the test cluster; the command starts its own
    videos = _videos(tmp_path / "videos", bad=True)
    home = tmp_path / "cli-home"
    monkeypatch.setenv("FRAMESEEK_HOME", str(tmp_path / "elsewhere"))  # --home wins (and is undone after)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["index", str(videos), "--ray", "--home", str(home), "--library-name", "mixed", "--json"])
    assert exit_info.value.code in (0, None)
    data = json.loads(capsys.readouterr().out)
    assert {"videos", "failed", "library", "metrics"} <= data.keys()
    assert data["library"] == "mixed"
    assert sorted(Path(v["video"]).name for v in data["videos"]) == ["synthetic.mp4", *sorted(CLIPS)]
    assert all(v["frames"] > 0 and v["index"].startswith(str(home)) for v in data["videos"])
    assert [Path(f["video"]).name for f in data["failed"]] == ["bad.mp4"]
    assert "\n" not in data["failed"][0]["error"] and "bad" in data["failed"][0]["error"]
    assert data["metrics"]["frames_encoded"] == sum(v["frames"] for v in data["videos"])
    monkeypatch.setenv("FRAMESEEK_HOME", str(home))
    assert len(library_entries("mixed")) == 3


def test_in_process_indexing_keeps_going_past_a_bad_video(
    tmp_path: Path, fs_home: Path, capsys: pytest.CaptureFixture[str], model: DualEncoder
) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    make_video(folder / "good.mp4", seconds=2.0, size=(96, 64))
    (folder / "bad.mp4").write_bytes(b"\x00not a video" * 100)
    outcomes, _ = Searcher(model).add([str(folder)], "kept", keep_going=True)
    assert [(o.job.source.title, o.index is not None, o.error is not None) for o in outcomes] == [
        ("bad", False, True),
        ("good", True, False),
    ]
    assert [e["title"] for e in library_entries("kept")] == ["good"]

    only_bad = tmp_path / "only-bad"
    only_bad.mkdir()
    shutil.copy(folder / "bad.mp4", only_bad / "bad.mp4")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["index", str(only_bad), "--library-name", "none", "--json"])
    assert exit_info.value.code == 1  # every video failed
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["videos"] == [] and [Path(f["video"]).name for f in data["failed"]] == ["bad.mp4"]
    assert "no video was indexed (1 failed)" in captured.err


def test_frameseek_never_imports_ray_and_asks_for_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    code = (
        "import sys, frameseek, frameseek.search, frameseek.cli, frameseek.indexing.ray_distributor; "
        "sys.exit(any(m == 'ray' or m.startswith('ray.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], env=dict(os.environ), check=False).returncode == 0

    from frameseek.indexing.ray_distributor import RayDistributor

    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    with pytest.raises(InputError, match=r"install frameseek\[ray\]"):
        RayDistributor(model="lite")
