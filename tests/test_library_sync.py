"""A library kept in step with the files: list, remove, prune, watch a folder; pause, resume, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from frameseek import cli
from frameseek.errors import InputError
from frameseek.search import Searcher
from frameseek.storage.library import library_entries, load_library
from frameseek.storage.maintenance import prune, remove_video, scan, watch
from frameseek.video.sampling import Sampling
from reliability_support import cli_command, cli_env, leftovers, lite_model_ref
from test_search import shared_model  # tests/ is on sys.path (like conftest)
from videos import make_video


def _videos(folder: Path, count: int, seconds: float = 2.0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"clip{i}.mp4"
        make_video(path, seconds, fps=10, size=(96, 64), cuts=(0.5 + 0.3 * i,))
        paths.append(path)
    return paths


@pytest.fixture
def searcher(fs_home: Path) -> Searcher:
    return Searcher(shared_model(), sampling=Sampling(fps=2.0))


def test_remove_by_id_prefix_or_path(searcher: Searcher, tmp_path: Path) -> None:
    a, b = _videos(tmp_path / "v", 2)
    searcher.add([a, b], "lib")
    sha = next(e["video_sha256"] for e in library_entries("lib") if e["path"] == str(a.resolve()))
    removed = remove_video("lib", sha[:10])
    assert [e["path"] for e in removed] == [str(a.resolve())]
    remove_video("lib", str(b))
    assert library_entries("lib") == []
    with pytest.raises(InputError, match="has no video"):
        remove_video("lib", "deadbeefdeadbeef")
    with pytest.raises(InputError):
        remove_video("lib", "abc")  # too short to be an id, and no such path


def test_prune_drops_deleted_and_changed_files_and_keeps_touched_ones(
    searcher: Searcher, tmp_path: Path
) -> None:
    a, b, c = _videos(tmp_path / "v", 3)
    searcher.add([a, b, c], "lib")
    a.unlink()  # deleted
    make_video(b, 3.0, fps=10, size=(96, 64))  # replaced by other content
    os.utime(c, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched, same bytes
    report = prune("lib")
    assert sorted((Path(e["path"]).name, why) for e, why in report.removed) == [
        ("clip0.mp4", "missing"),
        ("clip1.mp4", "changed"),
    ]
    assert report.refreshed == 1
    assert [Path(e["path"]).name for e in library_entries("lib")] == ["clip2.mp4"]
    assert prune("lib").refreshed == 0  # the new stamp was remembered


def test_a_scan_indexes_new_and_changed_videos_and_drops_deleted_ones(
    searcher: Searcher, tmp_path: Path
) -> None:
    folder = tmp_path / "watched"
    a, _ = _videos(folder, 2)

    def index_one(path: Path) -> object:
        return searcher.add([path], "w")

    assert sorted(e.kind for e in scan("w", folder, index_one)) == ["indexed", "indexed"]
    assert list(scan("w", folder, index_one)) == []  # nothing new
    _videos(folder / "sub", 1)
    a.unlink()
    (folder / "broken.mp4").write_bytes(b"not a video" * 100)
    events = sorted((e.kind, Path(e.path).name) for e in scan("w", folder, index_one))
    assert events == [("failed", "broken.mp4"), ("indexed", "clip0.mp4"), ("removed", "clip0.mp4")]
    assert {Path(e["path"]).name for e in library_entries("w")} == {"clip0.mp4", "clip1.mp4"}  # sub/clip0 + b
    assert len(load_library("w", searcher.model.fingerprint).videos) == 2


def test_watch_keeps_going_and_does_not_retry_a_bad_file_until_it_changes(
    searcher: Searcher, tmp_path: Path
) -> None:
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "broken.mp4").write_bytes(b"junk" * 100)
    stop = threading.Event()
    events: list[tuple[str, str]] = []

    def run() -> None:
        for event in watch("w", folder, lambda p: searcher.add([p], "w"), interval=0.2, stop=stop):
            events.append((event.kind, Path(event.path).name))

    thread = threading.Thread(target=run)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while ("failed", "broken.mp4") not in events and time.monotonic() < deadline:
            time.sleep(0.05)
        _videos(folder, 1)  # a new video appears while watching
        while ("indexed", "clip0.mp4") not in events and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.6)  # a few more passes
    finally:
        stop.set()
        thread.join(timeout=60)
    assert events.count(("failed", "broken.mp4")) == 1
    assert ("indexed", "clip0.mp4") in events


def test_library_commands(capsys: pytest.CaptureFixture[str], searcher: Searcher, tmp_path: Path) -> None:
    (a,) = _videos(tmp_path / "v", 1)
    searcher.add([a], "cmd")

    def run(*args: str) -> str:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["library", *args])
        captured = capsys.readouterr()
        assert exit_info.value.code in (0, None), captured.err
        return captured.out

    listed = json.loads(run("list", "--library-name", "cmd", "--json"))
    assert [v["file"] for v in listed["videos"]] == ["ok"]
    a.unlink()
    assert "missing" in json.loads(run("list", "--library-name", "cmd", "--json"))["videos"][0]["file"]
    pruned = json.loads(run("prune", "--library-name", "cmd", "--json"))
    assert [item["why"] for item in pruned["removed"]] == ["missing"]


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_a_valid_library_and_the_scan_resumes(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model = lite_model_ref(tmp_path_factory)
    folder = tmp_path / "many"
    _videos(folder, 5, seconds=3.0)
    home = tmp_path / "home"
    env = cli_env(home)
    command = cli_command("library", "watch", str(folder), "--once", "--fps", "4", "--model", model,
                          "--library-name", "big")  # fmt: skip
    for delay in (4.0, 6.0, 8.0):  # model load takes a few seconds: these land mid-scan
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        data = json.loads((home / "libraries" / "big" / "library.json").read_text()) if (
            home / "libraries" / "big" / "library.json"
        ).is_file() else {"videos": []}  # fmt: skip
        for entry in data["videos"]:  # every listed index is complete
            assert (Path(entry["index_folder"]) / "meta.json").is_file()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    entries = json.loads((home / "libraries" / "big" / "library.json").read_text())["videos"]
    assert len(entries) == 5
    assert not [x for x in leftovers(home) if "thumbs" in x]  # what the kills left was cleaned up


@pytest.mark.slow
def test_ctrl_c_pauses_a_scan_and_the_next_run_resumes(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model = lite_model_ref(tmp_path_factory)
    folder = tmp_path / "many"
    _videos(folder, 4, seconds=3.0)
    env = cli_env(tmp_path / "home")
    command = cli_command("library", "watch", str(folder), "--once", "--fps", "4", "--model", model, "--json")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first video is indexed: now pause
    assert json.loads(first)["event"] == "indexed"
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    done_before = 1 + sum(1 for line in rest.splitlines() if json.loads(line)["event"] == "indexed")
    assert done_before < 4
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    indexed = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert len(indexed) == 4 - done_before and all(e["event"] == "indexed" for e in indexed)
