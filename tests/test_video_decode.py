"""Decoder: exact PTS timestamps, grid / scene sampling, rotation, odd inputs and broken files."""

from __future__ import annotations

import itertools
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from frameseek.errors import DecodeError, InputError, SourceError
from frameseek.video import decode as decode_module
from frameseek.video.decode import (
    Frame,
    frame_times,
    iter_all_frames,
    iter_frames,
    iter_small_frames,
    probe,
    select_grid_indices,
)
from frameseek.video.scenes import ContentDetector, detect_scenes, rgb_to_hsv, scenes_from_cuts
from videos import (  # tests/ is on sys.path (like conftest)
    make_audio_only,
    make_video,
    require_bikes,
    require_ffmpeg,
)

BIKES_CUTS = (1.2, 3.0, 5.5, 7.5, 9.7)


def ffprobe_times(path: Path) -> list[float]:
    """ffprobe's best_effort_timestamp_time of every video frame, minus the stream start_time."""
    require_ffmpeg()
    run = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=start_time", "-of",
         "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    start = float(run.stdout.strip().strip(",") or 0.0)
    run = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "frame=best_effort_timestamp_time", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    fields = (line.split(",")[0].strip() for line in run.stdout.splitlines())
    return [float(f) - start for f in fields if f]


def reference_grid(
    times: list[float], fps: float, start: float = 0.0, end: float | None = None
) -> list[float]:
    """Independent reference: for each grid time, the first frame time at or after it (deduplicated)."""
    times = [t for t in times if t >= start - 1e-9 and (end is None or t < end - 1e-9)]
    kept: list[float] = []
    k = 0
    while times and start + k / fps <= times[-1] + 1e-9:
        grid = start + k / fps
        first = next(t for t in times if t >= grid - 1e-9)
        if not kept or first != kept[-1]:
            kept.append(first)
        k += 1
    return kept


@pytest.fixture(scope="module")
def bikes() -> Path:
    return require_bikes()


@pytest.fixture(scope="module")
def bikes_times(bikes: Path) -> list[float]:
    return ffprobe_times(bikes)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synth")


# --- real video -------------------------------------------------------------------------------------


def test_probe_bikes(bikes: Path) -> None:
    info = probe(bikes)
    assert (info.width, info.height, info.rotation, info.codec) == (640, 272, 0, "h264")
    assert info.duration == pytest.approx(10.0)
    assert info.fps == pytest.approx(25.0)
    assert info.frame_count == 250


def test_all_frame_times_equal_ffprobe(bikes: Path, bikes_times: list[float]) -> None:
    ours = frame_times(bikes)
    assert len(ours) == len(bikes_times) == 250
    assert np.allclose(ours, bikes_times, atol=1e-6, rtol=0)


@pytest.mark.parametrize("fps", [1.0, 5.0, 0.5, 3.0])
def test_sampled_times_equal_ffprobe(bikes: Path, bikes_times: list[float], fps: float) -> None:
    frames = list(iter_frames(bikes, fps=fps))
    expected = reference_grid(bikes_times, fps)
    assert len(frames) == len(expected)
    assert np.allclose([f.time for f in frames], expected, atol=1e-6, rtol=0)
    assert all(f.image.shape == (272, 640, 3) and f.image.dtype == np.uint8 for f in frames)


def test_start_end_window(bikes: Path, bikes_times: list[float]) -> None:
    frames = list(iter_frames(bikes, fps=1.0, start=2.5, end=6.0))
    expected = reference_grid(bikes_times, 1.0, start=2.5, end=6.0)
    assert [round(f.time, 6) for f in frames] == [round(t, 6) for t in expected]
    assert all(2.5 <= f.time < 6.0 for f in frames)


def test_seek_gives_the_same_pictures_as_decoding_from_zero(bikes: Path, bikes_times: list[float]) -> None:
    full = {round(f.time, 6): f.image for f in iter_frames(bikes, fps=25.0)}
    seeked = list(iter_frames(bikes, fps=2.0, start=6.3, end=8.0))
    assert len(seeked) == len(reference_grid(bikes_times, 2.0, start=6.3, end=8.0)) >= 3
    for frame in seeked:
        assert np.array_equal(frame.image, full[round(frame.time, 6)])


