"""The sound track (``frameseek.sounds``): real audio made here with sox and espeak-ng — silence, a plucked
melody, a sung-like vowel line and a spoken sentence — muxed into a real video, read by the offline event
detector, stored, and found by queries about music, singing and speaking (never in the silence)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from frameseek.indexing.text_tracks import TextTrackBuilder, TrackOptions
from frameseek.indexing.tracks import TrackContext
from frameseek.metrics import PipelineMetrics
from frameseek.search import Searcher
from frameseek.sounds.events import SOUND_CLASSES, SoundEvent, detect_sounds
from frameseek.sounds.query import sound_request
from frameseek.storage.store import video_folder
from frameseek.text.speech import decode_audio
from frameseek.video.sources import resolve
from test_search import shared_model  # tests/ is on sys.path (like conftest)
from videos import make_video

MELODY = (4.0, 7.2)
SUNG = (10.2, 14.4)
SPOKEN_FROM = 16.4
SILENCES = ((0.0, 4.0), (7.2, 10.2), (14.4, 16.4))
SOUNDS = TrackOptions(subtitles=False, extra=frozenset({"sounds"}))


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture(scope="module")
def heard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24 s video: silence 0–4 s, a melody 4–7.2 s, silence, a sung-like vowel line 10.2–14.4 s,
    silence, then a spoken sentence from 16.4 s."""
    sox, espeak, ffmpeg = _tool("sox"), _tool("espeak-ng"), _tool("ffmpeg")
    tmp = tmp_path_factory.mktemp("heard")
    notes = [f"synth 0.4 pluck {n}" for n in ("C4", "E4", "G4", "C5", "A4", "F4", "D4", "G4")]
    _run(sox, "-n", "-r", "16000", "-c", "1", str(tmp / "melody.wav"), *" : ".join(notes).split())
    ssml = (
        '<speak><prosody pitch="+0%">aaaaaah</prosody><prosody pitch="+30%">ooooooh</prosody>'
        '<prosody pitch="+60%">aaaaaah</prosody><prosody pitch="+20%">eeeeee</prosody></speak>'
    )
    _run(espeak, "-m", "-s", "40", "-w", str(tmp / "sung.wav"), ssml)
    _run(
        espeak, "-w", str(tmp / "said.wav"), "Welcome to the kitchen. Today we bake a loaf of bread together."
    )
    parts = []
    for name, seconds in (("s1", 4.0), ("s2", 3.0), ("s3", 2.0), ("s4", 2.0)):
        _run(sox, "-n", "-r", "16000", "-c", "1", str(tmp / f"{name}.wav"), "trim", "0", str(seconds))
    for name in ("sung", "said"):
        _run(sox, str(tmp / f"{name}.wav"), "-r", "16000", "-c", "1", str(tmp / f"{name}16.wav"))
    _run(sox, str(tmp / "sung16.wav"), str(tmp / "sung42.wav"), "trim", "0", "4.2")
    parts = ["s1", "melody", "s2", "sung42", "s3", "said16", "s4"]
    _run(sox, *(str(tmp / f"{p}.wav") for p in parts), str(tmp / "all.wav"))
    make_video(tmp / "picture.mp4", seconds=24.0, fps=5, size=(96, 64), cuts=(8.0, 16.0))
    out = tmp / "heard.mp4"
    _run(
        ffmpeg, "-y", "-loglevel", "error", "-i", str(tmp / "picture.mp4"), "-i", str(tmp / "all.wav"),
        "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(out),
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def events(heard: Path) -> list[SoundEvent]:
    samples, offset = decode_audio(heard)
    return detect_sounds(samples, offset)


def _inside(event: SoundEvent, span: tuple[float, float], slack: float = 0.5) -> bool:
    return event.start >= span[0] - slack and event.end <= span[1] + slack


def _overlap(a: float, b: float, span: tuple[float, float]) -> float:
    return max(0.0, min(b, span[1]) - max(a, span[0]))


def test_the_detector_hears_the_melody_as_music_and_nothing_in_the_silences(events: list[SoundEvent]) -> None:
    music = [e for e in events if e.kind == "music"]
    assert any(_overlap(e.start, e.end, MELODY) > 2.0 and e.probability > 0.5 for e in music)
    for e in events:
        assert all(_overlap(e.start, e.end, s) < 0.5 for s in SILENCES), e
    assert {e.kind for e in events} <= set(SOUND_CLASSES)


def test_the_detector_hears_the_sung_vowels_as_singing_and_the_sentence_as_speech(
    events: list[SoundEvent],
) -> None:
    assert any(e.kind == "singing" and _overlap(e.start, e.end, SUNG) > 1.0 for e in events)
    assert not any(e.kind == "singing" and e.start >= SPOKEN_FROM for e in events)
    assert any(e.kind == "speech" and _overlap(e.start, e.end, (SPOKEN_FROM, 24.0)) > 2.0 for e in events)


def test_queries_name_sound_classes_with_how_much_of_the_query_they_answer() -> None:
    assert sound_request("when the music starts").classes == {"music": 1.0}
    assert sound_request("a song").classes == {"music": 1.0, "singing": 1.0}
    assert sound_request("someone singing").classes == {"singing": 1.0}
    assert sound_request("a man playing guitar on the beach").classes == {"music": 0.5}
    assert sound_request("when the music stops").at_end
    assert sound_request("someone talking").classes == {"speech": 1.0}
    # what is said is the speech track's question; absence and unrelated queries ask nothing of sounds
    for text in ("talking about bread", "no music here", "a dog on the beach", "", None):
        assert sound_request(text).classes == {}


@pytest.fixture
def searcher(fs_home: Path) -> Searcher:
    return Searcher(shared_model())


def test_a_music_query_finds_the_music_with_a_sound_badge_and_never_the_silence(
    searcher: Searcher, heard: Path
) -> None:
    (src,) = resolve(str(heard))
    response = searcher.search(src, "when the music starts", tracks=SOUNDS, top_k=5)
    best = response.results[0]
    assert best.match.startswith("sounds") and best.text == "[music]"
    assert MELODY[0] - 0.5 <= best.time <= MELODY[0] + 1.0 and best.confidence >= 0.5 and response.found
    heard_results = [r for r in response.results if "sounds" in r.match]
    assert all(all(_overlap(r.start, r.end, s) < 0.5 for s in SILENCES) for r in heard_results)

    stops = searcher.search(src, "when the music stops", tracks=SOUNDS, top_k=1).results[0]
    assert stops.match.startswith("sounds") and MELODY[1] - 1.0 <= stops.time <= MELODY[1] + 0.5

    sung = searcher.search(src, "someone singing", tracks=SOUNDS, top_k=3).results[0]
    assert (
        sung.match.startswith("sounds") and sung.text == "[singing]" and SUNG[0] - 0.5 <= sung.time < SUNG[1]
    )

    plain = searcher.search(src, "when the music starts", tracks=TrackOptions(subtitles=False), top_k=5)
    assert all("sounds" not in r.match for r in plain.results)  # not asked for: not scored


def test_the_sound_track_is_stored_once_and_a_damaged_entry_is_rebuilt(fs_home: Path, heard: Path) -> None:
    (src,) = resolve(str(heard))
    builder = TextTrackBuilder(frame_limit=10_000, max_pixels=10**8)
    first = builder.tracks(src, 24.0, SOUNDS, PipelineMetrics()).extra["sounds"]
    (stored,) = (video_folder(src.sha256) / "sounds").glob("*.json")
    assert [SoundEvent.from_list(r) for r in json.loads(stored.read_text())["events"]] == first

    metrics = PipelineMetrics()
    assert builder.tracks(src, 24.0, SOUNDS, metrics).extra["sounds"] == first
    assert "sounds" not in metrics.stages and "audio" not in metrics.stages  # loaded: nothing decoded

    stored.write_text("{not json")
    assert builder.tracks(src, 24.0, SOUNDS, PipelineMetrics()).extra["sounds"] == first


def test_a_video_without_sound_gets_a_one_line_notice_not_an_error(fs_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "mute.mp4"
    make_video(path, seconds=2.0, fps=5, size=(96, 64))
    (src,) = resolve(str(path))
    got = TextTrackBuilder(frame_limit=10_000, max_pixels=10**8).tracks(src, 2.0, SOUNDS, PipelineMetrics())
    assert got.extra.get("sounds") is None
    assert any("has no audio stream; sound search skipped" in n and "\n" not in n for n in got.notices)


def test_the_audio_is_decoded_once_per_build_for_every_audio_track(heard: Path) -> None:
    (src,) = resolve(str(heard))
    ctx = TrackContext(24.0, PipelineMetrics())
    first = ctx.audio(src)
    again = ctx.audio(src)
    assert again[0] is first[0] and len(first[0]) > 20 * 16000  # the whole sound, once
    assert isinstance(first[0], np.ndarray) and first[0].dtype == np.float32


def test_the_command_line_searches_sounds_with_sounds_and_shows_the_badge_in_json(
    fs_home: Path, heard: Path
) -> None:
    from typer.testing import CliRunner

    from frameseek import cli

    args = ["search", str(heard), "someone singing", "--sounds", "--no-subtitles", "--json", "--top-k", "1"]
    result = CliRunner().invoke(cli.app, [*args, "--model", "lite"])
    assert result.exit_code == 0, result.output
    best = json.loads(result.stdout)["results"][0]
    assert (
        "sounds" in best["match"] and best["text"] == "[singing]" and SUNG[0] - 0.5 <= best["time"] < SUNG[1]
    )
