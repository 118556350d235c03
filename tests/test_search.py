"""Searcher end to end with the real lite model, the real decoder and real files (and a real HTTP server).

The plumbing tests run with the packaged trained heads when they are installed, else with the same
architecture and random (seeded) heads. The quality tests need the trained heads and skip without them.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from frameseek import search as search_module
from frameseek import settings as fs_settings
from frameseek.editing.export import export_clip, export_frame
from frameseek.errors import FrameseekError, IndexError_, InputError, SourceError
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import build_preset, create_model
from frameseek.models.registry import packaged_weights
from frameseek.moments.confidence import FOUND_AT
from frameseek.moments.fusion import overlap_share
from frameseek.search import Searcher, SearchResponse, SearchResult
from frameseek.storage import library_entries
from frameseek.timecode import format_timecode
from frameseek.video.decode import frame_at, probe
from frameseek.video.sampling import Sampling
from videos import MSRVTT_DIR, require_bikes, require_ffmpeg

RESULT_KEYS = {"video", "time", "timecode", "score", "start", "end", "thumbnail"}
METRIC_KEYS = {
    "download_bytes", "download_mb_per_s", "extraction_frames_per_s", "encoding_frames_per_s",
    "search_latency_ms", "cpu_percent", "peak_rss_mb", "frames_processed", "frames_decoded",
    "index_reused", "wall_seconds",
}  # fmt: skip
SMALL_CLIPS = ("video740.mp4", "video1672.mp4", "video3696.mp4")  # ~11-14 s, 298x224, 3 fps
QUALITY = [("a cyclist wearing a helmet", 3.0, 5.5), ("cars in a traffic jam", 1.2, 3.0)]


@functools.cache
def _shared() -> tuple[DualEncoder, bool]:
    """The lite model, loaded once per session: (model, trained heads installed?)."""
    if packaged_weights("lite") is not None:
        return create_model("lite"), True
    model = build_preset("lite")
    model.eval()
    return model, False


def shared_model() -> DualEncoder:
    """The lite model (trained heads if installed, else random heads); shared with test_cli."""
    return _shared()[0]


def require_trained() -> None:
    if not _shared()[1]:
        pytest.skip("the lite model's trained heads are not installed in src/frameseek/weights/lite/")


def small_clips() -> list[Path]:
    clips = [MSRVTT_DIR / name for name in SMALL_CLIPS]
    missing = [c.name for c in clips if not c.is_file()]
    if missing:
        pytest.skip(f"MSR-VTT sample clips not available in {MSRVTT_DIR}: {', '.join(missing)}")
    return clips


def ffprobe_times(path: Path) -> list[float]:
    """Presentation times of every frame by ffprobe, relative to the stream start (as frameseek reports)."""
    require_ffmpeg()
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe is not installed")
    frames = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries",
         "frame=best_effort_timestamp_time", "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    start = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=start_time",
         "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout.strip().split(",")[0]  # fmt: skip
    origin = float(start) if start not in ("", "N/A") else 0.0
    values = [line.split(",")[0].strip() for line in frames.splitlines()]
    return sorted(float(v) - origin for v in values if v and v != "N/A")


def grid_times(
    all_times: list[float], fps: float, start: float = 0.0, end: float | None = None
) -> list[float]:
    """What grid sampling must keep: the first frame at or after each time start + k / fps."""
    kept: list[float] = []
    k = 0
    for t in all_times:
        if t < start - 1e-9 or (end is not None and t >= end - 1e-9):
            continue
        if t >= start + k / fps - 1e-9:
            kept.append(t)
            while start + k / fps <= t + 1e-9:
                k += 1
    return kept


def check_response(response: SearchResponse, top_k: int = 5, min_gap: float = 2.0) -> None:
    """Invariants of every response: the documented fields, types, order (most confident first), one
    result per moment (no two closer than ``min_gap`` or overlapping by more than half), thumbnails."""
    data = json.loads(json.dumps(response.as_dict()))  # JSON-serialisable as is
    assert {"source", "model", "query", "results", "metrics", "found"} <= set(data)
    assert data["found"] == any(hit.confidence >= FOUND_AT for hit in response.results)
    assert set(data["metrics"]) >= METRIC_KEYS
    assert 1 <= len(response.results) <= top_k
    for hit, row in zip(response.results, data["results"], strict=True):
        assert isinstance(hit, SearchResult)
        assert set(row) >= RESULT_KEYS
        assert isinstance(hit.time, float) and isinstance(hit.score, float)
        assert 0.0 <= hit.confidence <= 1.0 and row["confidence"] == hit.confidence
        assert hit.timecode == format_timecode(hit.time)
        assert hit.start <= hit.time <= hit.end
        assert hit.thumbnail is not None and Path(hit.thumbnail).is_file()
        with Image.open(hit.thumbnail) as thumb:
            assert thumb.format == "JPEG"
    confidences = [hit.confidence for hit in response.results]
    assert confidences == sorted(confidences, reverse=True)
    for i, a in enumerate(response.results):
        for b in response.results[i + 1 :]:
            assert a.video != b.video or abs(a.time - b.time) >= min_gap
            assert overlap_share(a, b) <= 0.5, (a, b)


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One FRAMESEEK_HOME for the module (like ``fs_home``), so bikes.mp4 is indexed once."""
    root = tmp_path_factory.mktemp("search-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESEEK_HOME", str(root))
        yield root