def _decode_all_then_pick(path: Path, **options: float) -> list[Frame]:
    return list(iter_frames(path, max_side=None, **options))  # type: ignore[arg-type]


def _skipping(path: Path, **options: float) -> list[Frame]:
    return list(iter_frames(path, max_side=None, skip_unneeded=True, **options))  # type: ignore[arg-type]


def _same_frames(a: list[Frame], b: list[Frame]) -> bool:
    return [f.time for f in a] == [f.time for f in b] and all(
        np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize(
    "options",
    [
        {"fps": 1.0},
        {"fps": 0.5},
        {"fps": 3.0},
        {"fps": 0.3, "start": 1.1},
        {"fps": 2.0, "start": 6.3, "end": 9.0},
    ],
)
def test_skipping_unneeded_packets_keeps_the_same_frames_bikes(
    bikes: Path, options: dict[str, float]
) -> None:
    assert _same_frames(_skipping(bikes, **options), _decode_all_then_pick(bikes, **options))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("short_gop", "keyint=5:min-keyint=5:scenecut=0:bframes=2"),
        ("open_gop", "keyint=12:min-keyint=12:scenecut=0:bframes=3:b-pyramid=normal:open-gop=1"),
        ("no_b_frames", "keyint=30:scenecut=0:bframes=0"),
        ("long_gop", "keyint=250:scenecut=40:bframes=3"),
    ],
)
@pytest.mark.parametrize("fps", [0.7, 1.0, 4.0])
def test_skipping_unneeded_packets_keeps_the_same_frames_x264(
    synth: Path, name: str, params: str, fps: float
) -> None:
    path = synth / f"gop_{name}.mp4"
    if not path.exists():
        make_video(path, 6.0, size=(96, 64), cuts=(1.3, 2.9, 4.1), x264_params=params)
    assert _same_frames(_skipping(path, fps=fps), _decode_all_then_pick(path, fps=fps))
    assert _same_frames(_skipping(path, fps=fps, start=2.2), _decode_all_then_pick(path, fps=fps, start=2.2))


def test_skipping_unneeded_packets_keeps_the_same_frames_vfr_and_ts(synth: Path) -> None:
    for path in (synth / "skip_vfr.mp4", synth / "skip.ts"):
        make_video(path, 4.0, vfr=path.suffix == ".mp4", x264_params="keyint=6:min-keyint=6:bframes=2")
        for fps in (0.5, 1.0, 3.0):
            assert _same_frames(_skipping(path, fps=fps), _decode_all_then_pick(path, fps=fps))


