"""First results before the whole video is decoded: a key-frame preview of a long, unindexed video."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from frameseek.indexing import runner as runner_module
from frameseek.models.dual_encoder import DualEncoder
from frameseek.results import SearchResponse
from frameseek.search import Searcher
from frameseek.video.preview import preview_frames, preview_times
from frameseek.video.sampling import Sampling
from test_search import shared_model  # tests/ is on sys.path (like conftest)
from videos import require_bikes, require_ffmpeg


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 s of real footage (bikes.mp4 looped), H.264 with a key frame every 2 s."""
    out = tmp_path_factory.mktemp("long") / "long.mp4"
    subprocess.run([require_ffmpeg(), "-v", "error", "-y", "-stream_loop", "3", "-i", str(require_bikes()),
                    "-t", "40", "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-an", str(out)],
                   check=True, timeout=120)  # fmt: skip
    return out


def keyframe_times(path: Path) -> list[float]:
    """ffprobe's key-frame times, relative to the stream start (frameseek's clock)."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe is not installed")
    out = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "v:0", "-skip_frame", "nokey", "-show_frames",
         "-show_entries", "frame=pts_time:stream=start_time", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    data = json.loads(out)
    start = float(data["streams"][0].get("start_time") or 0.0)
    return [round(float(f["pts_time"]) - start, 6) for f in data["frames"]]


def test_preview_times_cover_the_video_evenly() -> None:
    assert preview_times(100.0, 10.0, 120) == [float(t) for t in range(0, 100, 10)]
    assert len(preview_times(36_000.0)) == 120  # ten hours: still at most 120 looks
    assert preview_times(3.0) == [0.0]


def test_preview_frames_are_key_frames_at_their_exact_times(long_clip: Path) -> None:
    frames = preview_frames(str(long_clip), max_side=320, max_pixels=8192 * 8192, count=8)
    keys = keyframe_times(long_clip)
    assert len(frames) >= 6
    for frame in frames:
        assert any(abs(frame.time - k) < 1e-3 for k in keys), frame.time
        assert max(frame.image.shape[:2]) <= 320
    assert [f.time for f in frames] == sorted({f.time for f in frames})


@pytest.mark.slow
def test_first_results_arrive_before_the_full_index(
    fs_home: Path, long_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "PREVIEW_MIN_SECONDS", 20.0)  # a 40 s clip counts as long here
    model: DualEncoder = shared_model()
    events: list[str] = []
    partials: list[SearchResponse] = []

    def on_partial(response: SearchResponse) -> None:
        events.append("partial")
        partials.append(response)

    def progress(stage: str, done: float, total: float | None) -> None:
        if stage == "index" and "index" not in events:
            events.append("index")

    searcher = Searcher(model)
    final = searcher.search(long_clip, "a cyclist wearing a helmet", on_partial=on_partial, progress=progress)
    assert events[:2] == ["partial", "index"]  # the first look came before the full index started
    [partial] = partials
    assert partial.partial and not final.partial
    keys = keyframe_times(long_clip)
    assert partial.results and all(any(abs(r.time - k) < 1e-3 for k in keys) for r in partial.results)
    assert len(final.timelines[0].times) == 40  # the full index: one frame per second
    # indexed now: a second query has nothing to preview
    again: list[SearchResponse] = []
    searcher.search(long_clip, "cars in a traffic jam", on_partial=again.append)
    assert again == []


@pytest.mark.slow
def test_refine_moves_a_hit_to_the_best_frame_between_samples(fs_home: Path) -> None:
    bikes = require_bikes()
    searcher = Searcher(shared_model(), sampling=Sampling(fps=0.5))  # a sample every 2 s
    coarse = searcher.search(bikes, "a cyclist wearing a helmet", top_k=3)
    fine = searcher.search(bikes, "a cyclist wearing a helmet", top_k=3, refine=True)
    assert fine.metrics["stages_seconds"]["refine"] > 0
    assert fine.results[0].score >= coarse.results[0].score
    for after in fine.results:
        before = min(coarse.results, key=lambda r: abs(r.time - after.time))
        assert after.score >= before.score
        assert abs(after.time - before.time) <= 2.0 + 1e-6  # within one sample interval
        assert round(after.time * 25) == pytest.approx(after.time * 25, abs=1e-3)  # a frame's PTS (25 fps)
        assert after.start <= after.time <= after.end
    assert [r.score for r in fine.results] == sorted((r.score for r in fine.results), reverse=True)