@pytest.fixture(scope="module")
def model(home: Path) -> DualEncoder:
    return shared_model()


@pytest.fixture(scope="module")
def searcher(model: DualEncoder) -> Searcher:
    return Searcher(model)


@pytest.fixture(scope="module")
def bikes() -> Path:
    return require_bikes()


@pytest.fixture(scope="module")
def first(searcher: Searcher, bikes: Path) -> SearchResponse:
    """The first query on bikes.mp4: builds its index."""
    return searcher.search(bikes, "a cyclist wearing a helmet")


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real HTTP server on 127.0.0.1 (in a thread) serving a folder: (folder, base URL)."""
    root = tmp_path / "site"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ------------------------------------------------------------------------------------------ one video


def test_first_query_builds_the_index(first: SearchResponse, bikes: Path, home: Path) -> None:
    check_response(first)
    assert first.source == str(bikes)
    assert first.model == "lite"
    assert first.query == "a cyclist wearing a helmet"
    assert all(hit.video == str(bikes.resolve()) and hit.title == "bikes" for hit in first.results)
    assert all(hit.end <= 10.0 + 1e-6 for hit in first.results)  # bikes.mp4 lasts 10 s
    assert all(Path(hit.thumbnail or "").is_relative_to(home / "indexes") for hit in first.results)
    m = first.metrics
    assert m["index_reused"] is False
    assert m["frames_decoded"] == m["frames_processed"] == 10  # 10 s at 1 frame per second
    assert m["download_bytes"] == 0 and m["download_mb_per_s"] is None  # a local file
    assert m["extraction_frames_per_s"] > 0 and m["encoding_frames_per_s"] > 0
    assert m["indexing_video_seconds_per_s"] > 0
    assert m["search_latency_ms"] > 0 and m["peak_rss_mb"] > 0 and m["cpu_percent"] >= 0
    assert m["wall_seconds"] > 0
    assert len(first.timelines) == 1 and len(first.timelines[0].scores) == 10


def test_times_are_the_decoders_pts(searcher: Searcher, first: SearchResponse, bikes: Path) -> None:
    """Sampled times are ffprobe's frame times: by default (B-frames skipped while sampling sparsely) the
    first decoded frame at most a few frames after each second; with exact frames, exactly the first."""
    probed = ffprobe_times(bikes)
    assert len(probed) == 250
    (index,) = [o.index for o in searcher.index(bikes)]
    kept = [round(float(t), 6) for t in index.times]
    assert set(kept) <= {round(t, 6) for t in probed}
    grid = grid_times(probed, fps=1.0)
    assert len(kept) == len(grid)
    assert all(g - 1e-6 <= t <= g + 4 / 25 + 1e-6 for g, t in zip(grid, kept, strict=True))
    exact = Searcher(searcher.model, sampling=Sampling(fast_decode=False))
    (exact_index,) = [o.index for o in exact.index(bikes)]
    assert [round(float(t), 6) for t in exact_index.times] == [round(t, 6) for t in grid]
    assert {hit.time for hit in first.results} <= set(kept)
    timeline = first.timelines[0]
    for hit in first.results:  # each score is the frame's score on the timeline
        i = kept.index(hit.time)
        assert hit.score == pytest.approx(float(timeline.scores[i]), abs=1e-5)
        assert hit.thumbnail == str(index.thumbnail(i))


def test_second_query_decodes_and_encodes_nothing(
    model: DualEncoder, first: SearchResponse, bikes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("the second query must not decode or encode frames")

    monkeypatch.setattr("frameseek.indexing.reader.sample_frames", boom)
    monkeypatch.setattr("frameseek.indexing.runner.probe", boom)
    monkeypatch.setattr(DualEncoder, "encode_pixels", boom)
    monkeypatch.setattr(DualEncoder, "encode_images", boom)

    fresh = Searcher(model)  # a new Searcher (as in a new process) finds the stored index
    second = fresh.search(bikes, "cars in a traffic jam")
    check_response(second)
    m = second.metrics
    assert m["index_reused"] is True
    assert m["frames_decoded"] == 0 and m["frames_processed"] == 0 and m["frames_encoded"] == 0
    assert m["extraction_frames_per_s"] is None and m["encoding_frames_per_s"] is None
    assert "decode" not in m["stages_seconds"] and "encode" not in m["stages_seconds"]
    assert {hit.video for hit in second.results} == {str(bikes.resolve())}
    again = fresh.search(bikes, "a cyclist wearing a helmet")
    assert [(h.time, h.score, h.start, h.end) for h in again.results] == [
        (h.time, h.score, h.start, h.end) for h in first.results
    ]


def test_python_api_with_a_model_name(
    model: DualEncoder, first: SearchResponse, bikes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Searcher(model="lite").search("video.mp4", "a dog")`` with plain strings."""
    names: list[str] = []

    def load(name: str, **options: Any) -> DualEncoder:
        names.append(name)
        return model

    monkeypatch.setattr("frameseek.models.factory.create_model", load)
    response = Searcher(model="lite").search(str(bikes), "a dog", top_k=3)
    assert names == ["lite"]
    check_response(response, top_k=3)
    assert response.metrics["index_reused"] is True