def test_skipping_unneeded_packets_feeds_the_decoder_less(
    synth: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = synth / "gop_count.mp4"
    make_video(path, 8.0, x264_params="keyint=10:min-keyint=10:scenecut=0:bframes=2")
    fed: list[int] = []
    original = decode_module._needed_packets

    def counting(*args: object) -> Iterator[object]:
        for packet in original(*args):  # type: ignore[arg-type]
            fed[-1] += packet is not None and packet.size > 0  # type: ignore[attr-defined]
            yield packet

    monkeypatch.setattr(decode_module, "_needed_packets", counting)
    counts = {}
    for skip in (False, True):
        fed.append(0)
        frames = list(iter_frames(path, fps=1.0, skip_unneeded=skip))
        counts[skip] = (fed[-1], [f.time for f in frames])
    assert counts[True][1] == counts[False][1]
    assert counts[False][0] == 200  # every packet of 8 s at 25 fps
    # 0.4 s GOPs: of the 2.5 GOPs in each second only the one holding the grid time decodes, up to it
    assert counts[True][0] < 0.6 * counts[False][0]


def test_max_frames_and_streaming(bikes: Path) -> None:
    frames = iter_frames(bikes, fps=5.0, max_frames=3)
    assert iter(frames) is frames  # a lazy iterator, not a list
    assert [round(f.time, 6) for f in frames] == [0.0, 0.2, 0.4]


def test_max_side_downscales_keeping_aspect(bikes: Path) -> None:
    first = next(iter(iter_frames(bikes, max_side=320)))
    assert first.image.shape == (136, 320, 3)
    assert next(iter(iter_frames(bikes, max_side=None))).image.shape == (272, 640, 3)


def test_keyframes_only_is_a_subset(bikes: Path, bikes_times: list[float]) -> None:
    keys = [f.time for f in iter_frames(bikes, fps=25.0, keyframes_only=True)]
    assert 1 <= len(keys) < 50
    assert all(min(abs(k - t) for t in bikes_times) < 1e-6 for k in keys)


def test_scene_mode_finds_the_shot_changes(bikes: Path) -> None:
    times = [f.time for f in iter_frames(bikes, scene=True, scene_max_gap=10.0)]
    assert times[0] == pytest.approx(0.0)
    found = [c for c in BIKES_CUTS if any(abs(t - c) <= 0.3 for t in times)]
    assert len(found) >= 4, (times, found)
    assert len(times) <= len(BIKES_CUTS) + 3


def test_scene_mode_respects_max_gap(bikes: Path) -> None:
    times = [f.time for f in iter_frames(bikes, scene=True, scene_max_gap=1.0)]
    gaps = np.diff(times)
    assert gaps.max() <= 1.0 + 1e-6


def test_detect_scenes_bikes(bikes: Path) -> None:
    scenes = detect_scenes(iter_small_frames(bikes))
    starts = [s for s, _ in scenes[1:]]
    assert sum(any(abs(s - c) <= 0.3 for s in starts) for c in BIKES_CUTS) >= 4
    assert scenes[0][0] == pytest.approx(0.0)
    assert scenes[-1][1] == pytest.approx(10.0, abs=0.05)
    assert all(a < b for a, b in scenes)


def test_decode_speed_bikes(bikes: Path) -> None:
    started = time.perf_counter()
    assert len(list(iter_frames(bikes, fps=1.0))) == 10
    assert time.perf_counter() - started < 5.0


# --- synthetic videos -------------------------------------------------------------------------------


def test_vfr_timestamps_match_pts(synth: Path) -> None:
    path = synth / "vfr.mp4"
    written = make_video(path, 4.0, vfr=True)
    assert np.allclose(frame_times(path), written, atol=1e-6, rtol=0)
    for fps in (1.0, 4.0, 10.0):
        got = [f.time for f in iter_frames(path, fps=fps)]
        assert np.allclose(got, reference_grid(written, fps), atol=1e-6, rtol=0)


def test_rotation_metadata_gives_upright_pictures(synth: Path) -> None:
    path = synth / "rot.mp4"
    make_video(path, 0.2, size=(160, 90), rotation=90)
    info = probe(path)
    assert (info.width, info.height, info.rotation) == (90, 160, 90)
    image = next(iter(iter_frames(path))).image
    assert image.shape == (160, 90, 3)
    assert image[-5:, :5].min() > 240  # the top-left white square turned with the picture


def test_rotation_matches_ffmpeg_autorotate(synth: Path) -> None:
    ffmpeg = require_ffmpeg()
    plain, rotated = synth / "plain.mp4", synth / "rot_cli.mp4"
    make_video(plain, 0.2, size=(160, 90))
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=270",
         str(rotated)],
        check=True,
    )  # fmt: skip
    raw = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(rotated), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    ours = next(iter(iter_frames(rotated, max_side=None))).image
    assert ours.shape == (160, 90, 3)
    reference = np.frombuffer(raw, dtype=np.uint8).reshape(ours.shape)
    assert np.abs(ours.astype(int) - reference.astype(int)).mean() < 3.0


def test_odd_size(synth: Path) -> None:
    path = synth / "odd.mp4"
    make_video(path, 0.3, size=(333, 197))
    info = probe(path)
    assert (info.width, info.height) == (333, 197)
    assert [f.image.shape for f in iter_frames(path)] == [(197, 333, 3)]


