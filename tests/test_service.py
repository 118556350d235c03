"""The HTTP service against a real uvicorn server (a subprocess on a free 127.0.0.1 port): auth, search,
sources under --media only, the link guard, bad input, jobs, the library, thumbnails and clips."""

from __future__ import annotations

import base64
import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from service_support import TOKEN, Server, start_server, wait_job
from videos import make_video, require_bikes

CLI_KEYS = {"source", "model", "query", "results", "metrics", "notices", "partial"}
HIT_KEYS = {"video", "title", "time", "timecode", "score", "start", "end", "thumbnail", "match", "text"}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    shutil.copy(require_bikes(), folder / "bikes.mp4")
    make_video(folder / "long.mp4", seconds=120, fps=10, size=(160, 90))
    (folder / "sub").mkdir()
    make_video(folder / "sub" / "short.mp4", seconds=3, fps=10, size=(160, 90))
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("home"), media=[media], extra=["--rate-limit", "1000", "--rate-burst", "1000"]
    )
    yield running
    running.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def search(client: httpx.Client, **body: object) -> httpx.Response:
    return client.post("/search", json=body)


# ---- auth ---------------------------------------------------------------------------------------------


def test_health_needs_no_token(server: Server) -> None:
    with server.client(token=None) as anonymous:
        answer = anonymous.get("/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok" and answer.json()["ready"] is True


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/library"), ("POST", "/search"), ("GET", "/jobs/x"), ("GET", "/docs"), ("GET", "/nowhere")],
)
def test_everything_else_needs_the_token(server: Server, method: str, path: str) -> None:
    for token in (None, "wrong-token-0123456789", TOKEN + "x"):
        with server.client(token=token) as c:
            answer = c.request(method, path, json={"query": "x"} if method == "POST" else None)
        assert answer.status_code == 401, (token, answer.text)
        assert answer.headers["www-authenticate"] == "Bearer"
        assert set(answer.json()) == {"error"} and "token" in answer.json()["error"]
    with server.client(token=None, headers={"Authorization": f"Basic {TOKEN}"}) as c:
        assert c.get("/library").status_code == 401


def test_openapi_docs_with_the_token(client: httpx.Client) -> None:
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {
        "/health",
        "/search",
        "/index",
        "/jobs/{job_id}",
        "/library",
        "/thumbnails/{thumbnail_id}",
    } <= set(paths)
    assert client.get("/docs").status_code == 200


# ---- search -------------------------------------------------------------------------------------------


def test_search_a_video_under_media_answers_the_cli_json(client: httpx.Client, media: Path) -> None:
    answer = search(client, source=str(media / "bikes.mp4"), query="a person riding a bike", top_k=3)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert set(data) >= CLI_KEYS and data["model"] == "lite" and data["query"] == "a person riding a bike"
    assert 1 <= len(data["results"]) <= 3
    for hit in data["results"]:
        assert set(hit) >= HIT_KEYS
        assert hit["thumbnail_url"] == f"/thumbnails/{hit['thumbnail_id']}"
        assert hit["clip_url"] == f"/clips/{hit['clip_id']}"
    again = search(client, source="bikes.mp4", query="a person riding a bike", top_k=3).json()  # relative
    assert again["metrics"]["index_reused"] is True
    assert [h["time"] for h in again["results"]] == [h["time"] for h in data["results"]]


def test_search_says_whether_anything_matches_and_filters_by_confidence(client: httpx.Client) -> None:
    found = search(client, source="bikes.mp4", query="cars in a traffic jam", top_k=5).json()
    assert found["found"] is True and found["results"][0]["confidence"] >= 0.5
    confidences = [hit["confidence"] for hit in found["results"]]
    assert confidences == sorted(confidences, reverse=True) and all(0 <= c <= 1 for c in confidences)
    absent = search(client, source="bikes.mp4", query="an elephant on the moon").json()
    assert absent["found"] is False and absent["results"]  # the closest moments, weak ones
    assert all(hit["confidence"] < 0.5 for hit in absent["results"])
    cut = search(client, source="bikes.mp4", query="cars in a traffic jam", min_confidence=0.5).json()
    assert cut["found"] is True and [h["confidence"] for h in cut["results"]] == [
        c for c in confidences if c >= 0.5
    ]
    for bad in (-0.1, 1.5, "high"):
        answer = search(client, source="bikes.mp4", query="a car", min_confidence=bad)
        assert answer.status_code == 422 and "min_confidence" in answer.json()["error"], answer.text


