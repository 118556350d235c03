"""The track seam (``frameseek.indexing.tracks``): a toy track registered here is built from a real video's
decoded frames, stored under the video's content hash with its key, loaded back, and scored into the
search's fused results; the built-in text tracks go through the same registry."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from frameseek.errors import InputError
from frameseek.indexing.text_tracks import TextTrackBuilder, TrackOptions
from frameseek.indexing.tracks import (
    FrameTrack,
    TrackContext,
    TrackQuery,
    register,
    registered,
    unregister,
)
from frameseek.metrics import PipelineMetrics
from frameseek.results import SearchResult
from frameseek.search import Searcher
from frameseek.storage.store import track_path, video_folder
from frameseek.storage.visual import VideoIndex
from frameseek.timecode import format_timecode
from frameseek.video.decode import Frame
from frameseek.video.sampling import Sampling
from frameseek.video.sources import VideoSource, resolve
from test_search import shared_model  # tests/ is on sys.path (like conftest)
from videos import make_video

BUILDS: list[str] = []


class BrightnessTrack(FrameTrack[list[list[float]]]):
    """A toy frame track: the mean brightness of frames sampled at 2 fps; "bright" finds the brightest."""

    name: ClassVar[str] = "brightness"
    label: ClassVar[str] = "brightness"

    def wanted(self, options: TrackOptions) -> bool:
        return False  # only when TrackOptions(extra=...) names it

    def sampling(self, options: TrackOptions) -> Sampling:
        return Sampling(fps=2.0, fast_decode=False)  # every frame decoded: exact grid times

    def key(self, src: VideoSource, options: TrackOptions) -> str:
        return "mean-2fps-v1"

    def from_frames(
        self, frames: Iterable[Frame], src: VideoSource, options: TrackOptions, ctx: TrackContext
    ) -> list[list[float]]:
        BUILDS.append(src.title)
        return [[frame.time, float(frame.image.mean())] for frame in frames]

    def encode(self, value: list[list[float]]) -> str:
        return json.dumps(value)

    def decode(self, text: str) -> list[list[float]]:
        return [[float(t), float(m)] for t, m in json.loads(text)]

    def score(self, index: VideoIndex, value: list[list[float]], query: TrackQuery) -> list[SearchResult]:
        if query.text is None or "bright" not in query.text:
            return []
        time, _ = max(value, key=lambda row: row[1])
        return [
            SearchResult(
                video=index.video_path,
                title=index.title,
                time=time,
                timecode=format_timecode(time),
                score=0.99,
                start=time,
                end=time + 0.5,
                thumbnail=None,
                match="brightness",
            )
        ]


@pytest.fixture
def brightness() -> Iterator[None]:
    register(BrightnessTrack)  # the one line a new track adds
    BUILDS.clear()
    yield
    unregister("brightness")


@pytest.fixture
def clip(tmp_path: Path) -> VideoSource:
    path = tmp_path / "shots.mp4"
    make_video(path, seconds=6.0, fps=10, size=(96, 64), cuts=(2.0, 4.0))  # red, dark blue, yellow
    (src,) = resolve(str(path))
    return src


def test_a_registered_track_is_built_stored_under_the_video_hash_loaded_and_scored(
    fs_home: Path, brightness: None, clip: VideoSource
) -> None:
    options = TrackOptions(subtitles=False, extra=frozenset({"brightness"}))
    builder = TextTrackBuilder(frame_limit=10_000, max_pixels=10**8)
    metrics = PipelineMetrics()

    built = builder.tracks(clip, 6.0, options, metrics)
    stored = video_folder(clip.sha256) / "brightness" / "mean-2fps-v1.json"
    assert stored.is_file() and BUILDS == ["shots"]
    value = built.extra["brightness"]
    assert [round(t, 3) for t, _ in value] == [i / 2 for i in range(12)]  # its own sampling: 2 fps
    assert json.loads(stored.read_text()) == value

    again = TextTrackBuilder(frame_limit=10_000, max_pixels=10**8).tracks(clip, 6.0, options, metrics)
    assert BUILDS == ["shots"] and again.extra["brightness"] == value  # loaded back, not built again

    searcher = Searcher(shared_model())
    response = searcher.search(clip, "something bright", tracks=options, top_k=3)
    best = response.results[0]
    assert best.match.startswith("brightness") and 4.0 <= best.time < 6.0  # the yellow shot
    assert BUILDS == ["shots"]

    plain = searcher.search(clip, "something bright", tracks=TrackOptions(subtitles=False), top_k=3)
    assert all("brightness" not in r.match for r in plain.results)  # not asked for: not scored


def test_a_damaged_stored_track_is_rebuilt(fs_home: Path, brightness: None, clip: VideoSource) -> None:
    options = TrackOptions(subtitles=False, extra=frozenset({"brightness"}))
    builder = TextTrackBuilder(frame_limit=10_000, max_pixels=10**8)
    builder.tracks(clip, 6.0, options, PipelineMetrics())
    stored = video_folder(clip.sha256) / "brightness" / "mean-2fps-v1.json"
    stored.write_text("{not json")
    rebuilt = builder.tracks(clip, 6.0, options, PipelineMetrics())
    assert BUILDS == ["shots", "shots"] and len(rebuilt.extra["brightness"]) == 12


def test_the_text_tracks_are_registered_first_and_unknown_tracks_are_refused() -> None:
    assert list(registered())[:2] == ["speech", "screen"]
    with pytest.raises(InputError, match="no track is registered as smell"):
        TrackOptions(extra=frozenset({"smell"}))  # (faces and sounds are registered now)
    with pytest.raises(InputError, match="other than 'visual'"):
        register(BrightnessTrack, name="visual")


def test_the_text_tracks_are_listed_first_even_when_another_track_module_was_imported_before_them() -> None:
    code = (
        "import frameseek.people.track, frameseek.sounds.track\n"
        "import frameseek.indexing.text_tracks\n"
        "from frameseek.indexing.tracks import registered\n"
        "print(','.join(registered()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    names = out.stdout.strip().split(",")
    assert names[:2] == ["speech", "screen"] and {"faces", "sounds"} <= set(names[2:])


def test_a_track_is_stored_under_its_name_and_a_hash_key_and_nothing_else(fs_home: Path) -> None:
    sha = "ab" * 32
    assert (
        track_path(sha, "speech", "1855a47a1d05ef3c")
        == video_folder(sha) / "speech" / "1855a47a1d05ef3c.json"
    )
    for kind, key in (("visual", "k"), ("Faces", "k"), ("faces", "../up"), ("faces", "")):
        with pytest.raises(InputError):
            track_path(sha, kind, key)