def test_large_frames_are_bounded_by_max_side(synth: Path) -> None:
    path = synth / "big.mp4"
    make_video(path, 0.1, size=(1920, 1080))
    assert next(iter(iter_frames(path, max_side=640))).image.shape == (360, 640, 3)


def test_one_frame_and_very_short_videos(synth: Path) -> None:
    one, short = synth / "one.mp4", synth / "short.mp4"
    make_video(one, times=[0.0])
    make_video(short, times=[0.0, 0.04, 0.08])
    assert [f.time for f in iter_frames(one)] == [0.0]
    assert probe(one).frame_count == 1
    assert [round(f.time, 6) for f in iter_frames(short, fps=1.0)] == [0.0]
    assert [round(f.time, 6) for f in iter_frames(short, fps=100.0)] == [0.0, 0.04, 0.08]


def test_start_beyond_the_end_yields_nothing(synth: Path) -> None:
    path = synth / "two_seconds.mp4"
    make_video(path, 2.0)
    assert list(iter_frames(path, start=30.0)) == []


def test_scene_mode_on_synthetic_cuts_and_gap(synth: Path) -> None:
    path = synth / "cuts.mp4"
    make_video(path, 8.0, fps=10, cuts=[1.0, 2.5])
    times = [round(f.time, 6) for f in iter_frames(path, scene=True, scene_max_gap=2.0)]
    assert times[:3] == [0.0, 1.0, 2.5]
    assert max(np.diff(times)) <= 2.0 + 1e-6
    assert times[-1] >= 6.5


def test_iter_small_frames_sizes(synth: Path) -> None:
    path = synth / "small.mp4"
    make_video(path, 0.2, size=(320, 180))
    shapes = {small.shape for _, small in iter_small_frames(path)}
    assert shapes == {(36, 64, 3)}


def test_ts_container_and_truncation(synth: Path) -> None:
    path = synth / "clip.ts"
    make_video(path, 3.0)
    cut = synth / "clip_truncated.ts"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    full = [f.time for f in iter_frames(cut, fps=25.0)]
    assert 5 <= len(full) < 75
    assert all(b > a for a, b in itertools.pairwise(full))


def test_mp4_truncated_before_its_index_is_a_decode_error(synth: Path) -> None:
    path = synth / "moov_at_end.mp4"
    make_video(path, 2.0)
    cut = synth / "moov_cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    started = time.perf_counter()
    with pytest.raises(DecodeError, match="is not a readable video"):
        list(iter_frames(cut))
    assert time.perf_counter() - started < 5.0


# --- errors -----------------------------------------------------------------------------------------


def test_missing_file_and_folder_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        iter_frames(tmp_path / "nope.mp4")
    with pytest.raises(SourceError, match="folder"):
        probe(tmp_path)


def test_audio_only_has_no_video_stream(synth: Path) -> None:
    path = synth / "audio.m4a"
    make_audio_only(path)
    with pytest.raises(DecodeError, match="has no video stream"):
        probe(path)
    with pytest.raises(DecodeError, match="has no video stream"):
        iter_frames(path)


def test_audio_with_cover_art_has_no_video_stream(synth: Path, tmp_path: Path) -> None:
    ffmpeg = require_ffmpeg()
    audio, cover, out = synth / "tone.m4a", tmp_path / "cover.png", tmp_path / "with_cover.m4a"
    make_audio_only(audio)
    Image.new("RGB", (32, 32), (200, 10, 10)).save(cover)
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-i", str(audio), "-i", str(cover), "-map", "0", "-map", "1", "-c", "copy",
         "-disposition:v", "attached_pic", str(out)],
        check=True,
    )  # fmt: skip
    with pytest.raises(DecodeError, match="has no video stream"):
        probe(out)


def test_iter_all_frames_keeps_every_frame(synth: Path) -> None:
    path = synth / "all.mp4"
    written = make_video(path, 1.0, vfr=True)
    got = [f.time for f in iter_all_frames(path, start=0.1, end=0.9, max_side=32)]
    assert np.allclose(got, [t for t in written if 0.1 <= t < 0.9], atol=1e-6)


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, I am a text file, not a video\n" * 20, random.Random(7).randbytes(300_000)],
    ids=["zero-byte", "text", "random"],
)
def test_unreadable_files_fail_fast_with_decode_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "video.mp4"
    path.write_bytes(content)
    started = time.perf_counter()
    with pytest.raises(DecodeError, match="is not a readable video"):
        list(iter_frames(path))
    with pytest.raises(DecodeError):
        probe(path)
    assert time.perf_counter() - started < 5.0


