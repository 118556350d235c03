"""Export: a hit's JPEG and its re-encoded MP4 segment (atomic writes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from frameseek.editing import clips, export
from frameseek.editing.export import export_clip, export_frame
from frameseek.errors import InputError
from frameseek.video.decode import frame_at, frame_times, iter_frames, probe
from videos import make_video, require_bikes  # tests/ is on sys.path (like conftest)


@pytest.fixture(scope="module")
def bikes() -> Path:
    return require_bikes()


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export_src")


def _only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_export_frame_matches_the_decoded_frame(bikes: Path, tmp_path: Path) -> None:
    out = export_frame(bikes, 3.04, tmp_path / "hit.jpg")
    assert out == tmp_path / "hit.jpg" and _only(tmp_path) == ["hit.jpg"]
    with Image.open(out) as image:
        assert image.format == "JPEG" and image.size == (640, 272)
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    decoded = next(iter(iter_frames(bikes, start=3.04, max_frames=1, max_side=None)))
    assert decoded.time == pytest.approx(3.04)
    assert np.abs(pixels - decoded.image.astype(np.int16)).mean() < 6.0


def test_frame_at_picks_the_frame_on_screen(bikes: Path) -> None:
    assert frame_at(bikes, 3.05).time == pytest.approx(3.04)
    assert frame_at(bikes, 3.079).time == pytest.approx(3.04)
    assert frame_at(bikes, 3.0799).time == pytest.approx(3.08)  # 0.5 ms slack for rounded timecodes
    assert frame_at(bikes, 3.08).time == pytest.approx(3.08)
    assert frame_at(bikes, 0.0).time == 0.0
    assert frame_at(bikes, 9.99).time == pytest.approx(9.96)


def test_export_frame_past_the_end_writes_nothing(bikes: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="past the end"):
        export_frame(bikes, 60.0, tmp_path / "late.jpg")
    assert _only(tmp_path) == []


def test_export_frame_max_side(bikes: Path, tmp_path: Path) -> None:
    with Image.open(export_frame(bikes, 1.0, tmp_path / "small.jpg", max_side=320)) as image:
        assert image.size == (320, 136)


def test_export_clip_duration_and_content(bikes: Path, tmp_path: Path) -> None:
    out = export_clip(bikes, 2.0, 4.5, tmp_path / "clip.mp4")
    assert _only(tmp_path) == ["clip.mp4"]
    info = probe(out)
    assert info.codec == ("h264" if export.clip_encoder() == "libx264" else "mpeg4")
    assert (info.width, info.height) == (640, 272)
    assert info.duration == pytest.approx(2.5, abs=0.05)
    times = frame_times(out)
    assert times[0] == 0.0 and times[-1] == pytest.approx(2.48, abs=1e-6)
    assert len(times) == 63
    source = next(iter(iter_frames(bikes, start=3.0, max_frames=1, max_side=None))).image.astype(np.int16)
    clip = next(iter(iter_frames(out, start=times[25], max_frames=1, max_side=None))).image.astype(np.int16)
    assert np.abs(source - clip).mean() < 8.0  # same picture after re-encoding


def test_export_clip_vfr_keeps_timing(synth: Path, tmp_path: Path) -> None:
    src = synth / "vfr.mp4"
    written = make_video(src, 4.0, vfr=True)
    out = export_clip(src, 1.0, 3.0, tmp_path / "vfr_clip.mp4")
    window = [t for t in written if 1.0 <= t < 3.0]
    assert np.allclose(frame_times(out), [t - window[0] for t in window], atol=1e-3)


def test_export_clip_rotated_and_odd_size(synth: Path, tmp_path: Path) -> None:
    src = synth / "rot_odd.mp4"
    make_video(src, 1.0, size=(161, 91), rotation=90)
    out = export_clip(src, 0.0, 1.0, tmp_path / "upright.mp4")
    info = probe(out)
    assert info.rotation == 0
    assert (info.width, info.height) == (90, 160)  # upright, rounded down to even sizes
    first = next(iter(iter_frames(out, max_side=None))).image
    assert first[-5:, :5].min() > 200  # the white corner turned with the picture


def test_export_clip_max_side(bikes: Path, tmp_path: Path) -> None:
    info = probe(export_clip(bikes, 0.0, 1.0, tmp_path / "small.mp4", max_side=320))
    assert (info.width, info.height) == (320, 136)


def test_export_clip_mpeg4_fallback(bikes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clips, "clip_encoder", lambda: "mpeg4")
    info = probe(export_clip(bikes, 5.0, 6.0, tmp_path / "mpeg4.mp4"))
    assert info.codec == "mpeg4" and info.duration == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(("start", "end"), [(3.0, 3.0), (4.0, 2.0), (-1.0, 2.0), (0.0, float("nan"))])
def test_export_clip_bad_window(bikes: Path, tmp_path: Path, start: float, end: float) -> None:
    with pytest.raises(InputError):
        export_clip(bikes, start, end, tmp_path / "bad.mp4")
    assert _only(tmp_path) == []


def test_export_clip_empty_window_leaves_no_file(bikes: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no frames"):
        export_clip(bikes, 50.0, 60.0, tmp_path / "empty.mp4")
    assert _only(tmp_path) == []
