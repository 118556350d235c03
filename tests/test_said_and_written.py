"""Search what is said and written, end to end: a video of our own with narration unrelated to the picture
(espeak-ng) and burned-in captions (ffmpeg drawtext) at known times, searched through the real CLI with
``--speech --ocr``; subtitles beside a file and inside it; the transcript command; library search.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from frameseek import cli
from frameseek.indexing.text_tracks import TrackOptions
from frameseek.models.dual_encoder import DualEncoder
from frameseek.search import Searcher
from test_search import shared_model  # tests/ is on sys.path (like conftest)
from videos import BIKES, require_bikes, require_ffmpeg

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")

SPOKEN = (  # (offset s, sentence): nothing in the picture (street footage) is about any of them
    (1.0, "The budget for next year is finally ready."),
    (10.0, "Our quarterly revenue doubled in March."),
    (19.0, "Remember to water the tomatoes every morning."),
)
WRITTEN = (  # (from s, to s, caption burned into the frames)
    (5.0, 8.0, "FINAL LAP"),
    (13.0, 16.0, "Chapter 4 - Winter pruning"),
    (23.0, 26.0, "Results"),
)
SPOKEN_QUERIES = (
    ("when she explains the budget", 0),
    ("revenue doubled", 1),
    ("water the tomatoes", 2),
)
WRITTEN_QUERIES = (
    ("final lap", 0),
    ("winter pruning", 1),
    ("the slide that says Results", 2),
)
VISUAL_QUERIES = (  # bikes.mp4's known scene timeline (../shared/data/README.md)
    ("a cyclist wearing a helmet", (3.0, 5.5)),
    ("cars in a traffic jam", (1.2, 3.0)),
)


def _run(*args: str) -> None:
    subprocess.run([*args], check=True, timeout=120, capture_output=True)


def _espeak(text: str, out: Path) -> Path:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed")
    _run(espeak, "-w", str(out), text)
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("said-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESEEK_HOME", str(root))
        mp.setenv("COLUMNS", "200")
        yield root


@pytest.fixture(scope="module")
def model(home: Path) -> DualEncoder:
    return shared_model()


@pytest.fixture(autouse=True)
def loaded_once(monkeypatch: pytest.MonkeyPatch, model: DualEncoder) -> None:
    monkeypatch.setattr("frameseek.models.factory.create_model", lambda name, **options: model)


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 s of real street footage (bikes.mp4 looped), narration at SPOKEN, captions at WRITTEN."""
    ffmpeg = require_ffmpeg()
    if not FONT.is_file():
        pytest.skip(f"font {FONT} is not installed")
    root = tmp_path_factory.mktemp("talk")
    waves = [_espeak(text, root / f"s{i}.wav") for i, (_, text) in enumerate(SPOKEN)]
    delays = ";".join(f"[{i + 1}]adelay={round(t * 1000)}:all=1[a{i}]" for i, (t, _) in enumerate(SPOKEN))
    mix = "".join(f"[a{i}]" for i in range(len(SPOKEN)))
    drawn = ",".join(
        f"drawtext=fontfile={FONT}:text='{text}':fontsize=40:fontcolor=white:box=1:boxcolor=black@0.6:"
        f"x=(w-text_w)/2:y=h-text_h-30:enable='between(t,{a},{b})'"
        for a, b, text in WRITTEN
    )
    graph = f"[0:v]{drawn}[v];{delays};{mix}amix=inputs={len(SPOKEN)}:duration=longest:normalize=0,apad[a]"
    inputs = [arg for w in waves for arg in ("-i", str(w))]
    out = root / "talk.mp4"
    _run(ffmpeg, "-v", "error", "-y", "-stream_loop", "2", "-i", str(require_bikes()), *inputs,
         "-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-t", "30", "-c:v", "libx264",
         "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(out))  # fmt: skip
    return out


def search_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["search", *args, "--json"])
    captured = capsys.readouterr()
    assert exit_info.value.code in (0, None), captured.err
    data: dict[str, object] = json.loads(captured.out)
    return data


@pytest.mark.slow
@pytest.mark.parametrize(("query", "which"), SPOKEN_QUERIES)
def test_the_top_hit_of_a_spoken_query_is_when_it_is_said(
    capsys: pytest.CaptureFixture[str], home: Path, talk: Path, query: str, which: int
) -> None:
    data = search_json(capsys, str(talk), query, "--speech", "--ocr")
    top = data["results"][0]  # type: ignore[index]
    said_at = SPOKEN[which][0]
    assert said_at - 1.0 <= top["time"] <= said_at + 1.5, (query, top)
    assert top["match"].split("+")[0] == "speech"
    assert top["start"] <= top["time"] < top["end"] <= said_at + 6.0  # the segment follows the sentence
    assert top["text"]
    metrics = data["metrics"]  # type: ignore[index]
    assert "transcription_audio_seconds_per_s" in metrics


@pytest.mark.slow
@pytest.mark.parametrize(("query", "which"), WRITTEN_QUERIES)
def test_the_top_hit_of_an_on_screen_query_is_when_it_is_shown(
    capsys: pytest.CaptureFixture[str], home: Path, talk: Path, query: str, which: int
) -> None:
    data = search_json(capsys, str(talk), query, "--speech", "--ocr")
    top = data["results"][0]  # type: ignore[index]
    shown_from, shown_to, caption = WRITTEN[which]
    assert shown_from - 1.0 <= top["time"] <= shown_to, (query, top)
    assert top["match"].split("+")[0] == "screen"
    assert caption.split()[-1].lower() in top["text"].lower()


