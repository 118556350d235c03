"""One decoding pass per indexing run: the picture's decode feeds every frame track (on-screen text here)
and the audio is decoded once for speech recognition and the sound track. Counted where it happens: every
``av.open`` of a real indexing run, told apart by what opened it (a frame sampler, an audio decoder, or a
look at the metadata)."""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import av
import pytest

from frameseek.indexing.reader import FrameReader
from frameseek.indexing.text_tracks import TextTrackBuilder, TrackOptions
from frameseek.indexing.tracks import FrameTrack, TrackContext, TrackQuery, register, unregister
from frameseek.metrics import PipelineMetrics
from frameseek.results import SearchResult
from frameseek.search import Searcher
from frameseek.storage.store import video_folder
from frameseek.storage.visual import VideoIndex
from frameseek.video.decode import Frame
from frameseek.video.sampling import Sampling
from frameseek.video.sources import VideoSource, resolve
from test_search import shared_model  # tests/ is on sys.path (like conftest)

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
EVERY_TRACK = TrackOptions(subtitles=False, speech=True, ocr=True, extra=frozenset({"sounds"}))


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s of 1280×720 video with a caption burned in from 3 s, and a spoken sentence then a melody."""
    ffmpeg, espeak, sox = _tool("ffmpeg"), _tool("espeak-ng"), _tool("sox")
    if not FONT.is_file():
        pytest.skip(f"font {FONT} is not installed")
    tmp = tmp_path_factory.mktemp("talk")
    subprocess.run([espeak, "-w", str(tmp / "said.wav"), "Good morning and welcome."], check=True)
    notes = " : ".join(f"synth 0.4 pluck {n}" for n in ("C4", "E4", "G4", "C5", "G4", "E4")).split()
    subprocess.run([sox, "-n", "-r", "16000", "-c", "1", str(tmp / "tune.wav"), *notes], check=True)
    subprocess.run(
        [sox, str(tmp / "said.wav"), "-r", "16000", "-c", "1", str(tmp / "said16.wav")], check=True
    )
    subprocess.run([sox, str(tmp / "said16.wav"), str(tmp / "tune.wav"), str(tmp / "all.wav")], check=True)
    out = tmp / "talk.mp4"
    text = (
        f"drawtext=fontfile={FONT}:text='FINAL LAP':fontsize=96:fontcolor=white:x=200:y=300:enable='gte(t,3)'"
    )
    subprocess.run(
        [
            ffmpeg, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=navy:s=1280x720:r=25:d=6",
            "-i", str(tmp / "all.wav"), "-vf", text, "-c:v", "libx264", "-preset", "veryfast",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-t", "6", str(out),
        ],
        check=True,
    )  # fmt: skip
    return out


class Opens:
    """Every ``av.open`` while active, by what opened it."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    def kind(self, stack: list[str]) -> str:
        if "sample_frames" in stack:
            return "video decode"
        if "_decode_audio" in stack:
            return "audio decode"
        return "metadata"

    @property
    def video(self) -> int:
        return self.calls["video decode"]

    @property
    def audio(self) -> int:
        return self.calls["audio decode"]


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> Iterator[Opens]:
    seen = Opens()
    real = av.open

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen.calls[seen.kind([f.name for f in traceback.extract_stack()])] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(av, "open", counting)
    yield seen


def _stored(src: VideoSource, name: str) -> list[Path]:
    return sorted((video_folder(src.sha256) / name).glob("*.json"))


