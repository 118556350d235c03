"""A montage of real clips with a known timeline, built at test time with ffmpeg (never stored in the repo).

Scenes come from the shared MSR-VTT clips and the street video (``bikes.mp4``, whose scene timeline is in
``shared/data/README.md``), each cut, scaled into 320×240 (padded, aspect kept) at 25 fps and joined in
order, so where each kind of scene is — and how many times it appears — is known to the frame.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from videos import BIKES, MSRVTT_DIR, require_ffmpeg


@dataclass(frozen=True)
class Scene:
    """One cut of a real clip: its kind (what a viewer sees), the clip, and where in it."""

    kind: str
    clip: Path
    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start


ORCHESTRA = "orchestra"
RECORDER = "recorder"
HOCKEY = "hockey"
CLASSROOM = "classroom"
TRAFFIC = "traffic"
BASKETBALL = "basketball"

SCENES = (
    Scene(ORCHESTRA, MSRVTT_DIR / "video3696.mp4", 0.0, 3.0),  # a conductor before an orchestra
    Scene(RECORDER, MSRVTT_DIR / "video1820.mp4", 6.0, 10.0),  # a girl holding a recorder
    Scene(HOCKEY, MSRVTT_DIR / "video1672.mp4", 5.0, 9.0),  # ice hockey players
    Scene(CLASSROOM, MSRVTT_DIR / "video2752.mp4", 0.5, 5.5),  # children sitting on a classroom floor
    Scene(TRAFFIC, BIKES, 1.2, 3.0),  # cars in a traffic jam
    Scene(RECORDER, MSRVTT_DIR / "video1820.mp4", 6.0, 10.0),  # the girl again
    Scene(BASKETBALL, MSRVTT_DIR / "video1672.mp4", 0.0, 4.0),  # a basketball game on a court
    Scene(RECORDER, MSRVTT_DIR / "video1820.mp4", 6.0, 10.0),  # the girl a third time
    Scene(ORCHESTRA, MSRVTT_DIR / "video3696.mp4", 8.5, 11.5),  # the orchestra again, wide
)
"""The montage, in order: the girl with a recorder three times (apart), everything else once or twice;
the classroom only before the traffic jam."""

SUBTITLES = (
    (0.5, 2.5, "good evening and welcome to the concert"),
    (30.3, 32.8, "thank you very much"),
)
"""What the montage's sidecar (``montage.srt``) says, and when: "thank you" only over the last orchestra."""

WIDTH, HEIGHT, FPS = 320, 240, 25


@dataclass(frozen=True)
class Montage:
    """The built video and where each scene is in it (seconds)."""

    path: Path
    timeline: tuple[tuple[str, float, float], ...]

    def spans(self, kind: str) -> list[tuple[float, float]]:
        """Where scenes of ``kind`` are, in order."""
        return [(start, end) for k, start, end in self.timeline if k == kind]

    @property
    def duration(self) -> float:
        return self.timeline[-1][2]


def timeline_of(scenes: tuple[Scene, ...] = SCENES) -> tuple[tuple[str, float, float], ...]:
    """(kind, start, end) of each scene in the joined video."""
    timeline = []
    at = 0.0
    for scene in scenes:
        timeline.append((scene.kind, round(at, 3), round(at + scene.length, 3)))
        at += scene.length
    return tuple(timeline)


def srt(cues: tuple[tuple[float, float, str], ...]) -> str:
    """SubRip text of ``cues``."""

    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "".join(f"{i}\n{stamp(a)} --> {stamp(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues, 1))


def build_montage(out: Path, scenes: tuple[Scene, ...] = SCENES, *, subtitles: bool = True) -> Montage:
    """Cut and join ``scenes`` into ``out`` (H.264, no audio), with ``SUBTITLES`` in a sidecar beside it;
    skip the test if a clip or ffmpeg is missing."""
    ffmpeg = require_ffmpeg()
    missing = sorted({s.clip.name for s in scenes if not s.clip.is_file()})
    if missing:
        pytest.skip(f"montage clips not available: {', '.join(missing)}")
    inputs: list[str] = []
    chains: list[str] = []
    for i, scene in enumerate(scenes):
        inputs += ["-i", str(scene.clip)]
        chains.append(
            f"[{i}:v]trim=start={scene.start}:end={scene.end},setpts=PTS-STARTPTS,"
            f"scale={WIDTH}:{HEIGHT}:force_original_aspect_ratio=decrease,"
            f"pad={WIDTH}:{HEIGHT}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={FPS},"
            # a clip of 3 fps cut at any time: its last frame held, so the scene lasts exactly its length
            f"tpad=stop_mode=clone:stop_duration=1,trim=duration={scene.length},setpts=PTS-STARTPTS[v{i}]"
        )
    joined = "".join(f"[v{i}]" for i in range(len(scenes)))
    graph = ";".join(chains) + f";{joined}concat=n={len(scenes)}:v=1:a=0[out]"
    command = [ffmpeg, "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]"]
    command += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", str(out)]
    subprocess.run(command, check=True, capture_output=True)
    if subtitles:
        out.with_suffix(".srt").write_text(srt(SUBTITLES), encoding="utf-8")
    return Montage(out, timeline_of(scenes))
