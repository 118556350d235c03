"""Clips for editors: clips with sound and handles, supercuts, EDL and OTIO markers (CLI, library, app logic).

Real media made with PyAV: a flash (a white frame) and a beep (40 ms of 1 kHz) at the same instant, so a
clip is in sync when both land at the same clip time. The sources are cut between key frames, their sound
streams start later than their pictures, and they differ in size, frame rate, sample rate and channels.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import numpy as np
import opentimelineio as otio
import pytest
from typer.testing import CliRunner

from frameseek import cli
from frameseek.app import logic
from frameseek.editing import clips
from frameseek.editing.clips import AudioReader, export_clip, export_supercut, padded_window
from frameseek.editing.export import export_for_editing, export_hits
from frameseek.editing.markers import edl, frame_rate, otio_json, otio_timeline, reel_names, timecode
from frameseek.errors import InputError
from frameseek.results import SearchResponse, SearchResult
from videos import make_video  # tests/ is on sys.path (like conftest)

SYNC = 0.02
"""Seconds: a beep and its flash may be this far apart in a clip (AAC frames, rounding)."""


# ------------------------------------------------------------------------------------------ media


def make_av(
    path: Path,
    seconds: float,
    *,
    fps: int = 25,
    size: tuple[int, int] = (160, 90),
    rate: int = 44100,
    layout: str = "stereo",
    events: Sequence[float] = (2.0,),
    audio_start: float = 0.0,
    keyint: int = 50,
) -> Path:
    """A video with a flash and a beep at each of ``events``; its sound starts at ``audio_start``."""
    channels = 1 if layout == "mono" else 2
    total = round(seconds * rate)
    t = np.arange(total) / rate
    tone = np.zeros(total, np.float32)
    for at in events:
        on = (t >= at) & (t < at + 0.04)
        tone[on] = 0.6 * np.sin(2 * np.pi * 1000 * t[on])
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"x264-params": f"keyint={keyint}:scenecut=0"})
        assert isinstance(video, av.video.VideoStream)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = Fraction(1, fps)
        sound = out.add_stream("aac", rate=rate, layout=layout)
        assert isinstance(sound, av.audio.AudioStream)
        position = round(audio_start * rate)
        for k in range(round(seconds * fps)):
            image = np.full((size[1], size[0], 3), 30, np.uint8)
            if any(abs(k / fps - at) < 1e-9 for at in events):
                image[:] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = k, Fraction(1, fps)
            for packet in video.encode(frame):
                out.mux(packet)
            until = round((k + 1) / fps * rate)
            while position < until:
                count = min(1024, until - position)
                block = np.repeat(tone[position : position + count][None, :], channels, axis=0)
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout=layout)
                chunk.sample_rate, chunk.pts, chunk.time_base = rate, position, Fraction(1, rate)
                position += count
                for packet in sound.encode(chunk):
                    out.mux(packet)
        for stream in (video, sound):
            for packet in stream.encode(None):
                out.mux(packet)
    return path


def streams(path: Path) -> dict[str, dict[str, Any]]:
    """Per stream type: codec, start and duration (seconds), size or sample rate and channels."""
    with av.open(str(path)) as container:
        found = {}
        for s in container.streams:
            assert s.time_base is not None and s.duration is not None
            entry: dict[str, Any] = {
                "codec": s.codec_context.name,
                "start": float((s.start_time or 0) * s.time_base),
                "duration": float(s.duration * s.time_base),
            }
            if s.type == "video":
                entry["size"] = (s.codec_context.width, s.codec_context.height)
            else:
                entry["rate"], entry["channels"] = s.codec_context.sample_rate, s.codec_context.channels
            found[s.type] = entry
        return found


def flash_times(path: Path) -> list[float]:
    """Times of the first white frame of each flash."""
    times: list[float] = []
    lit = False
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            bright = frame.to_ndarray(format="gray").mean() > 128
            if bright and not lit:
                assert frame.time is not None
                times.append(frame.time)
            lit = bright
    return times


def sound_of(path: Path) -> tuple[np.ndarray, int, float]:
    """(first channel's samples, sample rate, time of the first sample)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks, first = [], None
        for frame in container.decode(stream):
            first = frame.time if first is None else first
            chunks.append(frame.to_ndarray()[0])
        return np.concatenate(chunks), stream.codec_context.sample_rate, float(first or 0.0)


def beep_times(path: Path) -> list[float]:
    """Onsets of the beeps (louder than 0.1, at least 0.2 s apart)."""
    samples, rate, first = sound_of(path)
    loud = np.flatnonzero(np.abs(samples) > 0.1)
    onsets = [int(i) for n, i in enumerate(loud) if n == 0 or i - loud[n - 1] > 0.2 * rate]
    return [first + i / rate for i in onsets]


def first_picture(path: Path) -> tuple[float, bool, bool]:
    """(time, key frame?, first packet a key frame?) of the clip's first picture."""
    with av.open(str(path)) as container:
        packet = next(p for p in container.demux(video=0) if p.size)
        key_packet = packet.is_keyframe
    with av.open(str(path)) as container:
        frame = next(iter(container.decode(video=0)))
        assert frame.time is not None
        return frame.time, frame.key_frame, key_packet


def keyframe_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        return sorted(
            float(p.pts * stream.time_base) for p in container.demux(stream) if p.size and p.is_keyframe
        )


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("editors")
    silent = folder / "silent.mp4"
    make_video(silent, 2.0, size=(96, 64))
    return {
        # 25 fps, key frames every 2 s, 44.1 kHz stereo starting 0.3 s after the picture; flash at 2.0 s
        "wide": make_av(folder / "wide.mp4", 4.0, audio_start=0.3),
        # 30 fps, 128x128 (the larger picture), 48 kHz mono; flash at 1.0 s
        "square": make_av(
            folder / "square.mp4", 3.0, fps=30, size=(128, 128), rate=48000, layout="mono", events=(1.0,)
        ),
        "silent": silent,
    }


def hit(video: Path, start: float, end: float, *, time: float | None = None, **extra: Any) -> SearchResult:
    fields: dict[str, Any] = {"score": 0.5, "match": "visual", "text": None, **extra}
    moment = (start + end) / 2 if time is None else time
    return SearchResult(
        video=str(video), title=video.stem, time=moment, timecode="", start=start, end=end, thumbnail=None,
        **fields,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ clips


def test_clip_has_sound_in_sync_and_starts_with_a_key_frame(media: dict[str, Path], tmp_path: Path) -> None:
    out = export_clip(media["wide"], 1.3, 2.5, tmp_path / "clip.mp4", pad_before=0.5, pad_after=0.3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # written atomically
    info = streams(out)
    assert set(info) == {"video", "audio"}
    assert info["audio"]["codec"] == "aac" and (info["audio"]["rate"], info["audio"]["channels"]) == (
        44100,
        2,
    )
    for kind in ("video", "audio"):  # [0.8, 2.8): the segment plus both pads, from 0
        assert info[kind]["start"] == 0.0
        assert info[kind]["duration"] == pytest.approx(2.0, abs=0.025)
    assert first_picture(out) == (0.0, True, True)  # cut between source key frames: re-encoded from there
    (flash,), (beep,) = flash_times(out), beep_times(out)
    assert flash == pytest.approx(1.2, abs=1e-3)
    assert abs(beep - flash) <= SYNC


def test_clip_pads_are_clamped_to_the_video(media: dict[str, Path], tmp_path: Path) -> None:
    assert padded_window(0.4, 3.5, pad_before=1.0, pad_after=2.0, duration=4.0) == (0.0, 4.0)
    out = export_clip(media["wide"], 0.4, 3.5, tmp_path / "whole.mp4", pad_before=1.0, pad_after=2.0)
    info = streams(out)
    assert info["video"]["duration"] == pytest.approx(4.0, abs=0.025)
    assert info["audio"]["duration"] == pytest.approx(4.0, abs=0.025)
    samples, rate, first = sound_of(out)
    assert first == 0.0 and np.abs(samples[: int(0.25 * rate)]).max() < 0.01  # before the sound: silence
    assert abs(beep_times(out)[0] - flash_times(out)[0]) <= SYNC
    assert flash_times(out) == [pytest.approx(2.0, abs=1e-3)]
    with pytest.raises(InputError, match="pad_before"):
        export_clip(media["wide"], 1.0, 2.0, tmp_path / "bad.mp4", pad_before=-1.0)
    with pytest.raises(InputError, match="no frames"):
        export_clip(media["wide"], 5.0, 6.0, tmp_path / "late.mp4", pad_before=0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whole.mp4"]


def test_clip_without_sound(media: dict[str, Path], tmp_path: Path) -> None:
    info = streams(export_clip(media["silent"], 0.5, 1.5, tmp_path / "silent.mp4", pad_after=0.2))
    assert set(info) == {"video"} and info["video"]["duration"] == pytest.approx(1.2, abs=0.045)
    info = streams(export_clip(media["wide"], 0.5, 1.5, tmp_path / "mute.mp4", audio=False))
    assert set(info) == {"video"}


def test_clip_with_the_mpeg4_fallback_keeps_its_sound(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clips, "clip_encoder", lambda: "mpeg4")
    out = export_clip(media["square"], 0.7, 1.4, tmp_path / "mpeg4.mp4")
    info = streams(out)
    assert info["video"]["codec"] == "mpeg4" and (info["audio"]["rate"], info["audio"]["channels"]) == (
        48000,
        1,
    )
    assert first_picture(out)[1:] == (True, True)
    assert abs(beep_times(out)[0] - flash_times(out)[0]) <= SYNC


def test_audio_reader_uses_the_video_clock(media: dict[str, Path]) -> None:
    with AudioReader(media["wide"], 1.9, rate=48000, channels=2) as reader:
        samples = reader.read(9600)  # 1.9 s - 2.1 s; the beep is at 2.0 s
        assert samples.shape == (2, 9600)
        onset = int(np.flatnonzero(np.abs(samples[0]) > 0.1)[0])
        assert onset / 48000 == pytest.approx(0.1, abs=0.002)
        assert reader.read(48000 * 5).shape == (2, 240000)  # past the end: silence, never short
    with AudioReader(media["silent"], 0.0) as reader:
        assert not reader.present and not reader.read(100).any()


# ------------------------------------------------------------------------------------------ supercut


def test_supercut_of_two_videos_of_different_sizes(media: dict[str, Path], tmp_path: Path) -> None:
    hits = [hit(media["wide"], 1.5, 2.5), hit(media["square"], 0.5, 1.5), hit(media["wide"], 3.0, 3.6)]
    out = export_supercut(hits, tmp_path / "supercut.mp4", pad_before=0.2, pad_after=0.2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["supercut.mp4"]
    info = streams(out)
    # [1.3, 2.7] + [0.3, 1.7] + [2.8, 3.8]: 3.8 s at the highest rate (30 fps), the largest size, 48 kHz stereo
    assert info["video"]["size"] == (128, 128)
    assert (info["audio"]["rate"], info["audio"]["channels"]) == (48000, 2)
    for kind in ("video", "audio"):
        assert info[kind]["start"] == 0.0
        assert info[kind]["duration"] == pytest.approx(3.8, abs=0.025)
    with av.open(str(out)) as container:
        assert container.streams.video[0].average_rate == 30
    # the wide cut starts at its frame nearest 1.3 s (1.28 s, on screen at 1.3 s), sound and picture alike;
    # its 25 fps pictures resampled to 30 fps show up to one output frame late, never early
    flashes, beeps = flash_times(out), beep_times(out)
    assert beeps == [pytest.approx(2.0 - 1.28, abs=SYNC), pytest.approx(1.4 + 0.7, abs=SYNC)]
    assert len(flashes) == 2 and all(
        -SYNC <= f - b <= 1 / 30 + SYNC for b, f in zip(beeps, flashes, strict=True)
    )
    assert flashes[1] == pytest.approx(2.1, abs=1e-3)  # the 30 fps source keeps its own frames
    keys = keyframe_times(out)
    assert all(any(abs(k - start) < 1e-3 for k in keys) for start in (0.0, 1.4, 2.8))  # each cut a key frame
    with av.open(str(out)) as container:  # the wide picture letterboxed into the square one
        first = next(iter(container.decode(video=0))).to_ndarray(format="rgb24")
    assert first[:10].mean() < 5 and first[60:68].mean() == pytest.approx(30, abs=4)


def test_supercut_with_a_silent_video_still_has_sound(media: dict[str, Path], tmp_path: Path) -> None:
    hits = [hit(media["silent"], 0.0, 1.0), hit(media["square"], 0.8, 1.4)]
    out = export_supercut(hits, tmp_path / "mixed.mp4", fps=25)
    info = streams(out)
    assert info["audio"]["duration"] == pytest.approx(1.6, abs=0.025)
    assert info["video"]["duration"] == pytest.approx(1.6, abs=0.025)
    samples, rate, _ = sound_of(out)
    assert np.abs(samples[: int(0.95 * rate)]).max() < 0.01  # the silent video's part
    assert beep_times(out) == [pytest.approx(1.2, abs=SYNC)] and flash_times(out) == [
        pytest.approx(1.2, abs=0.04)
    ]
    with pytest.raises(InputError, match="at least one"):
        export_supercut([], tmp_path / "none.mp4")


# ------------------------------------------------------------------------------------------ markers

EVENT = re.compile(
    r"^(\d{3})  (\S{1,8})\s+(V|A|AA|B|AA/V)\s+C\s+"
    r"(\d\d:\d\d:\d\d[:;]\d\d) (\d\d:\d\d:\d\d[:;]\d\d) (\d\d:\d\d:\d\d[:;]\d\d) (\d\d:\d\d:\d\d[:;]\d\d)$"
)


def events(text: str) -> list[tuple[str, ...]]:
    return [m.groups() for line in text.splitlines() if (m := EVENT.match(line))]


def test_edl_events(media: dict[str, Path]) -> None:
    hits = [
        hit(
            media["wide"], 1.0, 3.0, time=2.0, score=0.8125, match="speech+visual", text="a flash\nand a beep"
        ),
        hit(media["square"], 0.5, 1.5, time=1.0),
        hit(media["wide"], 3.5, 3.9, time=3.6),
    ]
    text = edl(hits, fps=25, title="Flashes", query="a white flash")
    lines = text.splitlines()
    assert lines[:3] == ["TITLE: Flashes", "FCM: NON-DROP FRAME", ""]
    assert lines[3] == "001  AX       V     C        00:00:01:00 00:00:03:00 00:00:00:00 00:00:02:00"
    assert events(text) == [
        ("001", "AX", "V", "00:00:01:00", "00:00:03:00", "00:00:00:00", "00:00:02:00"),
        ("002", "AX", "V", "00:00:00:13", "00:00:01:13", "00:00:02:00", "00:00:03:00"),  # 0.5 s = 12.5 → 13
        ("003", "AX", "V", "00:00:03:13", "00:00:03:23", "00:00:03:00", "00:00:03:10"),
    ]
    assert lines.count("* FROM CLIP NAME: wide.mp4") == 2 and "* FROM CLIP NAME: square.mp4" in lines
    assert f"* SOURCE FILE: {media['square'].resolve()}" in lines
    comment = next(line for line in lines if line.startswith("* COMMENT: frameseek #1"))
    assert "score 0.8125" in comment and "match speech+visual" in comment and "“a white flash”" in comment
    assert "“a flash and a beep”" in comment and comment.endswith("at 00:00:02:00")
    # handles, clamped to the video (4 s); the video's own rate with fps=None (25 here)
    padded = events(edl(hits[2:], fps=None, pad_before=0.5, pad_after=2.0))
    assert padded == [("001", "AX", "V", "00:00:03:00", "00:00:04:00", "00:00:00:00", "00:00:01:00")]
    named = events(edl(hits, reel="name", track="AA/V", record_start=3600))
    assert [e[1] for e in named] == ["WIDE", "SQUARE", "WIDE"] and named[0][2] == "AA/V"
    assert named[0][5] == "01:00:00:00"


def test_edl_drop_frame_and_reels() -> None:
    ntsc = frame_rate(29.97)
    assert (
        ntsc == Fraction(30000, 1001) and frame_rate(25) == 25 and frame_rate(23.976) == Fraction(24000, 1001)
    )
    assert timecode(1800, ntsc) == "00:01:00:00"
    assert timecode(1800, ntsc, drop_frame=True) == "00:01:00;02"  # frame numbers 0 and 1 are skipped
    assert timecode(17982, ntsc, drop_frame=True) == "00:10:00;00"  # ... but not every tenth minute
    assert timecode(107892, ntsc, drop_frame=True) == "01:00:00;00"  # drop-frame keeps up with the clock
    with pytest.raises(InputError, match="drop-frame"):
        timecode(0, Fraction(25), drop_frame=True)
    reels = reel_names(["/a/interview-take-01.mp4", "/b/interview-take-02.mp4", "/c/x.mov", "/d/ünï.mp4"])
    assert list(reels.values()) == ["INTERVIE", "INTERVI2", "X", "N"]
    assert all(len(name) <= 8 for name in reels.values())


def test_edl_drop_frame_header(media: dict[str, Path]) -> None:
    away = media["wide"].with_name("ntsc-moved-away.mp4")  # unreadable now: times are not clamped
    text = edl([hit(away, 600.0, 601.0)], fps=29.97, drop_frame=True)
    assert "FCM: DROP FRAME" in text.splitlines()
    assert events(text)[0][3:] == ("00:10:00;00", "00:10:01;00", "00:00:00;00", "00:00:01;00")


def test_otio_round_trip(media: dict[str, Path]) -> None:
    hits = [
        hit(media["wide"], 1.0, 3.0, time=2.0, score=0.75, match="speech", text="a beep"),
        hit(media["square"], 0.5, 1.5, time=1.0, score=0.5),
        hit(media["silent"], 1.0, 1.8, time=1.5),
    ]
    text = otio_json(hits, query="a white flash", pad_before=0.4, pad_after=0.4)
    timeline = otio.adapters.read_from_string(text, "otio_json")
    assert timeline.name == "frameseek: a white flash"
    picture, sound = timeline.tracks
    assert picture.kind == otio.schema.TrackKind.Video and sound.kind == otio.schema.TrackKind.Audio
    clips_ = list(picture)
    ranges = [(c.source_range.start_time.to_seconds(), c.source_range.duration.to_seconds()) for c in clips_]
    assert ranges == [pytest.approx((0.6, 2.8)), pytest.approx((0.1, 1.8)), pytest.approx((0.6, 1.4))]
    assert [c.source_range.start_time.rate for c in clips_] == [25, 30, 25]  # each at its source's rate
    assert clips_[0].media_reference.target_url == media["wide"].resolve().as_uri()
    assert clips_[0].media_reference.available_range.duration.to_seconds() == pytest.approx(4.0)
    assert picture.duration().to_seconds() == pytest.approx(2.8 + 1.8 + 1.4)  # the last one clamped
    marker = clips_[0].markers[0]
    assert marker.name == "a white flash" and marker.color == otio.schema.MarkerColor.ORANGE
    assert marker.marked_range.start_time.to_seconds() == pytest.approx(2.0)
    assert marker.metadata["frameseek"]["score"] == 0.75 and marker.metadata["frameseek"]["match"] == "speech"
    assert marker.metadata["frameseek"]["query"] == "a white flash" and "a beep" in marker.comment
    assert [type(item).__name__ for item in sound] == ["Clip", "Clip", "Gap"]  # the silent video: a gap
    assert otio_timeline(hits, audio=False).tracks[0].kind == otio.schema.TrackKind.Video
    assert len(otio_timeline(hits, audio=False).tracks) == 1


# ------------------------------------------------------------------------------------------ CLI and app


def test_export_folder(media: dict[str, Path], tmp_path: Path) -> None:
    hits = [hit(media["wide"], 1.5, 2.5), hit(media["silent"], 0.5, 1.0)]
    written = export_hits(hits, tmp_path, pad_before=0.5, pad_after=0.5)
    assert [set(streams(Path(item["clip"]))) for item in written] == [{"video", "audio"}, {"video"}]
    assert streams(Path(written[0]["clip"]))["audio"]["duration"] == pytest.approx(2.0, abs=0.025)
    edits = export_for_editing(hits, tmp_path, markers="otio", query="q", pad_before=0.25)
    assert edits == {"markers": str(tmp_path / "markers.otio")}
    otio.adapters.read_from_file(edits["markers"])
    with pytest.raises(InputError, match="markers"):
        export_for_editing(hits, tmp_path, markers="aaf")


class _FakeSearcher:
    """Stands in for the model: returns two fixed hits in the wide video."""

    video: Path

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.handle = SimpleNamespace(prepare_query_engine=lambda: None)

    def query(self, text: str | None, *args: Any) -> str | None:
        return text

    def prepare_query_engine(self) -> None:
        pass

    def search(self, source: Any, query: str | None, **kwargs: Any) -> SearchResponse:
        hits = [hit(self.video, 1.8, 2.4, time=2.0), hit(self.video, 0.5, 1.0, time=0.7)]
        return SearchResponse(str(source), "fake", query, hits, {})


def test_cli_export_with_pads_supercut_and_markers(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_FakeSearcher, "video", media["wide"], raising=False)
    monkeypatch.setattr("frameseek.api.Searcher", _FakeSearcher)  # the command line's Searcher
    folder = tmp_path / "out"
    args = ["search", str(media["wide"]), "a white flash", "--json", "--export", str(folder),
            "--pad-before", "0.2", "--pad-after", "0.4", "--supercut", "--markers", "edl"]  # fmt: skip
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["supercut"] == str(folder / "supercut.mp4") and data["markers"] == str(folder / "markers.edl")
    # both segments are shorter than 1 s: widened around their hits (the one clip rule), then padded
    first = streams(Path(data["exports"][0]["clip"]))  # [1.5, 2.5) padded: [1.3, 2.9)
    assert set(first) == {"video", "audio"} and first["audio"]["duration"] == pytest.approx(1.6, abs=0.025)
    second = streams(Path(data["exports"][1]["clip"]))  # [0.2, 1.2) padded: [0.0, 1.6)
    assert second["audio"]["duration"] == pytest.approx(1.6, abs=0.025)
    assert streams(folder / "supercut.mp4")["video"]["duration"] == pytest.approx(1.6 + 1.6, abs=0.05)
    text = (folder / "markers.edl").read_text()
    assert "FCM: NON-DROP FRAME" in text and "a white flash" in text
    assert [e[3:] for e in events(text)] == [
        ("00:00:01:08", "00:00:02:23", "00:00:00:00", "00:00:01:15"),
        ("00:00:00:00", "00:00:01:15", "00:00:01:15", "00:00:03:05"),
    ]
    bad = CliRunner().invoke(cli.app, [*args[:-1], "aaf"])
    assert bad.exit_code == 2 and "aaf" in bad.output


def test_app_logic_for_editors(media: dict[str, Path]) -> None:
    hits = [hit(media["wide"], 1.5, 2.5, time=2.0), hit(media["square"], 0.9, 1.1, time=1.0)]
    response = SearchResponse("src", "fake", "a flash", hits, {})
    assert logic.picked_hits(response, {}) == hits  # every card selected until unticked
    assert logic.picked_hits(response, {logic.pick_key(1): False}) == hits[1:]
    assert logic.pads({}) == (0.0, 0.0)
    assert logic.pads({"pad_before": 1.5, "pad_after": 99}) == (1.5, logic.PAD_MAX_SECONDS)
    text = logic.markers_file(hits, "edl", response.query, 0.5, 0.0).decode()
    # the second hit's 0.2 s segment is widened to the Clip button's 1 s, then padded
    assert [e[3:5] for e in events(text)] == [("00:00:01:00", "00:00:02:13"), ("00:00:00:00", "00:00:01:13")]
    timeline = otio.adapters.read_from_string(logic.markers_file(hits, "otio", None).decode(), "otio_json")
    assert len(list(timeline.tracks[0])) == 2
    assert logic.markers_download("otio") == (".otio", "application/json")
    assert logic.edit_name(response, ".edl") == "supercut-a-flash.edl"
    with pytest.raises(InputError, match="select"):
        logic.supercut_mp4([])


def test_app_supercut_and_padded_clip_bytes(media: dict[str, Path], tmp_path: Path) -> None:
    hits = [hit(media["wide"], 1.5, 2.5, time=2.0), hit(media["square"], 0.9, 1.1, time=1.0)]
    (tmp_path / "cut.mp4").write_bytes(logic.supercut_mp4(hits, 0.0, 0.5))
    assert streams(tmp_path / "cut.mp4")["audio"]["duration"] == pytest.approx(1.5 + 1.5, abs=0.05)
    (tmp_path / "clip.mp4").write_bytes(logic.clip_mp4(hits[0], 0.5, 0.5))
    assert streams(tmp_path / "clip.mp4")["audio"]["duration"] == pytest.approx(2.0, abs=0.025)
