"""The holes an outside probe found (issue 23), each reproduced as the probe did it: the real CLI in a
subprocess, a real ``frameseek serve`` on 127.0.0.1, real video (bikes.mp4) through the real decoder.

A huge ``start``; an embedded subtitle stream with no cues; a ``--device`` that is not there while the index
exists; clip and thumbnail ids used after a restart with narrower ``--media`` (and after they expire); the
scratch folder of a job that failed on its last kill; eight 8192² image queries at once.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from PIL import Image

from service_support import Server, start_server, wait_job
from videos import make_video, require_bikes, require_ffmpeg

REPO_ROOT = Path(__file__).resolve().parents[1]
EMPTY_ASS = (
    "[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname\nStyle: Default,Arial\n\n"
    "[Events]\nFormat: Layer, Start, End, Style, Text\nDialogue: 0,0:00:01.00,0:00:03.00,Default,\n"
)
BROKEN_SRT = "1\n00:00:01,000 --> 00:00:02,000\n\n\n2\n00:00:03,000 --> garbage\n<b>\n"
NO_GPU = "no CUDA GPU is available"


def cli(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m frameseek.cli ARGS`` in a real subprocess, FRAMESEEK_HOME=``home``."""
    environment = {**os.environ, "FRAMESEEK_HOME": str(home), **(env or {})}
    for name in ("FRAMESEEK_DEBUG", "FRAMESEEK_DEVICE"):
        if env is None or name not in env:
            environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "frameseek.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and "unexpected" not in lines[0], lines[0]
    return lines[0]


def mux_subtitles(video: Path, subtitles: Path, target: Path) -> Path:
    """The issue's recipe: ``ffmpeg -i video -i subs -map 0:v -map 1 -c copy target.mkv``."""
    command = [require_ffmpeg(), "-v", "error", "-y", "-i", str(video), "-i", str(subtitles)]
    subprocess.run([*command, "-map", "0:v", "-map", "1", "-c", "copy", str(target)], check=True)
    return target


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bikes.mp4, and bikes with an embedded ASS stream whose only line is empty / a broken SRT stream."""
    folder = tmp_path_factory.mktemp("media")
    scratch = tmp_path_factory.mktemp("subs")  # not beside the videos: no sidecar is found
    shutil.copy(require_bikes(), folder / "bikes.mp4")
    (scratch / "e.ass").write_text(EMPTY_ASS, encoding="utf-8")
    (scratch / "b.srt").write_text(BROKEN_SRT, encoding="utf-8")
    mux_subtitles(folder / "bikes.mp4", scratch / "e.ass", folder / "empty-ass.mkv")
    mux_subtitles(folder / "bikes.mp4", scratch / "b.srt", folder / "broken-srt.mkv")
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("home"), media=[media], extra=["--rate-limit", "1000", "--rate-burst", "1000"]
    )
    yield running
    running.stop()


def connection_of(answer: httpx.Response) -> object:
    """The client side's (address, port) of the connection that carried ``answer``."""
    return answer.extensions["network_stream"].get_extra_info("client_addr")


# ---- 1. a huge start ----------------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["1e15", "1e305", "inf", "nan", "-1"])
def test_a_huge_or_impossible_start_is_one_line_and_exit_2_in_the_cli(tmp_path: Path, start: str) -> None:
    done = cli(tmp_path, "search", str(require_bikes()), "a bike", "--start", start)
    assert done.returncode == 2, done.stderr
    assert "--start must be a number of seconds in [0, 1e+08]" in one_error_line(done)


def test_a_start_beyond_the_end_of_the_video_says_so_in_one_line(tmp_path: Path) -> None:
    done = cli(tmp_path, "search", str(require_bikes()), "a bike", "--start", "1000")
    assert done.returncode == 2 and "no frames were sampled from bikes" in one_error_line(done)


def test_a_huge_start_is_a_422_and_the_same_connection_keeps_serving(server: Server) -> None:
    with server.client() as client:
        first = client.post("/search", json={"source": "bikes.mp4", "query": "a bike"})
        assert first.status_code == 200, first.text
        connection = connection_of(first)
        bodies = [
            '{"source": "bikes.mp4", "query": "a bike", "start": 1e15}',
            '{"source": "bikes.mp4", "query": "a bike", "start": 1e305}',
            '{"source": "bikes.mp4", "query": "a bike", "start": 1e400}',  # inf to Python's JSON reader
            '{"source": "bikes.mp4", "query": "a bike", "start": NaN}',
            '{"source": "bikes.mp4", "query": "a bike", "start": 1, "end": Infinity}',
        ]
        for body in bodies:
            refused = client.post("/search", content=body, headers={"Content-Type": "application/json"})
            assert refused.status_code == 422, (body, refused.text)
            assert "start" in refused.json()["error"] or "end" in refused.json()["error"]
            assert connection_of(refused) == connection
        beyond = client.post("/search", json={"source": "bikes.mp4", "query": "a bike", "start": 5000})
        assert beyond.status_code == 400 and "no frames were sampled" in beyond.json()["error"]
        again = client.post("/search", json={"source": "bikes.mp4", "query": "a bike", "top_k": 1})
        assert again.status_code == 200 and connection_of(again) == connection