def test_search_takes_then_within_and_count_as_json_fields(client: httpx.Client) -> None:
    counted = search(client, source="bikes.mp4", query="cars in a traffic jam", count=True).json()
    assert counted["count"] == sum(hit["confidence"] >= 0.5 for hit in counted["results"]) >= 1
    assert counted["found"] is True
    times = [hit["start"] for hit in counted["results"]]
    assert times == sorted(times)  # every match, in time order
    chained = search(
        client,
        source="bikes.mp4",
        query="cars in a traffic jam",
        then=["a bike locked to a railing"],
        within=10,
    ).json()
    assert chained["query"] == "cars in a traffic jam, then a bike locked to a railing (within 10 s)"
    assert isinstance(chained["count"], int) and "results" in chained
    plain = search(client, source="bikes.mp4", query="cars in a traffic jam").json()
    assert plain["count"] is None
    for bad, status, words in (
        ({"within": 5}, 400, "--within needs a next step"),
        ({"then": ["b"], "within": -1}, 422, "within"),
        ({"first": True, "last": True}, 400, "--first and --last"),
        ({"then": ["b"], "while": "c"}, 400, "--while goes with one query"),
        ({"count": True, "library": "default", "source": None}, 422, "leave out"),
    ):
        body = {"source": "bikes.mp4", "query": "a car", **bad}
        answer = search(client, **{k: v for k, v in body.items() if v is not None})
        assert answer.status_code == status and words in answer.json()["error"], answer.text


def test_search_takes_sounds_and_refuses_an_unknown_speech_language_in_one_sentence(
    client: httpx.Client, media: Path
) -> None:
    from test_mcp import MUSIC, make_music_video  # the same melody video the MCP tests use

    make_music_video(media / "music.mp4")
    heard = search(client, source="music.mp4", query="when the music starts", sounds=True, top_k=3)
    assert heard.status_code == 200, heard.text
    best = heard.json()["results"][0]
    assert best["match"].startswith("sounds") and best["text"] == "[music]", best
    assert MUSIC[0] - 0.5 <= best["time"] <= MUSIC[0] + 1.0
    for path, body in (
        ("/search", {"source": "bikes.mp4", "query": "a car", "speech_language": "klingon"}),
        ("/index", {"sources": ["bikes.mp4"], "speech_language": "xx"}),
    ):
        refused = client.post(path, json=body)
        error = refused.json()["error"]
        assert refused.status_code == 422 and "unknown speech language" in error, refused.text
        assert "\n" not in error
    assert (
        search(client, source="sub/short.mp4", query="a red square", speech_language="de").status_code == 200
    )


def test_search_by_image_in_base64(client: httpx.Client, media: Path) -> None:
    search(client, source="bikes.mp4", query="warm up")
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(picture, format="PNG")
    image = base64.b64encode(picture.getvalue()).decode()
    answer = search(client, source="bikes.mp4", image=image, top_k=2)
    assert answer.status_code == 200, answer.text
    assert answer.json()["query"] is None and answer.json()["results"]
    bad = search(client, source="bikes.mp4", image="bm90IGFuIGltYWdl")
    assert bad.status_code == 400 and "image" in bad.json()["error"]