def test_image_query_finds_its_own_frame(searcher: Searcher, first: SearchResponse, bikes: Path) -> None:
    frame = frame_at(bikes, 4.0)
    assert frame.time == pytest.approx(4.0)
    for image in (frame.image, Image.fromarray(frame.image)):  # an array or a PIL image
        response = searcher.search(bikes, image=image)
        check_response(response)
        assert response.query is None
        top = response.results[0]
        assert top.time == pytest.approx(4.0)
        assert top.score > 0.97
        assert response.metrics["index_reused"] is True


def test_text_and_image_query(
    searcher: Searcher, model: DualEncoder, first: SearchResponse, bikes: Path
) -> None:
    image = frame_at(bikes, 2.0).image
    text = "cars in a traffic jam"
    response = searcher.search(bikes, text, image=image, text_weight=0.5, top_k=10, min_gap=0.0)
    check_response(response, top_k=10, min_gap=0.0)
    assert response.query == text

    t = model.encode_texts([text])[0]
    i = model.encode_images([image])[0]
    expected = (0.5 * t + 0.5 * i) / np.linalg.norm(0.5 * t + 0.5 * i)
    (index,) = [o.index for o in searcher.index(bikes)]
    scores = index.embeddings @ expected
    for hit in response.results:
        frame = int(np.argmin(np.abs(index.times - hit.time)))
        assert hit.score == pytest.approx(float(scores[frame]), abs=1e-4)


class _FixedEncoder:
    """Just enough of a DualEncoder for ``Searcher.encode_query``: fixed text and image vectors."""

    name = "fixed"
    fingerprint = "fixed"
    device = "cpu"

    def __init__(self, text: np.ndarray, image: np.ndarray) -> None:
        self.text, self.image = text, image

    def eval(self) -> _FixedEncoder:
        return self

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.text for _ in texts])

    def encode_images(self, images: list[object]) -> np.ndarray:
        return np.stack([self.image for _ in images])

    def prepare_image_engine(self, threads: int | None = None) -> str:
        return "torch"


