"""On-screen text: captions burned with ffmpeg drawtext at known times over real footage, read back by OCR."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from frameseek.errors import InputError
from frameseek.text.formats import to_srt
from frameseek.text.matching import SpanMatcher, normalize
from frameseek.text.ocr import OcrStats, ScreenReader, change_thumbnail, read_screen_text, screen_change
from frameseek.text.spans import TextSpan
from frameseek.video.decode import Frame, iter_frames
from videos import BIKES, require_ffmpeg

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
CAPTIONS = (("FINAL LAP", 2.0, 4.0), ("Chapter 4 - Winter pruning", 6.0, 8.0))
"""Text, first and last second it is on screen (drawtext ``between(t, a, b)`` includes both ends)."""
SECONDS = 10


def _font() -> Path:
    if not FONT.is_file():
        pytest.skip(f"font {FONT} is not installed")
    return FONT


def _burn(source: list[str], out: Path) -> Path:
    """Encode ``SECONDS`` of ``source`` (ffmpeg input options) with the CAPTIONS drawn at their times."""
    ffmpeg, font = require_ffmpeg(), _font()
    filters = [
        f"drawtext=fontfile={font}:text='{text}':fontsize=32:fontcolor=white:borderw=2:bordercolor=black"
        f":x=(w-text_w)/2:y=h-60:enable='between(t,{a},{b})'"
        for text, a, b in CAPTIONS
    ]
    command = [ffmpeg, "-v", "error", "-y", *source, "-t", str(SECONDS), "-an"]
    command += ["-vf", ",".join([*filters, "format=yuv420p"]), "-c:v", "libx264", "-preset", "ultrafast"]
    subprocess.run([*command, str(out)], check=True, capture_output=True)
    return out


def _moving_source() -> list[str]:
    if BIKES.is_file():
        return ["-i", str(BIKES)]
    return ["-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={SECONDS}"]


@pytest.fixture(scope="module")
def reader() -> ScreenReader:
    return ScreenReader(threads=1)


@pytest.fixture(scope="module")
def moving_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _burn(_moving_source(), tmp_path_factory.mktemp("ocr") / "moving.mp4")


@pytest.fixture(scope="module")
def still_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One frame of real footage held for SECONDS, with the captions: only they change the picture."""
    folder = tmp_path_factory.mktemp("ocr")
    still = folder / "still.png"
    ffmpeg = require_ffmpeg()
    if BIKES.is_file():
        grab = [ffmpeg, "-v", "error", "-y", "-ss", "3", "-i", str(BIKES), "-frames:v", "1", str(still)]
    else:
        grab = [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360", "-frames:v", "1"]
        grab.append(str(still))
    subprocess.run(grab, check=True, capture_output=True)
    return _burn(["-loop", "1", "-framerate", "25", "-i", str(still)], folder / "still.mp4")


def _caption_span(spans: list[TextSpan], text: str) -> TextSpan:
    found = [s for s in spans if normalize(s.text) == normalize(text)]
    assert len(found) == 1, (text, spans)
    return found[0]


def _check_caption_times(spans: list[TextSpan]) -> None:
    for text, first, last in CAPTIONS:
        span = _caption_span(spans, text)
        assert span.kind == "screen"
        assert first - 0.05 <= span.start <= first + 0.55  # first 2-frames/s sample showing it
        assert last <= span.end <= last + 0.6  # last sample showing it + one step


@pytest.mark.slow
def test_captions_over_moving_footage_become_timed_spans(moving_video: Path, reader: ScreenReader) -> None:
    stats = OcrStats()
    seen: list[float] = []
    spans = read_screen_text(
        iter_frames(moving_video, fps=2.0), reader, stats=stats, progress=lambda _, t, __: seen.append(t)
    )
    _check_caption_times(spans)
    assert stats.frames_seen == len(seen) == 2 * SECONDS
    assert stats.frames_read >= 1 and stats.ocr_seconds > 0
    assert stats.spans == len(spans)
    # Exported and searched like any other timed text.
    assert "FINAL LAP" in to_srt(spans)
    best = SpanMatcher(spans).best("final lap", k=1)
    assert best and normalize(best[0].span.text) == "final lap" and best[0].score == 1.0


@pytest.mark.slow
def test_unchanged_frames_are_not_read_again(still_video: Path, reader: ScreenReader) -> None:
    now = [0.0]
    read_at: list[float] = []

    class Recording(ScreenReader):
        def read_detailed(
            self, image: np.ndarray, *, min_confidence: float | None = None
        ) -> tuple[list[tuple[str, float]], int]:
            read_at.append(now[0])
            return reader.read_detailed(image, min_confidence=min_confidence)

    def frames() -> Iterator[Frame]:
        for frame in iter_frames(still_video, fps=2.0):
            now[0] = frame.time
            yield frame

    stats = OcrStats()
    spans = read_screen_text(frames(), Recording(), stats=stats)
    _check_caption_times(spans)
    assert stats.frames_seen == 2 * SECONDS
    # The first frame, then once after each caption appears or disappears (2, 4, 6, 8 s): nothing else.
    boundaries = [t for _, a, b in CAPTIONS for t in (a, b)]
    assert read_at[0] == 0.0
    assert all(any(0 <= t - b <= 0.6 for b in boundaries) for t in read_at[1:]), read_at
    assert stats.frames_read == len(read_at) == 1 + len(boundaries)
    assert stats.frames_skipped == stats.frames_seen - stats.frames_read


@pytest.mark.slow
def test_min_change_zero_reads_every_frame(still_video: Path, reader: ScreenReader) -> None:
    frames = list(iter_frames(still_video, fps=1.0, end=3.0))
    stats = OcrStats()
    read_screen_text(frames, reader, min_change=0.0, stats=stats)
    assert stats.frames_read == stats.frames_seen == len(frames) == 3


def _picture_with_text(text: str) -> np.ndarray:
    import cv2

    image = np.full((180, 640, 3), 40, dtype=np.uint8)
    cv2.putText(image, text, (30, 110), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (255, 255, 255), 3, cv2.LINE_AA)
    return image


@pytest.mark.slow
def test_reader_reads_lines_and_drops_unsure_ones(reader: ScreenReader) -> None:
    lines = reader.read(_picture_with_text("HELLO WORLD"))
    assert [normalize(t) for t, _ in lines] == ["hello world"]
    assert all(0.8 <= c <= 1.0 for _, c in lines)
    assert reader.read(np.full((180, 640, 3), 40, dtype=np.uint8)) == []
    above = lines[0][1] + 1e-6  # the engine is deterministic: the same picture reads the same score
    assert reader.read_detailed(_picture_with_text("HELLO WORLD"), min_confidence=above) == ([], 1)


def test_reader_rejects_non_rgb_input() -> None:
    with pytest.raises(InputError, match="HxWx3 uint8"):
        ScreenReader().read(np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(InputError, match="HxWx3 uint8"):
        ScreenReader().read(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(InputError):
        ScreenReader(threads=0)


class Scripted(ScreenReader):
    """Returns scripted lines, one list per frame read (no OCR): tests the span logic alone."""

    def __init__(self, script: list[list[str]]) -> None:
        super().__init__()
        self.script = list(script)
        self.calls = 0

    def read_detailed(
        self, image: np.ndarray, *, min_confidence: float | None = None
    ) -> tuple[list[tuple[str, float]], int]:
        self.calls += 1
        return [(t, 0.95) for t in self.script.pop(0)], 0


def _noise_frames(count: int, step: float = 1.0) -> list[Frame]:
    """Frames that all differ (so each is read)."""
    rng = np.random.default_rng(0)
    return [Frame(i * step, rng.integers(0, 256, (36, 64, 3), dtype=np.uint8)) for i in range(count)]


def test_near_identical_readings_merge_and_changes_split() -> None:
    script = [
        ["FINAL LAP"],
        ["FINAL LAP"],
        ["FlNAL LAP"],
        ["FINAL LAP"],
        [],
        [],
        ["Chapter 4"],
        ["Chapter 5 !"],
    ]
    spans = read_screen_text(_noise_frames(len(script)), Scripted(script))
    assert spans == [
        TextSpan(0.0, 4.0, "FINAL LAP", "screen"),  # jitter merged; the majority reading kept
        TextSpan(6.0, 7.0, "Chapter 4", "screen"),
        TextSpan(7.0, 8.0, "Chapter 5 !", "screen"),  # a changed text ends the span
    ]


def test_a_line_missed_once_is_bridged_unless_max_missing_is_zero() -> None:
    script = [["SCORE 2-1"], [], ["SCORE 2-1"]]
    assert read_screen_text(_noise_frames(3, 0.5), Scripted(script)) == [
        TextSpan(0.0, 1.5, "SCORE 2-1", "screen")
    ]
    assert read_screen_text(_noise_frames(3, 0.5), Scripted(script), max_missing=0) == [
        TextSpan(0.0, 0.5, "SCORE 2-1", "screen"),
        TextSpan(1.0, 1.5, "SCORE 2-1", "screen"),
    ]


def test_lines_are_tracked_separately_and_unchanged_frames_inherit_text() -> None:
    still = np.full((36, 64, 3), 90, dtype=np.uint8)
    frames = [Frame(float(t), still) for t in range(4)]
    reader = Scripted([["LIVE", "Goal by Smith"]])
    stats = OcrStats()
    spans = read_screen_text(frames, reader, stats=stats, step=0.5)
    assert reader.calls == 1 and stats.frames_read == 1 and stats.frames_seen == 4
    assert spans == [  # each line labelled with its language where the detector can tell
        TextSpan(0.0, 3.5, "Goal by Smith", "screen", "en"),
        TextSpan(0.0, 3.5, "LIVE", "screen", None),
    ]


def test_screen_change_sees_a_small_caption_but_not_noise() -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(60, 200, (360, 640, 3), dtype=np.uint8)
    noisy = np.clip(base.astype(np.int16) + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
    captioned = base.copy()
    captioned[300:330, 250:400] = 255  # a caption's worth of bright pixels
    reference = change_thumbnail(base)
    assert screen_change(reference, change_thumbnail(noisy)) < 3.0
    assert screen_change(reference, change_thumbnail(captioned)) > 10.0
    assert screen_change(reference, change_thumbnail(base[:180])) == float("inf")


def test_options_are_checked() -> None:
    with pytest.raises(InputError, match="min_change"):
        read_screen_text([], Scripted([]), min_change=-1)
    with pytest.raises(InputError, match="step"):
        read_screen_text([], Scripted([]), step=0)
    assert read_screen_text([], Scripted([])) == []