def test_paths_outside_media_are_403(client: httpx.Client, media: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.mp4"
    shutil.copy(media / "sub" / "short.mp4", outside)
    link = media / "sub" / "escape.mp4"
    link.symlink_to(outside)
    try:
        for source in (str(outside), "/etc/passwd", "../../../../etc/passwd", str(link), str(media / "sub")):
            answer = search(client, source=source, query="a dog")
            assert answer.status_code == 403, (source, answer.text)
            assert "media" in answer.json()["error"]
        missing = search(client, source=str(media / "nope.mp4"), query="a dog")
        assert missing.status_code == 404
    finally:
        link.unlink()


@pytest.mark.parametrize(
    "link",
    [
        "http://127.0.0.1/video.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8000/video.mp4",
        "http://[::1]/video.mp4",
        "http://2130706433/video.mp4",
        "http://10.0.0.1/video.mp4",
        "http://[::ffff:127.0.0.1]/video.mp4",
    ],
)
def test_links_to_private_addresses_are_refused(client: httpx.Client, link: str) -> None:
    answer = search(client, source=link, query="a dog")
    assert answer.status_code == 403, answer.text
    assert (
        answer.json()["error"].startswith("link refused:")
        and "--allow-private-links" in answer.json()["error"]
    )
    job = client.post("/index", json={"sources": [link]})
    assert job.status_code == 403


def test_not_a_link_scheme(client: httpx.Client) -> None:
    answer = search(client, source="file:///etc/passwd", query="a dog")
    assert answer.status_code == 400 and "http" in answer.json()["error"]


# ---- bad input ----------------------------------------------------------------------------------------


def test_malformed_and_invalid_bodies(client: httpx.Client) -> None:
    broken = client.post("/search", content=b'{"source": ', headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"].startswith("malformed JSON")
    for body, word in [
        ({"source": "bikes.mp4", "query": "a", "top_k": 0}, "top_k"),
        ({"source": "bikes.mp4", "query": "a", "colour": "red"}, "colour"),
        ({"source": "bikes.mp4", "library": "default", "query": "a"}, "exactly one"),
        ({"source": "bikes.mp4"}, "query"),
        ({"library": "../x", "query": "a"}, "library"),
    ]:
        answer = client.post("/search", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert set(answer.json()) == {"error"} and word in answer.json()["error"]
    not_json = client.post("/search", content=b"source=x", headers={"content-type": "text/plain"})
    assert not_json.status_code == 422
    empty = search(client, source="bikes.mp4", query="   ")
    assert empty.status_code == 400 and "empty" in empty.json()["error"]


def test_huge_bodies_are_413(client: httpx.Client) -> None:
    big = b'{"query": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    declared = client.post("/search", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "too large" in declared.json()["error"]

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"a" * 65536

    streamed = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_unknown_paths_and_methods(client: httpx.Client) -> None:
    assert client.get("/nowhere").status_code == 404 and "error" in client.get("/nowhere").json()
    wrong = client.put("/library")
    assert wrong.status_code == 405 and set(wrong.json()) == {"error"}
    assert client.get("/jobs/0123456789abcdef0123456789abcdef").status_code == 404
    assert client.get("/jobs/..%2F..%2Fetc").status_code == 404


# ---- thumbnails and clips ----------------------------------------------------------------------------


def test_thumbnail_and_clip_by_id(client: httpx.Client, tmp_path: Path) -> None:
    hit = search(client, source="bikes.mp4", query="a bike", top_k=1).json()["results"][0]
    thumb = client.get(hit["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size[0] > 0
    clip = client.get(hit["clip_url"])
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"
    (tmp_path / "clip.mp4").write_bytes(clip.content)
    from frameseek.video.decode import probe

    assert probe(tmp_path / "clip.mp4").duration is not None

    body, mac = hit["thumbnail_id"].split(".")
    forged = base64.urlsafe_b64encode(b'{"p":"../../../../etc/passwd"}').decode().rstrip("=")
    for bad in (f"{forged}.{mac}", f"{body}.{'A' * 22}", f"{body[:-2]}.{mac}"):
        assert client.get(f"/thumbnails/{bad}").status_code == 404, bad
        assert client.get(f"/clips/{bad}").status_code in (400, 404), bad
    for traversal in ("..%2F..%2Fetc%2Fpasswd", "..", "etc%2Fpasswd", "a.b"):
        answer = client.get(f"/thumbnails/{traversal}")
        assert answer.status_code in (400, 404), traversal
        assert set(answer.json()) == {"error"}
    assert client.get(f"/clips/{hit['thumbnail_id']}").status_code == 404  # an id of the other kind


def test_supercut_and_markers_of_chosen_hits(client: httpx.Client, tmp_path: Path) -> None:
    hits = search(client, source="bikes.mp4", query="a bike", top_k=2).json()["results"]
    clips = [h["clip_id"] for h in hits]
    edl = client.post("/edits", json={"clips": clips, "format": "edl", "pad_before": 0.5, "query": "a bike"})
    assert edl.status_code == 200 and "markers.edl" in edl.headers["content-disposition"]
    assert "FCM: NON-DROP FRAME" in edl.text and edl.text.count(" C ") == 2
    otio = client.post("/edits", json={"clips": clips, "format": "otio"})
    assert otio.status_code == 200 and '"OTIO_SCHEMA"' in otio.text
    cut = client.post("/edits", json={"clips": clips, "format": "mp4", "pad_after": 0.5})
    assert (
        cut.status_code == 200 and cut.headers["content-type"] == "video/mp4" and cut.content[4:8] == b"ftyp"
    )
    (tmp_path / "supercut.mp4").write_bytes(cut.content)
    from frameseek.video.decode import probe

    expected = sum(min(10.0, h["end"] + 0.5) - h["start"] for h in hits)
    assert probe(tmp_path / "supercut.mp4").duration == pytest.approx(expected, abs=0.3)
    bad = client.post("/edits", json={"clips": [hits[0]["thumbnail_id"]], "format": "edl"})
    assert bad.status_code == 404 and set(bad.json()) == {"error"}
    assert client.post("/edits", json={"clips": [], "format": "edl"}).status_code == 422


# ---- jobs and the library -----------------------------------------------------------------------------


def test_index_job_lifecycle_and_library(client: httpx.Client, media: Path) -> None:
    started = client.post("/index", json={"sources": [str(media / "sub")], "library": "jobs", "fps": 2})
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["state"] in ("queued", "running") and len(job["id"]) == 32
    seen = {job["state"]}
    deadline = time.monotonic() + 120
    while job["state"] not in ("done", "failed", "cancelled") and time.monotonic() < deadline:
        job = client.get(f"/jobs/{job['id']}").json()
        seen.add(job["state"])
        time.sleep(0.05)
    assert job["state"] == "done", job
    assert job["progress"]["fraction"] == 1.0 and job["progress"]["videos_done"] == 1
    assert job["result"]["library"] == "jobs" and job["result"]["videos"][0]["title"] == "short"
    assert any(j["id"] == job["id"] for j in client.get("/jobs").json()["jobs"])

    listed = client.get("/library", params={"name": "jobs"}).json()
    assert [v["title"] for v in listed["videos"]] == ["short"]
    sha = listed["videos"][0]["video_sha256"]
    hits = search(client, library="jobs", query="a red square").json()
    assert hits["source"] == "library:jobs" and hits["results"][0]["thumbnail_id"]

    removed = client.delete(f"/library/videos/{sha}", params={"name": "jobs"})
    assert removed.status_code == 200 and removed.json()["removed"] == 1
    assert client.get("/library", params={"name": "jobs"}).json()["videos"] == []
    assert client.delete(f"/library/videos/{sha}", params={"name": "jobs"}).status_code == 404
    assert client.delete("/library/videos/..%2F..%2Fx", params={"name": "jobs"}).status_code == 404
    assert client.delete(f"/library/videos/{'z' * 64}").status_code == 404
    assert client.get("/library", params={"name": "../etc"}).status_code == 422
    assert client.post(f"/jobs/{job['id']}/cancel").status_code == 409  # already done


def test_cancel_a_running_job(client: httpx.Client, media: Path) -> None:
    job = client.post("/index", json={"sources": ["long.mp4"], "library": "cancel", "fps": 2}).json()
    wait_job(client, job["id"], ("running",), timeout=60)
    cancelled = client.delete(f"/jobs/{job['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"] is True
    final = wait_job(client, job["id"], ("cancelled", "done", "failed"), timeout=60)
    assert final["state"] == "cancelled", final
    assert client.get("/library", params={"name": "cancel"}).json()["videos"] == []


def test_job_sources_are_checked_at_once(client: httpx.Client) -> None:
    assert client.post("/index", json={"sources": ["/etc"]}).status_code == 403
    assert client.post("/index", json={"sources": []}).status_code == 422
    assert client.post("/index", json={"sources": ["bikes.mp4"], "library": "a/b"}).status_code == 422


def test_no_traceback_ever(server: Server, client: httpx.Client) -> None:
    answers = [
        client.post("/search", content=b"\xff\xfe", headers={"content-type": "application/json"}),
        client.post("/search", json=[1, 2]),
        client.get("/thumbnails/" + "A" * 3000 + ".b"),
        client.post("/search", json={"source": "bikes.mp4", "query": "a", "start": 9999}),
    ]
    for answer in answers:
        assert 400 <= answer.status_code < 500, answer.text
        assert "Traceback" not in answer.text and set(answer.json()) == {"error"}
    assert server.process.poll() is None and os.path.exists(server.log)
