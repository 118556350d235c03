"""The people track on real faces: a montage of real MSR-VTT clips (a teacher, another woman, a face-free
basketball court, the teacher again), searched with a photo of the teacher taken from a part of her clip
the montage does not use. The calibration (``frameseek.people.calibration``) was fitted on other clips."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image, ImageDraw

from frameseek import api
from frameseek.people.faces import FacesValue
from frameseek.people.store import PeopleStore
from videos import MSRVTT_DIR, require_ffmpeg

TEACHER, OTHER, COURT = "video236.mp4", "video2392.mp4", "video1672.mp4"
SCENES = ((TEACHER, 0.0, 8.0), (OTHER, 6.0, 12.0), (COURT, 0.0, 4.0), (TEACHER, 14.0, 20.0))
"""The montage: the teacher 0-8 s, another woman 8-14 s, nobody 14-18 s, the teacher again 18-24 s."""
TEACHER_AT = ((0.0, 8.0), (18.0, 24.0))
OTHER_AT = ((8.0, 14.0),)


@dataclass(frozen=True)
class Footage:
    video: Path
    teacher_photo: Path  # from 26 s of her clip: not in the montage
    other_photo: Path  # from 14.5 s of hers: not in the montage
    home: Path


def _frame(ffmpeg: str, clip: Path, at: float, out: Path) -> Path:
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-ss", str(at), "-i", str(clip), "-frames:v", "1", str(out)], check=True
    )
    return out


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Footage]:
    ffmpeg = require_ffmpeg()
    missing = sorted({c for c, _, _ in SCENES if not (MSRVTT_DIR / c).is_file()})
    if missing:
        pytest.skip(f"montage clips not available: {', '.join(missing)}")
    folder = tmp_path_factory.mktemp("people")
    inputs: list[str] = []
    chains = []
    for i, (clip, start, end) in enumerate(SCENES):
        inputs += ["-i", str(MSRVTT_DIR / clip)]
        chains.append(
            f"[{i}:v]trim=start={start}:end={end},setpts=PTS-STARTPTS,scale=640:360:force_original_aspect_ratio="
            f"decrease,pad=640:360:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=25[v{i}]"
        )
    graph = (
        ";".join(chains)
        + ";"
        + "".join(f"[v{i}]" for i in range(len(SCENES)))
        + f"concat=n={len(SCENES)}:v=1:a=0[out]"
    )
    video = folder / "montage.mp4"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]", "-c:v", "libx264",
         "-preset", "veryfast", "-pix_fmt", "yuv420p", str(video)],
        check=True,
    )  # fmt: skip
    teacher = _frame(ffmpeg, MSRVTT_DIR / TEACHER, 26.0, folder / "teacher.jpg")
    other = _frame(ffmpeg, MSRVTT_DIR / OTHER, 14.5, folder / "other.jpg")
    home = folder / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESEEK_HOME", str(home))
        yield Footage(video, teacher, other, home)


def _inside(t: float, spans: tuple[tuple[float, float], ...], slack: float = 0.1) -> bool:
    return any(a - slack <= t <= b + slack for a, b in spans)


def _flat(spans: object) -> list[float]:
    return [float(t) for span in spans for t in span]  # type: ignore[attr-defined]


def _covers(result: api.SearchResult, span: tuple[float, float], slack: float = 1.1) -> bool:
    return abs(result.start - span[0]) <= slack and abs(result.end - span[1]) <= slack


def test_a_person_on_a_photo_from_another_part_is_found_in_the_right_time_ranges_and_not_in_the_others(
    footage: Footage,
) -> None:
    response = api.find_person(footage.video, face=footage.teacher_photo, top_k=10)
    assert response.found
    strong = [r for r in response.results if r.confidence >= api.FOUND_AT]
    assert len(strong) == 2, [(r.start, r.end, r.confidence) for r in response.results]
    for span in TEACHER_AT:
        assert any(_covers(r, span) for r in strong), (span, [(r.start, r.end) for r in strong])
    for r in strong:
        assert r.match == "faces" and _inside(r.time, TEACHER_AT)
        assert not any(a < r.end - 0.5 and r.start + 0.5 < b for a, b in (*OTHER_AT, (14.0, 18.0)))


def test_two_different_people_stay_two_people(footage: Footage) -> None:
    rows = api.list_people(footage.video)
    assert len(rows) == 2, rows
    by_time = sorted(rows, key=lambda r: -r["screen_time"])
    teacher, other = by_time
    assert _flat(teacher["videos"][0]["appearances"]) == pytest.approx(_flat(TEACHER_AT), abs=1.1)
    assert _flat(other["videos"][0]["appearances"]) == pytest.approx(_flat(OTHER_AT), abs=1.1)
    assert teacher["screen_time"] == pytest.approx(14.0, abs=2.0)
    assert Image.open(teacher["thumbnail"]).size == (96, 96)
    other_hits = api.find_person(footage.video, face=footage.other_photo, top_k=10)
    strong = [(r.start, r.end) for r in other_hits.results if r.confidence >= api.FOUND_AT]
    assert _flat(strong) == pytest.approx(_flat(OTHER_AT), abs=1.1)


def test_a_named_person_is_found_by_name_and_by_id_and_an_unknown_name_is_one_clear_error(
    footage: Footage,
) -> None:
    rows = api.list_people(None)
    other = next(
        r for r in rows if r["videos"][0]["appearances"][0] == pytest.approx(list(OTHER_AT[0]), abs=1.1)
    )
    named = api.name_person(other["id"], "Alice")
    assert named["name"] == "Alice" and api.named_people("Alice at the whiteboard") == ["Alice"]
    for ref in ("alice", other["id"]):
        response = api.find_person(footage.video, person=ref)
        assert response.found and response.results[0].text == "Alice"
        assert _covers(response.results[0], OTHER_AT[0])
    with pytest.raises(api.InputError, match="no person is known as 'Bob'"):
        api.find_person(footage.video, person="Bob")
    with pytest.raises(api.InputError, match="already called"):
        api.name_person(next(r["id"] for r in rows if r["id"] != other["id"]), "ALICE")


def test_a_sentence_naming_a_known_person_finds_their_moments_fused_with_the_other_tracks(
    footage: Footage,
) -> None:
    rows = api.list_people(footage.video)
    other = next(
        r for r in rows if r["videos"][0]["appearances"][0] == pytest.approx(list(OTHER_AT[0]), abs=1.1)
    )
    api.name_person(other["id"], "Alice")
    searcher = api.Searcher("lite", sampling=api.Sampling(fps=0.5))
    response = searcher.search(footage.video, "Alice talking in a room", top_k=3)  # no --faces: the name asks
    best = response.results[0]
    assert response.found and best.match.split("+")[0] == "faces" and best.text == "Alice"
    assert _inside(best.time, OTHER_AT) and _covers(best, OTHER_AT[0])
    plain = searcher.search(footage.video, "people talking in a room", top_k=3)
    assert all("faces" not in r.match for r in plain.results)


def test_a_person_absent_from_a_video_is_not_found(footage: Footage, tmp_path: Path) -> None:
    court = tmp_path / "court.mp4"
    subprocess.run(
        [require_ffmpeg(), "-v", "error", "-y", "-i", str(footage.video), "-ss", "14.2", "-t", "3.6", "-an",
         "-c:v", "libx264", "-preset", "veryfast", str(court)],
        check=True,
    )  # fmt: skip
    response = api.find_person(court, face=footage.teacher_photo)
    assert not response.found
    assert all(r.confidence < api.FOUND_AT for r in response.results)


def _cartoon(path: Path) -> Path:
    image = Image.new("RGB", (400, 400), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((80, 60, 320, 340), fill=(255, 220, 80), outline="black", width=6)
    draw.ellipse((140, 150, 180, 190), fill="black")
    draw.ellipse((220, 150, 260, 190), fill="black")
    draw.arc((140, 200, 260, 290), 20, 160, fill="black", width=8)
    image.save(path)
    return path


def test_an_image_with_no_face_a_tiny_face_a_cartoon_face_and_a_non_image_each_get_one_clear_line(
    footage: Footage, tmp_path: Path
) -> None:
    street = _frame(require_ffmpeg(), MSRVTT_DIR / COURT, 1.0, tmp_path / "court.jpg")
    teacher = Image.open(footage.teacher_photo)
    tiny = tmp_path / "tiny.jpg"
    teacher.resize((teacher.width // 5, teacher.height // 5)).save(tiny)
    cartoon = _cartoon(tmp_path / "cartoon.png")
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture", encoding="utf-8")
    expected = {
        street: "no face found in",
        tiny: "too small|no face found in",
        cartoon: "looks drawn, not photographed",
        text: "not a readable image",
    }
    for photo, message in expected.items():
        with pytest.raises(api.InputError, match=message) as caught:
            api.find_person(footage.video, face=photo)
        assert "\n" not in str(caught.value) and str(photo) in str(caught.value)
    env = {**os.environ, "FRAMESEEK_HOME": str(footage.home)}
    run = subprocess.run(
        [sys.executable, "-m", "frameseek", "search", str(footage.video), "--face", str(cartoon)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    assert (
        run.stderr.strip().count("\n") == 0
        and run.stderr.startswith("error: the face in")
        and "drawn" in run.stderr
    )


def test_the_command_line_lists_names_and_finds_people(footage: Footage) -> None:
    env = {**os.environ, "FRAMESEEK_HOME": str(footage.home)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "frameseek", *args], capture_output=True, text=True, env=env, timeout=120
        )

    listed = cli("people", str(footage.video), "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["people"]) == 2
    found = cli("search", str(footage.video), "--face", str(footage.teacher_photo), "--json")
    assert found.returncode == 0, found.stderr
    data = json.loads(found.stdout)
    assert data["found"] and all(
        _inside(r["time"], TEACHER_AT) for r in data["results"] if r["confidence"] >= 0.5
    )
    bad = cli("people", "name", "p999", "Carol")
    assert bad.returncode == 2 and bad.stderr.startswith("error: no person is known as 'p999'")


def test_the_service_finds_a_face_lists_people_and_refuses_bad_photos_and_paths_outside_its_media(
    footage: Footage, tmp_path: Path
) -> None:
    import base64

    from service_support import start_server

    server = start_server(footage.home, media=[footage.video.parent])
    try:
        with server.client() as client:
            photo = base64.b64encode(footage.teacher_photo.read_bytes()).decode()
            answer = client.post("/search", json={"source": str(footage.video), "face": photo, "top_k": 10})
            assert answer.status_code == 200, answer.text
            data = answer.json()
            strong = [r for r in data["results"] if r["confidence"] >= api.FOUND_AT]
            assert data["found"] and len(strong) == 2 and all(_inside(r["time"], TEACHER_AT) for r in strong)
            cartoon = base64.b64encode(_cartoon(tmp_path / "c.png").read_bytes()).decode()
            drawn = client.post("/search", json={"source": str(footage.video), "face": cartoon})
            assert drawn.status_code == 400 and "drawn" in drawn.text
            listed = client.get("/people", params={"source": str(footage.video)})
            assert listed.status_code == 200 and len(listed.json()["people"]) == 2
            first = listed.json()["people"][0]["id"]
            thumb = client.get(f"/people/{first}/thumbnail")
            assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
            outside = client.get("/people", params={"source": str(tmp_path)})
            assert outside.status_code == 403
        with server.client(token=None) as anonymous:
            assert anonymous.get("/people").status_code == 401
    finally:
        server.stop()


def test_the_mcp_people_tool_finds_a_face_and_answers_a_cartoon_with_a_tool_error(
    footage: Footage, tmp_path: Path
) -> None:
    import base64

    import anyio
    from mcp import Client

    from frameseek.mcp_server.config import McpSettings
    from frameseek.mcp_server.server import build_server

    server = build_server(
        McpSettings(media=(footage.video.parent.resolve(),), exports=tmp_path / "exports", model="lite")
    )
    photo = base64.b64encode(footage.teacher_photo.read_bytes()).decode()
    cartoon = base64.b64encode(_cartoon(tmp_path / "c.png").read_bytes()).decode()

    async def run() -> tuple[Any, Any, Any]:
        async with Client(server) as client:
            found = await client.call_tool(
                "people", {"source": str(footage.video), "face": photo, "top_k": 10}
            )
            drawn = await client.call_tool("people", {"source": str(footage.video), "face": cartoon})
            listed = await client.call_tool("people", {"source": str(footage.video)})
            return found, drawn, listed

    found, drawn, listed = anyio.run(run)
    assert not found.is_error, found.content
    strong = [r for r in found.structured_content["results"] if r["confidence"] >= api.FOUND_AT]
    assert len(strong) == 2 and all(_inside(r["time"], TEACHER_AT) for r in strong)
    assert drawn.is_error and "drawn" in drawn.content[0].text and "\n" not in drawn.content[0].text
    assert len(listed.structured_content["people"]) == 2


def _stored_faces(footage: Footage) -> list[Path]:
    """The montage's stored faces files (the tests above store them; read here when run alone)."""
    if not list(footage.home.glob("indexes/*/*/faces/*.json")):
        api.list_people(footage.video)
    return list(footage.home.glob("indexes/*/*/faces/*.json"))