@pytest.mark.slow
def test_a_second_query_transcribes_and_reads_nothing(
    capsys: pytest.CaptureFixture[str], home: Path, talk: Path, model: DualEncoder
) -> None:
    search_json(capsys, str(talk), "revenue", "--speech", "--ocr")  # the tracks exist (built above or now)
    data = search_json(capsys, str(talk), "tomatoes", "--speech", "--ocr")
    stages = data["metrics"]["stages_seconds"]  # type: ignore[index]
    assert "speech" not in stages and "screen" not in stages and "decode" not in stages
    # the transcript does not depend on the image model: another sampling (a new visual track) reuses it
    other = Searcher(model).search(talk, "tomatoes", tracks=TrackOptions(speech=True, ocr=True), top_k=1)
    assert other.results[0].match.startswith("speech")


@pytest.mark.slow
@pytest.mark.parametrize(("query", "scene"), VISUAL_QUERIES)
def test_visual_queries_on_bikes_still_pass_with_speech_and_ocr(
    capsys: pytest.CaptureFixture[str], home: Path, query: str, scene: tuple[float, float]
) -> None:
    data = search_json(capsys, str(require_bikes()), query, "--speech", "--ocr")
    top = data["results"][0]  # type: ignore[index]
    assert scene[0] - 0.05 <= top["time"] <= scene[1], (query, top)
    assert top["match"] == "visual"
    assert any("no audio stream" in n for n in data["notices"])  # type: ignore[union-attr]


@pytest.mark.slow
def test_transcript_command_prints_what_was_heard_and_read(
    capsys: pytest.CaptureFixture[str], home: Path, talk: Path
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["transcript", str(talk), "--speech", "--ocr", "--format", "json"])
    out = capsys.readouterr().out
    assert exit_info.value.code in (0, None)
    tracks = {t["kind"]: t for t in json.loads(out)["tracks"]}
    assert set(tracks) == {"speech", "screen"}
    assert tracks["speech"]["origin"] == "asr:whisper-base" and tracks["speech"]["language"] == "en"
    said = " ".join(s["text"] for s in tracks["speech"]["spans"]).lower()
    assert all(word in said for word in ("budget", "revenue", "tomato"))  # espeak + Whisper base: "tomato"
    read = " ".join(s["text"] for s in tracks["screen"]["spans"]).lower()
    assert all(word in read for word in ("final lap", "pruning", "results"))
    with pytest.raises(SystemExit):
        cli.main(["transcript", str(talk), "--speech", "--format", "srt"])
    srt = capsys.readouterr().out
    assert "-->" in srt and "budget" in srt.lower()


def _srt(path: Path, cues: list[tuple[float, float, str]]) -> Path:
    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    path.write_text(
        "".join(f"{i}\n{stamp(a)} --> {stamp(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues, 1)),
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
def test_sidecar_subtitles_are_used_by_default_and_embedded_ones_too(
    model: DualEncoder, home: Path, tmp_path: Path
) -> None:
    ffmpeg = require_ffmpeg()
    if not BIKES.is_file():
        pytest.skip("bikes.mp4 is not available")
    clip = tmp_path / "street.mp4"
    shutil.copy(BIKES, clip)
    _srt(tmp_path / "street.en.srt", [(6.0, 8.0, "the council approved the new budget")])
    searcher = Searcher(model)
    response = searcher.search(clip, "budget approved", top_k=3)  # no --speech: subtitles are enough
    top = response.results[0]
    assert top.match.startswith("speech") and 6.0 <= top.time < 8.0 and "budget" in (top.text or "")
    assert response.transcripts[str(clip.resolve())][0]["text"] == "the council approved the new budget"

    embedded = tmp_path / "embedded.mp4"
    srt = _srt(tmp_path / "cues.srt", [(2.0, 3.0, "a lighthouse keeper waves hello")])
    _run(ffmpeg, "-v", "error", "-y", "-i", str(BIKES), "-i", str(srt), "-map", "0:v", "-map", "1:s",
         "-c:v", "copy", "-c:s", "mov_text", "-metadata:s:s:0", "language=eng", str(embedded))  # fmt: skip
    hit = searcher.search(embedded, "lighthouse keeper", top_k=1).results[0]
    assert hit.match.startswith("speech") and 2.0 <= hit.time < 3.0

    no_subs = searcher.search(clip, "budget approved", top_k=3, tracks=TrackOptions(subtitles=False))
    assert all(r.match == "visual" for r in no_subs.results)


@pytest.mark.slow
def test_library_search_covers_the_text_tracks(
    model: DualEncoder, home: Path, talk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    searcher = Searcher(model)
    searcher.add([talk, require_bikes()], "talks", tracks=TrackOptions(speech=True, ocr=True))
    response = searcher.search_library("quarterly revenue", library="talks", top_k=3)
    top = response.results[0]
    assert top.video == str(talk.resolve()) and top.match.startswith("speech")
    assert SPOKEN[1][0] - 1.0 <= top.time <= SPOKEN[1][0] + 1.5
    pruning = searcher.search_library("winter pruning", library="talks", top_k=1).results[0]
    assert pruning.match.startswith("screen") and WRITTEN[1][0] - 1.0 <= pruning.time <= WRITTEN[1][1]