def _consume(frames: Iterator[Frame]) -> list[float]:
    return [f.time for f in frames]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_damaged_payload_gives_frames_or_decode_error(synth: Path, seed: int) -> None:
    path = synth / "damaged_src.mp4"
    if not path.exists():
        make_video(path, 2.0, size=(160, 90))
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    for _ in range(400):
        data[rng.randrange(64, len(data) - 2000)] = rng.randrange(256)
    damaged = synth / f"damaged_{seed}.mp4"
    damaged.write_bytes(bytes(data))
    started = time.perf_counter()
    try:
        times = _consume(iter_frames(damaged, fps=25.0))
    except DecodeError:
        times = []
    assert time.perf_counter() - started < 5.0
    assert all(0.0 <= t < 3.0 for t in times)


@pytest.mark.parametrize(
    "kwargs",
    [{"fps": 0.0}, {"fps": float("nan")}, {"start": -1.0}, {"start": 3.0, "end": 2.0}, {"max_frames": 0},
     {"max_side": 4}, {"scene_max_gap": 0.0}],
)  # fmt: skip
def test_bad_options_are_input_errors(synth: Path, kwargs: dict[str, float]) -> None:
    path = synth / "options.mp4"
    if not path.exists():
        make_video(path, 0.2)
    with pytest.raises(InputError):
        iter_frames(path, **kwargs)  # type: ignore[arg-type]


# --- pure functions ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=80),
    fps=st.sampled_from([0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 29.97, 30.0]),
    start_ms=st.integers(min_value=0, max_value=3000),
)
def test_select_grid_indices_property(steps: list[int], fps: float, start_ms: int) -> None:
    times = list(np.cumsum([0, *steps]) / 1000.0)
    start = start_ms / 1000.0
    kept = select_grid_indices(times, fps, start)
    assert kept == sorted(set(kept))
    kept_times = [times[i] for i in kept]
    assert kept_times == reference_grid(times, fps, start)
    # kept frames start at `start` and each one falls in a later grid cell than the previous one
    assert all(t >= start - 1e-9 for t in kept_times)
    cells = [np.floor((t - start) * fps + 1e-6) for t in kept_times]
    assert all(b > a for a, b in itertools.pairwise(cells))


def test_select_grid_indices_vfr_gap_keeps_one_frame_per_gap() -> None:
    assert select_grid_indices([0.0, 0.1, 3.5, 3.6, 4.0], fps=1.0) == [0, 2, 4]


def test_content_detector_cuts_on_change_only() -> None:
    red = np.zeros((36, 64, 3), np.uint8)
    red[..., 0] = 200
    blue = np.zeros_like(red)
    blue[..., 2] = 200
    detector = ContentDetector(threshold=27.0, min_scene_len=0.5)
    assert not detector.update(0.0, red)
    assert not detector.update(0.1, red)
    assert detector.update(1.0, blue)
    assert not detector.update(1.1, red)  # closer than min_scene_len to the previous cut
    assert detector.update(2.0, blue)


def test_rgb_to_hsv_matches_known_values() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]]], np.uint8)
    hsv = rgb_to_hsv(rgb)
    assert np.allclose(hsv[0, :, 0], [0, 60, 120, 0])
    assert np.allclose(hsv[0, :, 1], [255, 255, 255, 0])
    assert np.allclose(hsv[0, :, 2], [255, 255, 255, 128])


def test_scenes_from_cuts() -> None:
    assert scenes_from_cuts(0.0, [1.0, 2.5], 4.0) == [(0.0, 1.0), (1.0, 2.5), (2.5, 4.0)]
    assert scenes_from_cuts(0.0, [], 4.0) == [(0.0, 4.0)]
