"""Starting and stopping the server: refused starts, and a SIGKILL while an index job runs."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from service_support import TOKEN, serve_command, start_server, wait_job
from videos import make_video


def _refused(tmp_path: Path, extra: list[str], token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FRAMESEEK_HOME": str(tmp_path / "home")}
    env.pop("FRAMESEEK_TOKEN", None)
    if token is not None:
        env["FRAMESEEK_TOKEN"] = token
    return subprocess.run(
        serve_command(0, extra=extra), env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "example.invalid"])
def test_refuses_a_non_loopback_host_without_a_token(tmp_path: Path, host: str) -> None:
    done = _refused(tmp_path, ["--host", host])
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to listen on"), done.stderr
    assert "Traceback" not in done.stderr


def test_refuses_a_short_token_and_a_missing_media_folder(tmp_path: Path) -> None:
    short = _refused(tmp_path, ["--host", "0.0.0.0"], token="short")
    assert short.returncode != 0 and "at least 16 characters" in short.stderr
    token_file = tmp_path / "token"
    token_file.write_text("", encoding="utf-8")
    empty = _refused(tmp_path, ["--token-file", str(token_file)])
    assert empty.returncode != 0 and "empty" in empty.stderr
    media = _refused(tmp_path, ["--media", str(tmp_path / "nope")], token=TOKEN)
    assert media.returncode != 0 and "no such folder" in media.stderr


@pytest.mark.slow
def test_a_job_survives_a_sigkill(tmp_path: Path) -> None:
    """SIGKILL while an index job runs; after a restart the job is resumed and finishes, the library is valid."""
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "long.mp4", seconds=120, fps=10, size=(160, 90))
    home = tmp_path / "home"
    first = start_server(home, media=[media])
    try:
        with first.client() as client:
            job = client.post("/index", json={"sources": ["long.mp4"], "fps": 2}).json()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                seen = client.get(f"/jobs/{job['id']}").json()
                if seen["state"] == "running" and (seen["progress"]["done"] or 0) > 0:
                    break
                time.sleep(0.05)
            assert seen["state"] == "running", seen
    finally:
        first.stop(signal.SIGKILL)
    stored = (home / "service" / "jobs" / f"{job['id']}.json").read_text(encoding="utf-8")
    assert '"running"' in stored

    second = start_server(home, media=[media])
    try:
        with second.client() as client:
            resumed = client.get(f"/jobs/{job['id']}").json()
            assert resumed["state"] in ("queued", "running", "done"), resumed
            library = client.get("/library")
            assert library.status_code == 200 and isinstance(library.json()["videos"], list)
            final = wait_job(client, job["id"], ("done", "failed", "cancelled"), timeout=240)
            assert final["state"] == "done" and final["attempts"] == 2, final
            videos = client.get("/library").json()["videos"]
            assert [v["title"] for v in videos] == ["long"] and videos[0]["frames"] == 240
    finally:
        second.stop()
    assert "resuming 1 index job" in second.output()