def test_an_unexpected_error_is_a_500_and_the_connection_keeps_serving(tmp_path: Path) -> None:
    """A bug's 500 used to make uvicorn close the connection: the client's next request was reset."""
    import uvicorn
    from fastapi import FastAPI

    from frameseek.service import errors

    app = FastAPI()
    errors.install(app)
    app.add_middleware(errors.CatchAll)

    @app.get("/bug")
    def bug() -> dict[str, str]:
        raise RuntimeError("a bug")

    @app.get("/fine")
    def fine() -> dict[str, str]:
        return {"status": "ok"}

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", transport=httpx.HTTPTransport(retries=0)) as c:
            first = c.get("/fine")
            broken = c.get("/bug")
            assert broken.status_code == 500
            assert broken.json() == {"error": "internal error (RuntimeError); the server log has the details"}
            after = c.get("/fine")
            assert after.status_code == 200
            assert connection_of(first) == connection_of(broken) == connection_of(after)
    finally:
        server.should_exit = True
        thread.join(10)


# ---- 2. an embedded subtitle stream with no cues -----------------------------------------------------


@pytest.mark.parametrize("name", ["empty-ass.mkv", "broken-srt.mkv"])
def test_an_embedded_subtitle_stream_without_cues_leaves_a_search_without_subtitles(
    media: Path, tmp_path: Path, name: str
) -> None:
    from frameseek.text.subtitles import load_subtitles

    track, notices = load_subtitles(media / name)
    if name == "empty-ass.mkv":
        assert track is None and notices == [f"the embedded subtitles of {name} have no cues; skipped"]
    done = cli(tmp_path, "search", str(media / name), "a person", "--json")
    assert done.returncode == 0, done.stderr
    assert "unexpected" not in done.stderr and "Traceback" not in done.stderr
    assert json.loads(done.stdout)["results"]


