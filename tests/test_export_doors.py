"""One editor-export flow: the same hits of a real search, exported through the command line
(``frameseek search --export --markers edl``), the app's logic and the HTTP service (``POST /edits`` with the
clip ids of its own search), give the same EDL, byte for byte, and the same clips (``frameseek.api.clip_window``).

Real footage (``bikes.mp4``, 10 s), the real model, a real ``frameseek search`` process and a real server on
127.0.0.1 sharing one FRAMESEEK_HOME (so both search the same index). At 4 frames per second the query's
hits include segments shorter than 1 s, one of them at the video's very end: the rule widens them to 1 s,
inside the video.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from frameseek.api import MIN_CLIP_SECONDS, SearchResult, clip_bounds, clip_window, probe
from frameseek.app import logic
from service_support import Server, start_server
from videos import require_bikes

QUERY = "a cyclist wearing a helmet"
FPS, TOP_K, MIN_GAP = 4.0, 5, 1.0
PAD_BEFORE, PAD_AFTER = 0.25, 0.5
RESULT_KEYS = ("video", "title", "time", "timecode", "score", "start", "end", "thumbnail", "match", "text")
EDL_RATE = Fraction(25)  # bikes.mp4 is 25 fps: the EDL's rate


@dataclass
class Doors:
    video: Path
    cli: dict[str, Any]
    """``frameseek search --json --export``'s answer."""
    server: Server
    service: dict[str, Any]
    """``POST /search``'s answer (the hits with their clip ids)."""


@pytest.fixture(scope="module")
def doors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doors]:
    home = tmp_path_factory.mktemp("home")
    media = tmp_path_factory.mktemp("media").resolve()
    video = media / "bikes.mp4"
    shutil.copy(require_bikes(), video)
    export = tmp_path_factory.mktemp("export")
    command = [sys.executable, "-m", "frameseek", "search", str(video), QUERY, "--json",
               "--fps", str(FPS), "--top-k", str(TOP_K), "--min-gap", str(MIN_GAP),
               "--export", str(export), "--markers", "edl",
               "--pad-before", str(PAD_BEFORE), "--pad-after", str(PAD_AFTER)]  # fmt: skip
    env = {**os.environ, "FRAMESEEK_HOME": str(home)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    cli = json.loads(done.stdout)
    server = start_server(home, media=[media], extra=["--rate-limit", "1000", "--rate-burst", "1000"])
    try:
        with server.client() as client:
            answer = client.post(
                "/search",
                json={"source": "bikes.mp4", "query": QUERY, "fps": FPS, "top_k": TOP_K, "min_gap": MIN_GAP},
            )
        assert answer.status_code == 200, answer.text
        yield Doors(video, cli, server, answer.json())
    finally:
        server.stop()


def hits_of(answer: dict[str, Any]) -> list[SearchResult]:
    return [SearchResult(**{key: row[key] for key in RESULT_KEYS}) for row in answer["results"]]


def edl_events(text: str) -> list[tuple[str, str]]:
    """(source in, source out) of each event of an EDL."""
    return [(line.split()[4], line.split()[5]) for line in text.splitlines() if line[:3].isdigit()]


def frames(seconds: float) -> int:
    return int(Fraction(seconds).limit_denominator(1_000_000) * EDL_RATE + Fraction(1, 2))


def timecode(count: int) -> str:
    seconds, ff = divmod(count, 25)
    return f"00:00:{seconds:02d}:{ff:02d}"


def test_the_doors_searched_the_same_hits_and_some_are_shorter_than_a_second(doors: Doors) -> None:
    cli, service = hits_of(doors.cli), hits_of(doors.service)
    assert len(cli) == TOP_K and [(h.video, h.time, h.start, h.end) for h in cli] == [
        (h.video, h.time, h.start, h.end) for h in service
    ]
    assert [h.score for h in cli] == pytest.approx([h.score for h in service], abs=5e-5)
    short = [h for h in cli if h.end - h.start < MIN_CLIP_SECONDS]
    assert short, "no hit shorter than 1 s: the widening rule would not be exercised"
    assert any(h.end >= 10.0 - 1e-6 for h in short)  # a short hit at the video's end: widened backwards


def test_cli_app_and_service_write_the_same_edl_byte_for_byte(doors: Doors) -> None:
    cli_text = Path(doors.cli["markers"]).read_bytes()
    app_text = logic.markers_file(hits_of(doors.cli), "edl", doors.cli["query"], PAD_BEFORE, PAD_AFTER)
    with doors.server.client() as client:
        answer = client.post(
            "/edits",
            json={
                "clips": [hit["clip_id"] for hit in doors.service["results"]],
                "format": "edl",
                "pad_before": PAD_BEFORE,
                "pad_after": PAD_AFTER,
                "query": QUERY,
            },
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == 'attachment; filename="markers.edl"'
    assert cli_text == app_text == answer.content


def test_every_edl_event_is_the_one_clip_rule(doors: Doors) -> None:
    duration = probe(doors.video).duration
    assert duration == pytest.approx(10.0, abs=0.05)
    expected = []
    for hit in hits_of(doors.cli):
        first, last = clip_window(hit, pad_before=PAD_BEFORE, pad_after=PAD_AFTER, duration=duration)
        start, end = clip_bounds(hit, duration)
        assert end - start >= MIN_CLIP_SECONDS - 1e-9 and 0.0 <= first <= start and end <= last <= duration
        expected.append((timecode(frames(first)), timecode(frames(last))))
    assert edl_events(Path(doors.cli["markers"]).read_text()) == expected


def test_the_clip_of_a_short_hit_is_widened_alike_at_every_door(doors: Doors, tmp_path: Path) -> None:
    duration = probe(doors.video).duration
    hits = hits_of(doors.cli)
    rank = next(i for i, h in enumerate(hits) if h.end - h.start < MIN_CLIP_SECONDS)
    first, last = clip_window(hits[rank], pad_before=PAD_BEFORE, pad_after=PAD_AFTER, duration=duration)
    start, end = clip_bounds(hits[rank], duration)

    cli_clip = probe(doors.cli["exports"][rank]["clip"]).duration
    (tmp_path / "app.mp4").write_bytes(logic.clip_mp4(hits[rank], PAD_BEFORE, PAD_AFTER))
    app_clip = probe(tmp_path / "app.mp4").duration
    with doors.server.client() as client:  # the service's clips have no handles
        answer = client.get(doors.service["results"][rank]["clip_url"])
    assert answer.status_code == 200
    (tmp_path / "service.mp4").write_bytes(answer.content)
    service_clip = probe(tmp_path / "service.mp4").duration

    frame = 1 / 25
    assert cli_clip == pytest.approx(last - first, abs=frame)
    assert app_clip == pytest.approx(cli_clip, abs=1e-3)
    assert service_clip == pytest.approx(end - start, abs=frame)
    assert service_clip >= MIN_CLIP_SECONDS - frame