def test_query_weighting() -> None:
    t = np.array([1.0, 0.0, 0.0], np.float32)
    i = np.array([0.0, 1.0, 0.0], np.float32)
    searcher = Searcher(_FixedEncoder(t, i))  # type: ignore[arg-type]
    picture = np.zeros((8, 8, 3), np.uint8)
    np.testing.assert_allclose(searcher.encode_query("x"), t)
    np.testing.assert_allclose(searcher.encode_query(image=picture), i)
    # the weight slides between the two: 1.0 is the text alone, 0.0 the image alone
    np.testing.assert_allclose(searcher.encode_query("x", picture, 1.0), t)
    np.testing.assert_allclose(searcher.encode_query("x", picture, 0.0), i)
    np.testing.assert_allclose(searcher.encode_query("x", picture, 0.5), [2**-0.5, 2**-0.5, 0], rtol=1e-6)
    np.testing.assert_allclose(
        searcher.encode_query("x", picture, 0.75), np.array([3, 1, 0]) / 10**0.5, rtol=1e-6
    )
    with pytest.raises(InputError):
        searcher.encode_query()
    opposite = Searcher(_FixedEncoder(t, -t))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="cancel"):
        opposite.encode_query("x", picture, 0.5)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"query": ""}, InputError),
        ({"query": "   \n\t "}, InputError),
        ({"query": None}, InputError),  # neither text nor image
        ({"query": "a dog", "top_k": 0}, InputError),
        ({"query": "a dog", "min_gap": -1.0}, InputError),
    ],
)
def test_bad_queries(
    searcher: Searcher,
    bikes: Path,
    kwargs: dict[str, object],
    error: type[Exception],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("frameseek.indexing.reader.sample_frames", None)  # rejected before any decoding
    with pytest.raises(error):
        searcher.search(bikes, **kwargs)  # type: ignore[arg-type]


def test_missing_file_is_a_source_error(searcher: Searcher, tmp_path: Path, fs_home: Path) -> None:
    with pytest.raises(SourceError):
        searcher.search(tmp_path / "nope.mp4", "a dog")
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    with pytest.raises(FrameseekError):  # a one-line DecodeError, not a crash
        searcher.search(not_video, "a dog")


def test_long_query_is_truncated_with_a_notice(
    searcher: Searcher, first: SearchResponse, bikes: Path
) -> None:
    limit = fs_settings.limits().max_query_chars
    response = searcher.search(bikes, "dog " * limit)
    assert response.query is not None and len(response.query) == limit
    assert any("truncated" in n for n in response.notices)


def test_export_frames_and_clips(first: SearchResponse, tmp_path: Path) -> None:
    assert len(first.results) >= 2
    for rank, hit in enumerate(first.results[:2], 1):
        jpeg = export_frame(hit.video, hit.time, tmp_path / f"{rank}.jpg")
        with Image.open(jpeg) as image:
            assert image.format == "JPEG" and image.size == (640, 272)
        clip = export_clip(hit.video, hit.start, hit.end, tmp_path / f"{rank}.mp4")
        info = probe(clip)
        assert info.duration is not None
        assert info.duration == pytest.approx(hit.end - hit.start, abs=0.1)


# ------------------------------------------------------------------------------------------ sampling


def test_scene_sampling(model: DualEncoder, first: SearchResponse, bikes: Path) -> None:
    scene = Searcher(model, sampling=Sampling(scene=True))
    response = scene.search(bikes, "a cyclist wearing a helmet")
    check_response(response)
    (index,) = [o.index for o in scene.index(bikes)]
    (grid,) = [o.index for o in Searcher(model).index(bikes)]
    assert index.folder != grid.folder  # another index, same video
    assert index.sampling.scene is True
    probed = {round(t, 6) for t in ffprobe_times(bikes)}
    times = [float(t) for t in index.times]
    assert {round(t, 6) for t in times} <= probed
    assert times[0] == 0.0 and times == sorted(times)
    assert 3 <= len(times) < 25
    assert max(np.diff(times)) <= 10.0 + 1e-6
    for cut in (1.2, 3.04, 5.48):  # the shot changes of bikes.mp4 (traffic jam 1.2-3.0, cyclist 3.0-5.5)
        assert any(abs(t - cut) <= 0.1 for t in times), f"no frame sampled at the cut near {cut} s"
    for hit in response.results:  # in scene mode a frame stands for its shot: up to the next sampled frame
        assert hit.start in times
        later = [t for t in times if t > hit.time]
        assert hit.end in later or hit.end == pytest.approx(index.duration)


def test_time_window(model: DualEncoder, bikes: Path) -> None:
    window = Searcher(model, sampling=Sampling(start=2.5, end=5.5, fast_decode=False))
    response = window.search(bikes, "a cyclist wearing a helmet", min_gap=0.0)
    check_response(response, min_gap=0.0)
    (index,) = [o.index for o in window.index(bikes)]
    probed = ffprobe_times(bikes)
    assert [round(float(t), 6) for t in index.times] == [
        round(t, 6) for t in grid_times(probed, fps=1.0, start=2.5, end=5.5)
    ]
    assert index.times[0] >= 2.5 and index.times[-1] < 5.5
    for hit in response.results:
        assert 2.5 <= hit.start <= hit.time <= hit.end <= 5.5
    assert response.metrics["video_seconds"] == pytest.approx(3.0)
    with pytest.raises(InputError):
        Searcher(model, sampling=Sampling(start=5.0, end=2.0))


def test_max_frames_and_an_empty_window(model: DualEncoder, bikes: Path) -> None:
    capped = Searcher(model, sampling=Sampling(max_frames=2, fast_decode=False)).search(
        bikes, "a dog", min_gap=0.0
    )
    check_response(capped, min_gap=0.0)
    assert capped.metrics["frames_processed"] == 2
    assert capped.metrics["video_seconds"] == pytest.approx(2.0)  # the frames at 0 s and 1 s cover 2 s
    assert {hit.time for hit in capped.results} <= {0.0, 1.0}
    assert capped.notices == [
        "bikes: only the first 2 sampled frames (up to 00:00:01.000) are indexed; raise --max-frames or "
        "FRAMESEEK_MAX_FRAMES to index the rest"
    ]
    whole = Searcher(model, sampling=Sampling(max_frames=10, fast_decode=False))
    assert whole.search(bikes, "a dog").notices == []  # 10 frames are the whole 10 s video: no notice
    with pytest.raises(InputError, match="no frames"):
        Searcher(model, sampling=Sampling(start=100.0)).search(bikes, "a dog")


def test_damaged_index_is_rebuilt(model: DualEncoder, fs_home: Path) -> None:
    clip = small_clips()[0]
    searcher = Searcher(model, sampling=Sampling(max_frames=3))
    built = searcher.search(clip, "a man talking")
    (index,) = [o.index for o in searcher.index(clip)]
    data = (index.folder / "embeddings.safetensors").read_bytes()
    (index.folder / "embeddings.safetensors").write_bytes(data[: len(data) // 3])

    rebuilt = searcher.search(clip, "a man talking")
    assert rebuilt.metrics["index_reused"] is False
    assert rebuilt.metrics["frames_decoded"] == built.metrics["frames_decoded"] > 0
    assert [(h.time, h.score) for h in rebuilt.results] == [(h.time, h.score) for h in built.results]
    assert searcher.search(clip, "a man talking").metrics["index_reused"] is True


# ------------------------------------------------------------------------------------------ many videos


@pytest.fixture(scope="module")
def clip_searcher(model: DualEncoder) -> Searcher:
    """One frame every 4 s of the small clips (3-4 frames each): quick to index."""
    return Searcher(model, sampling=Sampling(fps=0.25))


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    for clip in small_clips():
        (folder / clip.name).symlink_to(clip)
    return folder


def test_folder_source(clip_searcher: Searcher, clip_folder: Path) -> None:
    searcher = clip_searcher
    clips = [c.resolve() for c in small_clips()]
    response = searcher.search(clip_folder, "a person", top_k=10)
    check_response(response, top_k=10)
    videos = {hit.video for hit in response.results}
    assert videos <= {str(c) for c in clips}
    assert len(videos) >= 2  # at most 4 frames per 11-14 s clip: the top 10 spans several clips
    assert len(response.timelines) == 3
    assert response.metrics["frames_processed"] == sum(len(t.times) for t in response.timelines)

    # an image query with a (sampled) frame of the second clip finds that clip at that time
    target = clips[1]
    (index,) = [o.index for o in searcher.index(target)]
    frame = frame_at(target, float(index.times[len(index) // 2]))
    by_image = searcher.search(clip_folder, image=frame.image)
    assert by_image.metrics["index_reused"] is True
    assert by_image.results[0].video == str(target)
    assert by_image.results[0].time == pytest.approx(frame.time)


def test_library_search(clip_searcher: Searcher, clip_folder: Path) -> None:
    searcher = clip_searcher
    clips = [c.resolve() for c in small_clips()]
    outcomes, metrics = searcher.add([str(c) for c in clips], library="trio")
    indexes = [o.index for o in outcomes if o.index is not None]
    assert [Path(i.video_path) for i in indexes] == clips
    assert sorted(e["title"] for e in library_entries("trio")) == sorted(c.stem for c in clips)
    assert metrics.as_dict()["frames_processed"] >= 0

    target = clips[2]
    frame = frame_at(target, float(indexes[2].times[len(indexes[2]) // 2]))
    for use_ann in (False, True):
        response = searcher.search_library(image=frame.image, library="trio", use_ann=use_ann)
        check_response(response)
        assert response.source == "library:trio"
        assert response.metrics["index_reused"] is True
        assert response.results[0].video == str(target)
        assert response.results[0].time == pytest.approx(frame.time)

    by_text = searcher.search_library("a person talking", library="trio", top_k=8)
    check_response(by_text, top_k=8)
    assert 2 <= len(by_text.results) <= 8  # one result per moment: fewer moments than frames
    assert len({hit.video for hit in by_text.results}) >= 2

    # search(..., library=...) also records what it indexed
    searcher.search(clips[0], "a person", library="solo")
    assert [e["title"] for e in library_entries("solo")] == [clips[0].stem]
    with pytest.raises(IndexError_):
        searcher.search_library("a person", library="never-made")


def test_library_matrix_is_loaded_once_until_the_library_changes(
    clip_searcher: Searcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    searcher = clip_searcher
    clips = [c.resolve() for c in small_clips()]
    searcher.add([str(clips[0])], library="cached")
    loads: list[str] = []
    original = search_module.load_library

    def counting(name: str, *args: Any) -> Any:
        loads.append(name)
        return original(name, *args)

    monkeypatch.setattr(search_module, "load_library", counting)
    first = searcher.search_library("a person", library="cached", top_k=10)
    again = searcher.search_library("a person", library="cached", top_k=10)
    assert loads == ["cached"]  # the second query reuses the stacked matrix
    assert [(h.video, h.time, h.score) for h in again.results] == [
        (h.video, h.time, h.score) for h in first.results
    ]
    assert {h.video for h in first.results} == {str(clips[0])}

    searcher.add([str(clips[1])], library="cached")  # the list changed: loaded again, new video found
    grown = searcher.search_library("a person", library="cached", top_k=10)
    assert loads == ["cached", "cached"]
    assert {h.video for h in grown.results} == {str(clips[0]), str(clips[1])}


def test_url_source(model: DualEncoder, fs_home: Path, no_proxy: None, http_site: tuple[Path, str]) -> None:
    root, base = http_site
    clip = small_clips()[0]
    shutil.copyfile(clip, root / "clip.mp4")
    url = f"{base}/clip.mp4"
    searcher = Searcher(model, sampling=Sampling(max_frames=3))

    response = searcher.search(url, "a person")
    check_response(response)
    assert response.source == url
    m = response.metrics
    assert m["download_bytes"] == clip.stat().st_size > 0
    assert m["download_mb_per_s"] is not None and m["download_mb_per_s"] > 0
    assert m["index_reused"] is False and m["frames_processed"] > 0
    assert all(Path(h.video).is_relative_to(fs_settings.downloads_dir()) for h in response.results)

    again = searcher.search(url, "a person")  # the download and the index are both reused
    assert again.metrics["download_bytes"] == 0
    assert again.metrics["index_reused"] is True
    assert [(h.time, h.score) for h in again.results] == [(h.time, h.score) for h in response.results]


# ------------------------------------------------------------------------------------------ quality


@pytest.mark.parametrize(("query", "low", "high"), QUALITY)
def test_quality_on_bikes(
    searcher: Searcher, first: SearchResponse, bikes: Path, query: str, low: float, high: float
) -> None:
    require_trained()
    response = searcher.search(bikes, query)
    timeline = response.timelines[0]
    per_second = ", ".join(f"{t:.2f}s={s:.3f}" for t, s in zip(timeline.times, timeline.scores, strict=True))
    top = response.results[0]
    assert low <= top.time <= high, (
        f"{query!r}: top hit at {top.time} s, expected [{low}, {high}]; scores {per_second}"
    )