def test_the_service_searches_and_indexes_a_video_whose_subtitles_have_no_cues(server: Server) -> None:
    with server.client() as client:
        answer = client.post("/search", json={"source": "empty-ass.mkv", "query": "a person"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"]
        job = client.post("/index", json={"sources": ["empty-ass.mkv", "broken-srt.mkv"], "library": "subs"})
        assert job.status_code == 202, job.text
        final = wait_job(client, job.json()["id"], ("done", "failed", "cancelled"), timeout=240)
        assert final["state"] == "done", final
        assert sorted(v["title"] for v in final["result"]["videos"]) == ["broken-srt", "empty-ass"]


# ---- 3. a device that is not there -------------------------------------------------------------------


@pytest.mark.slow
def test_a_device_that_is_not_there_is_the_same_error_whether_or_not_the_index_exists(
    tmp_path: Path,
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: a missing device cannot be asked for")
    bikes = str(require_bikes())
    indexed = cli(tmp_path, "index", bikes)
    assert indexed.returncode == 0, indexed.stderr
    indexes = sorted(p.name for p in (tmp_path / "indexes").rglob("*") if p.is_dir())
    new_video = tmp_path / "new.mp4"
    make_video(new_video, seconds=2, fps=10, size=(160, 90))
    runs = {
        "--device cuda, indexed": cli(tmp_path, "search", bikes, "a bike", "--device", "cuda"),
        "--device cuda, new video": cli(tmp_path, "search", str(new_video), "a bike", "--device", "cuda"),
        "--device cuda:0, indexed": cli(tmp_path, "search", bikes, "a bike", "--device", "cuda:0"),
        "FRAMESEEK_DEVICE=cuda, indexed": cli(
            tmp_path, "search", bikes, "a bike", env={"FRAMESEEK_DEVICE": "cuda"}
        ),
        "--library --device cuda": cli(tmp_path, "search", "--library", "a bike", "--device", "cuda"),
        "index --device cuda, new video": cli(tmp_path, "index", str(new_video), "--device", "cuda"),
    }
    for what, done in runs.items():
        assert done.returncode == 2, (what, done.stdout, done.stderr)
        assert NO_GPU in one_error_line(done), what
        assert not done.stdout.strip(), what  # no results, no progress: refused before any work
    # the same line for the same device, and nothing was indexed for the new video
    assert one_error_line(runs["--device cuda, indexed"]) == one_error_line(runs["--device cuda, new video"])
    assert sorted(p.name for p in (tmp_path / "indexes").rglob("*") if p.is_dir()) == indexes
    mps = cli(tmp_path, "search", bikes, "a bike", "--device", "mps")
    assert mps.returncode == 2 and "MPS" in one_error_line(mps)


# ---- 5. image queries: bounded decodes ----------------------------------------------------------------


def big_png() -> str:
    """An 8192² one-bit PNG (some 18 KB) in base64: 200 MB once decoded to RGB."""
    buffer = io.BytesIO()
    Image.new("1", (8192, 8192), 1).save(buffer, "PNG", optimize=True)
    assert len(buffer.getvalue()) < 64 * 1024
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.mark.slow
def test_eight_huge_image_queries_at_once_are_decoded_two_at_a_time(server: Server) -> None:
    """Unbounded (64 slots) the server's RSS rose by 2.4 GB; two decodes at a time, each image shrunk once
    decoded, keep it near 1 GB."""
    image = big_png()
    process = psutil.Process(server.pid)
    with server.client() as client:
        warm = client.post("/search", json={"source": "bikes.mp4", "query": "a bike", "top_k": 1})
        assert warm.status_code == 200
    before = process.memory_info().rss
    peak = before
    answers: list[int] = []
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.005)

    def ask() -> None:
        with server.client() as client:
            answer = client.post("/search", json={"source": "bikes.mp4", "image": image, "top_k": 1})
            answers.append(answer.status_code)

    watcher = threading.Thread(target=watch)
    watcher.start()
    askers = [threading.Thread(target=ask) for _ in range(8)]
    for thread in askers:
        thread.start()
    for thread in askers:
        thread.join()
    done.set()
    watcher.join()
    assert answers == [200] * 8
    growth_gb = (peak - before) / 2**30
    print(f"\n8 concurrent 8192² image queries: server RSS {before / 2**20:.0f} MB, peak +{growth_gb:.2f} GB")
    assert growth_gb < 1.5, f"RSS rose by {growth_gb:.2f} GB"


# ---- 4. ids after a restart with narrower --media, expiry; minor: a failed job's scratch folder ----------


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Server A (--media wide and narrow): a search, a library, an index job SIGKILLed mid-build three
    times over (its attempts set as three kills leave them). Server B: the same home, --media narrow only,
    ids that last 4 s."""
    root = tmp_path_factory.mktemp("restart")
    wide, narrow = root / "wide", root / "narrow"
    wide.mkdir()
    narrow.mkdir()
    shutil.copy(require_bikes(), wide / "bikes.mp4")
    make_video(wide / "long.mp4", seconds=120, fps=10, size=(160, 90))
    make_video(narrow / "short.mp4", seconds=3, fps=10, size=(160, 90))
    home = root / "home"
    first = start_server(home, media=[wide, narrow])
    try:
        with first.client() as client:
            hit = client.post("/search", json={"source": "bikes.mp4", "query": "a bike"}).json()["results"][0]
            assert client.get(hit["thumbnail_url"]).status_code == 200
            for source in ("bikes.mp4", "short.mp4"):
                indexed = client.post("/index", json={"sources": [source], "library": "both"}).json()
                assert wait_job(client, indexed["id"], ("done", "failed"))["state"] == "done"
            job = client.post("/index", json={"sources": ["long.mp4"], "fps": 2}).json()
            deadline = time.monotonic() + 120
            seen = job
            while time.monotonic() < deadline:
                seen = client.get(f"/jobs/{job['id']}").json()
                if seen["state"] == "running" and (seen["progress"]["done"] or 0) > 0:
                    break
                time.sleep(0.05)
            assert seen["state"] == "running", seen
    finally:
        first.stop(signal.SIGKILL)
    scratch = list((home / "indexes").rglob(".thumbs-*"))
    assert scratch, "the killed build left no scratch folder: the test would prove nothing"
    stored = home / "service" / "jobs" / f"{job['id']}.json"
    state = json.loads(stored.read_text(encoding="utf-8"))
    state["attempts"] = 3  # as three kills mid-job leave it
    stored.write_text(json.dumps(state), encoding="utf-8")
    second = start_server(home, media=[narrow], extra=["--id-ttl", "4"])
    try:
        yield {"server": second, "hit": hit, "job": job["id"], "home": home}
    finally:
        second.stop()


@pytest.mark.slow
def test_an_old_clip_or_thumbnail_id_outside_the_new_media_is_403(restarted: dict[str, object]) -> None:
    server, hit = restarted["server"], restarted["hit"]
    assert isinstance(server, Server) and isinstance(hit, dict)
    with server.client() as client:
        search = client.post("/search", json={"source": hit["video"], "query": "a bike"})
        assert search.status_code == 403
        for url in (hit["clip_url"], hit["thumbnail_url"]):
            answer = client.get(url)
            assert answer.status_code == 403, (url, answer.text)
            assert "outside the server's --media folders" in answer.json()["error"]
        edit = client.post("/edits", json={"clips": [hit["clip_id"]], "format": "edl"})
        assert edit.status_code == 403, edit.text


@pytest.mark.slow
def test_a_library_search_issues_ids_only_for_videos_under_the_media(restarted: dict[str, object]) -> None:
    server = restarted["server"]
    assert isinstance(server, Server)
    with server.client() as client:
        answer = client.post(
            "/search", json={"library": "both", "query": "a bike", "top_k": 10, "min_gap": 0}
        )
        assert answer.status_code == 200, answer.text
        hits = answer.json()["results"]
    by_title = {h["title"]: h for h in hits}
    assert {"bikes", "short"} <= set(by_title)
    assert by_title["bikes"]["clip_id"] is None and by_title["bikes"]["thumbnail_id"] is None
    assert by_title["short"]["clip_id"] and by_title["short"]["thumbnail_id"]


@pytest.mark.slow
def test_ids_expire_after_the_id_ttl(restarted: dict[str, object]) -> None:
    server = restarted["server"]
    assert isinstance(server, Server)
    with server.client() as client:
        hit = client.post("/search", json={"source": "short.mp4", "query": "a color"}).json()["results"][0]
        assert client.get(hit["thumbnail_url"]).status_code == 200
        time.sleep(6)
        expired = client.get(hit["thumbnail_url"])
        assert expired.status_code == 404 and "expired" in expired.json()["error"]
        assert client.post("/edits", json={"clips": [hit["clip_id"]], "format": "edl"}).status_code == 404


@pytest.mark.slow
def test_a_job_failed_on_its_last_kill_leaves_no_scratch_folder(restarted: dict[str, object]) -> None:
    server, home = restarted["server"], restarted["home"]
    assert isinstance(server, Server) and isinstance(home, Path)
    with server.client() as client:
        job = client.get(f"/jobs/{restarted['job']}").json()
    assert job["state"] == "failed" and "stopped 3 times" in job["error"], job
    assert list(home.rglob(".thumbs-*")) == []


def test_a_bad_id_ttl_is_refused_before_the_server_starts(tmp_path: Path) -> None:
    for value in ("0", "-5", "nan", "inf", "1e12"):
        done = cli(tmp_path, "serve", "--port", "0", "--id-ttl", value)
        assert done.returncode == 2 and "--id-ttl must be" in one_error_line(done), (value, done.stderr)


# ---- minor: the docs say what the code answers --------------------------------------------------------


def test_reliability_doc_gives_refused_links_the_status_the_server_answers() -> None:
    from frameseek.service.errors import status_of
    from frameseek.service.links import LinkRefused

    rows = (REPO_ROOT / "docs" / "RELIABILITY.md").read_text(encoding="utf-8").splitlines()
    row = next(r for r in rows if r.startswith("| a link to 127.0.0.1"))
    assert row.split("|")[2].strip().startswith(str(status_of(LinkRefused("x"))))


def test_an_id_is_refused_once_it_has_expired_or_if_it_carries_no_expiry(tmp_path: Path) -> None:
    from frameseek.service.tokens import Signer

    now = [1000.0]
    key = os.urandom(32)
    signer = Signer(key, ttl_s=60, clock=lambda: now[0])
    token = signer.issue("clip", {"v": "/media/a.mp4"})
    assert signer.open("clip", token) == {"v": "/media/a.mp4"}
    now[0] += 62
    assert signer.open("clip", token) is None
    forever = Signer(key).issue("clip", {"v": "/media/a.mp4"})  # as ids were issued before they expired
    assert signer.open("clip", forever) is None


def test_sampling_and_the_decoder_refuse_a_start_or_end_no_timestamp_can_hold() -> None:
    from frameseek.errors import InputError
    from frameseek.video.decode import iter_frames
    from frameseek.video.sampling import Sampling

    for value in (1e15, 1e305, float("inf"), float("nan"), -1.0):
        with pytest.raises(InputError, match="--start must be a number of seconds"):
            Sampling(start=value)
        with pytest.raises(InputError, match="start must be a number of seconds"):
            next(iter_frames(require_bikes(), start=value))
    with pytest.raises(InputError, match="--end must be a number of seconds"):
        Sampling(start=1.0, end=float("inf"))
    assert Sampling(start=1e8 - 1, end=1e8).end == 1e8  # the largest window is still accepted