def test_forget_deletes_every_face_file(
    footage: Footage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stored_faces(footage)
    home = tmp_path / "home"
    shutil.copytree(footage.home, home)
    monkeypatch.setenv("FRAMESEEK_HOME", str(home))
    before = set(home.glob("indexes/*/*/faces/*.json"))
    assert before and (home / "people" / "people.json").is_file()
    assert api.forget_faces(footage.video) == 2
    assert len(set(home.glob("indexes/*/*/faces/*.json"))) == len(before) - 1 and api.list_people(None) == []
    api.list_people(footage.video)  # read again: the faces come back only when asked for
    assert api.forget_faces(None) == 2
    assert not list(home.glob("indexes/*/*/faces")) and not (home / "people" / "people.json").exists()
    assert not list((home / "people").glob("thumbs/*.jpg"))


def test_forgetting_one_video_removes_every_face_taken_from_it_even_of_people_seen_elsewhere(
    footage: Footage, tmp_path: Path
) -> None:
    values = [FacesValue.from_json(p.read_text(encoding="utf-8")) for p in _stored_faces(footage)]
    value = max(values, key=lambda v: len(v.groups))  # the montage's: two people
    first, second = (
        SimpleNamespace(sha256=c * 64, title=f"{c}.mp4", path=tmp_path / f"{c}.mp4") for c in "ab"
    )
    store = PeopleStore(tmp_path / "people")
    # a video source's three fields are all the store reads; the same faces join the same people
    store.add_video(first, value)  # type: ignore[arg-type]
    store.add_video(second, value)  # type: ignore[arg-type]
    people = store.people()
    assert len(people) == 2 and all(set(p.videos) == {first.sha256, second.sha256} for p in people)

    store.forget(first.sha256)
    people = store.people()
    assert len(people) == 2 and all(set(p.videos) == {second.sha256} for p in people)
    assert all(set(p.sources) == {second.sha256} for p in people)
    assert all(0 < len(p.exemplars) == len(p.sources) for p in people)
    assert not list((tmp_path / "people").glob("thumbs/*.jpg"))  # each was cut from the forgotten video
    assert store.forget(second.sha256) == 2 and store.people() == []
