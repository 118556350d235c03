"""The service's parts in-process (no server, no model): ids, paths under --media, auth without a token,
the token bucket, job recovery after a stop."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from frameseek.api import is_loopback_host
from frameseek.service.auth import BearerAuth
from frameseek.service.errors import Forbidden, NotFound
from frameseek.service.jobs import MAX_ATTEMPTS, JobManager
from frameseek.service.limits import RateLimit
from frameseek.service.media import local_path
from frameseek.service.schemas import IndexRequest, Job
from frameseek.service.tokens import Signer, load_key


def test_ids_round_trip_and_refuse_anything_edited(tmp_path: Path) -> None:
    key_file = tmp_path / "id-key"
    signer = Signer(load_key(key_file))
    assert oct(key_file.stat().st_mode & 0o777) == "0o600" and load_key(key_file) == signer.key
    token = signer.issue("thumb", {"p": "ab/cd"})
    assert signer.open("thumb", token) == {"p": "ab/cd"}
    assert signer.open("clip", token) is None  # ids of one kind are not ids of another
    body, mac = token.split(".")
    other = "B" if mac.endswith("A") else "A"  # an edited last character (never the one it has)
    for bad in (f"{body}x.{mac}", f"{body}.{mac[:-1]}{other}", "../../etc/passwd", f"{body}/../x.{mac}", ""):
        assert signer.open("thumb", bad) is None, bad
    assert Signer(os.urandom(32)).open("thumb", token) is None


def test_local_paths_only_under_media(tmp_path: Path) -> None:
    root = (tmp_path / "media").resolve()
    (root / "a").mkdir(parents=True)
    (root / "a" / "v.mp4").write_bytes(b"x")
    (tmp_path / "secret.mp4").write_bytes(b"x")
    (root / "link.mp4").symlink_to(tmp_path / "secret.mp4")
    (root / "inner.mp4").symlink_to(root / "a" / "v.mp4")
    roots = (root,)
    assert local_path(str(root / "a" / "v.mp4"), roots) == root / "a" / "v.mp4"
    assert local_path("a/v.mp4", roots) == root / "a" / "v.mp4"
    assert local_path("inner.mp4", roots) == root / "a" / "v.mp4"
    assert local_path(str(root), roots) == root
    for outside in (
        "link.mp4",
        "../secret.mp4",
        str(tmp_path / "secret.mp4"),
        "/",
        "a/../../secret.mp4",
        "a\x00",
    ):
        with pytest.raises(Forbidden):
            local_path(outside, roots)
    with pytest.raises(NotFound):
        local_path("a/missing.mp4", roots)
    with pytest.raises(Forbidden, match="without --media"):
        local_path("a/v.mp4", ())


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
     ("::", False), ("", False), ("192.168.1.10", False), ("no-such-host.invalid", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def _app(token: str | None) -> TestClient:
    async def ok(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    inner = Starlette(routes=[Route("/health", ok), Route("/library", ok)])
    return TestClient(BearerAuth(inner, token), base_url="http://127.0.0.1:8000")


def test_without_a_token_only_requests_to_localhost_are_answered() -> None:
    client = _app(None)
    assert client.get("/library").status_code == 200
    for host in ("localhost:8000", "[::1]:8000", "127.0.0.1"):
        assert client.get("/library", headers={"host": host}).status_code == 200, host
    rebound = client.get("/library", headers={"host": "evil.example:8000"})
    assert rebound.status_code == 403 and "localhost" in rebound.json()["error"]
    assert client.get("/health", headers={"host": "evil.example"}).status_code == 200


def test_with_a_token_every_path_but_health_needs_it() -> None:
    client = _app("a-long-enough-token-123")
    assert client.get("/health").status_code == 200
    assert client.get("/library").status_code == 401
    assert (
        client.get("/library", headers={"authorization": "Bearer a-long-enough-token-123"}).status_code == 200
    )
    assert (
        client.get("/library", headers={"authorization": "bearer a-long-enough-token-123"}).status_code == 200
    )
    assert (
        client.get("/library", headers={"authorization": "Bearer a-long-enough-token-12"}).status_code == 401
    )


def test_token_bucket() -> None:
    limiter = RateLimit(lambda *a: None, rate=2.0, burst=3)  # type: ignore[arg-type]
    assert [limiter.take("a", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", now=100.0) == pytest.approx(0.5)
    assert limiter.take("b", now=100.0) == 0.0  # another client, another bucket
    assert limiter.take("a", now=101.0) == 0.0  # refilled at 2 per second


def test_recovery_requeues_interrupted_jobs_and_fails_repeat_offenders(tmp_path: Path) -> None:
    request = IndexRequest(sources=["x.mp4"])
    states = {"a" * 32: ("running", 1), "b" * 32: ("queued", 0), "c" * 32: ("running", MAX_ATTEMPTS)}
    for job_id, (state, attempts) in states.items():
        job = Job(id=job_id, state=state, created=1.0, updated=1.0, attempts=attempts, request=request)  # type: ignore[arg-type]
        (tmp_path / f"{job_id}.json").write_text(job.model_dump_json(), encoding="utf-8")
    (tmp_path / ("d" * 32 + ".json")).write_text("{not json", encoding="utf-8")
    (tmp_path / "evil.json").write_text("{}", encoding="utf-8")  # not a job id: never read
    ran: list[str] = []
    manager = JobManager(tmp_path, lambda req, control: ran.append(req.sources[0]) or {"ok": True})  # type: ignore[func-returns-value]
    requeued = manager.recover()
    manager.executor.shutdown(wait=True)
    assert sorted(requeued) == ["a" * 32, "b" * 32]
    assert manager.get("a" * 32).state == "done" and manager.get("a" * 32).attempts == 2
    failed = manager.get("c" * 32)
    assert failed.state == "failed" and "stopped" in (failed.error or "")
    assert json.loads((tmp_path / ("c" * 32 + ".json")).read_text())["state"] == "failed"
    assert ran == ["x.mp4", "x.mp4"]
    with pytest.raises(NotFound):
        manager.get("../" + "a" * 29)