def test_indexing_with_every_track_decodes_the_video_once_and_its_audio_once(
    fs_home: Path, talk: Path, opens: Opens
) -> None:
    (src,) = resolve(str(talk))
    searcher = Searcher(shared_model())
    metrics = PipelineMetrics()
    (outcome,) = searcher.index(src, metrics, tracks=EVERY_TRACK)
    assert outcome.error is None and outcome.index is not None and len(outcome.index) == 6
    assert (opens.video, opens.audio) == (1, 1), opens.calls
    screen = outcome.text.screen
    assert screen is not None and any("FINAL LAP" in s.text for s in screen.spans)
    assert all(s.start >= 2.5 for s in screen.spans)  # the caption appears at 3 s
    assert outcome.text.speech is not None and outcome.text.speech.spans
    assert any(e.kind == "music" for e in outcome.text.extra["sounds"])
    assert _stored(src, "screen") and _stored(src, "speech") and _stored(src, "sounds")

    before = dict(opens.calls)
    again = searcher.search(src, "final lap", tracks=EVERY_TRACK, top_k=1)
    assert "screen" in again.results[0].match
    assert opens.video == before.get("video decode") and opens.audio == before.get("audio decode")


def test_text_read_off_the_shared_frames_is_the_text_read_off_its_own_decode(
    fs_home: Path, talk: Path, opens: Opens
) -> None:
    (src,) = resolve(str(talk))
    ocr = TrackOptions(subtitles=False, ocr=True)
    Searcher(shared_model()).index(src, tracks=ocr)
    assert opens.video == 1
    (stored,) = _stored(src, "screen")
    shared = json.loads(stored.read_text())
    stored.unlink()
    alone = TextTrackBuilder(frame_limit=10_000, max_pixels=10**8).tracks(src, 6.0, ocr, PipelineMetrics())
    assert opens.video == 2  # built on its own: its own decode at its own size
    assert alone.screen is not None and json.loads(alone.screen.to_json())["spans"] == shared["spans"]


class Corners(FrameTrack[list[list[float]]]):
    """A second frame track (the mean of each frame's top-left pixel) to share a decode with OCR."""

    name: ClassVar[str] = "corners"
    label: ClassVar[str] = "corners"
    frames_seen: ClassVar[list[tuple[float, tuple[int, ...]]]] = []

    def wanted(self, options: TrackOptions) -> bool:
        return False

    def sampling(self, options: TrackOptions) -> Sampling:
        return Sampling(fps=1.0, max_side=320)

    def key(self, src: VideoSource, options: TrackOptions) -> str:
        return "corner-1fps-320"

    def from_frames(
        self, frames: Iterable[Frame], src: VideoSource, options: TrackOptions, ctx: TrackContext
    ) -> list[list[float]]:
        rows = []
        for frame in frames:
            Corners.frames_seen.append((frame.time, frame.image.shape))
            rows.append([frame.time, float(frame.image[0, 0].mean())])
        return rows

    def encode(self, value: list[list[float]]) -> str:
        return json.dumps(value)

    def decode(self, text: str) -> list[list[float]]:
        return [[float(t), float(m)] for t, m in json.loads(text)]

    def score(self, index: VideoIndex, value: list[list[float]], query: TrackQuery) -> list[SearchResult]:
        return []


def test_frame_tracks_added_later_share_one_decode_each_at_its_own_size(
    fs_home: Path, talk: Path, opens: Opens
) -> None:
    (src,) = resolve(str(talk))
    searcher = Searcher(shared_model())
    searcher.index(src)  # the picture alone, stored
    assert opens.video == 1
    register(Corners)
    Corners.frames_seen.clear()
    try:
        options = TrackOptions(subtitles=False, ocr=True, extra=frozenset({"corners"}))
        (outcome,) = searcher.index(src, tracks=options)
    finally:
        unregister("corners")
    assert opens.video == 2  # OCR and corners read one more decode between them, not one each
    own = FrameReader(Sampling(fps=1.0, max_side=320), frame_limit=10_000, max_pixels=10**8)(talk)
    own_frames = [(f.time, f.image.shape) for f in own]  # what its own decode would have given it
    assert Corners.frames_seen == own_frames and len(own_frames) == 6
    assert {shape for _, shape in Corners.frames_seen} == {(180, 320, 3)}  # scaled to its own size
    assert outcome.text.screen is not None and outcome.text.extra["corners"]
