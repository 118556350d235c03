"""The sound track (``--sounds``, ``TrackOptions(extra={"sounds"})``): speech / singing / music events of a
video's audio, stored under its content hash (``sounds/<key>.json``), scored against the query's sound
words (``sounds.query``).

The audio is the context's (``TrackContext.audio``): decoded once per video for every audio track, so
speech recognition and the sound track read the same samples.

A candidate's confidence is ``probability × coverage``: the detector's mean posterior for the class over
the event (its own estimate that the class is there; no labelled sound data exists here to fit a
calibration on, so it is used as it comes) times the share of the query the class answers
(``SoundRequest.classes``). The picture and the words fuse with it by noisy-OR (``moments.fusion``).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, ClassVar

from frameseek.indexing.tracks import (
    Obtained,
    StoredTrack,
    TrackContext,
    TrackOptions,
    TrackQuery,
    register,
)
from frameseek.sounds.events import SoundEvent, detect_sounds, detector_id
from frameseek.sounds.query import sound_request
from frameseek.timecode import format_timecode
from frameseek.video.sources import VideoSource

if TYPE_CHECKING:
    from frameseek.results import SearchResult
    from frameseek.storage.visual import VideoIndex

SOUNDS_VERSION = 1
"""Salts the stored track's key: bump when the events change meaning."""

MIN_CONFIDENCE = 0.05
"""Candidates below this are not offered (a half-covered query on a weak event)."""


class SoundsTrack(StoredTrack[list[SoundEvent]]):
    """What is heard: speech, singing and music events with their probability."""

    name: ClassVar[str] = "sounds"
    label: ClassVar[str] = "sound track"

    def wanted(self, options: TrackOptions) -> bool:
        return False  # opt-in: TrackOptions(extra={"sounds"}) (CLI --sounds)

    def key(self, src: VideoSource, options: TrackOptions) -> str:
        payload = json.dumps({"kind": "sounds", "detector": detector_id(), "version": SOUNDS_VERSION})
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def get(self, src: VideoSource, options: TrackOptions, ctx: TrackContext) -> Obtained:
        from frameseek.text.speech import NoAudioError, has_audio

        if not self.path(src, options).is_file() and not has_audio(src.path):
            return Obtained(
                None, [str(NoAudioError(f"{src.title} has no audio stream; sound search skipped"))]
            )
        return super().get(src, options, ctx)

    def build(self, src: VideoSource, options: TrackOptions, ctx: TrackContext) -> list[SoundEvent]:
        samples, offset = ctx.audio(src)
        with ctx.metrics.stage("sounds"):
            return detect_sounds(samples, offset)

    def encode(self, value: list[SoundEvent]) -> str:
        return json.dumps({"classes": ["speech", "singing", "music"], "events": [e.as_list() for e in value]})

    def decode(self, text: str) -> list[SoundEvent]:
        data = json.loads(text)
        return [SoundEvent.from_list(row) for row in data["events"]]

    def score(self, index: VideoIndex, value: list[SoundEvent], query: TrackQuery) -> list[SearchResult]:
        return sound_candidates(index, value, query.text)


def sound_candidates(index: VideoIndex, events: list[SoundEvent], text: str | None) -> list[SearchResult]:
    """The events of the classes ``text`` asks for, as candidates (``match="sounds"``, ``text`` the
    class in brackets: the result's sound badge), confidence ``probability × coverage``."""
    from frameseek.results import SearchResult

    request = sound_request(text)
    if not request.classes:
        return []
    last = index.last_time
    found = []
    for event in events:
        coverage = request.classes.get(event.kind)
        if coverage is None:
            continue
        confidence = event.probability * coverage
        if confidence < MIN_CONFIDENCE:
            continue
        end = event.end if last is None else min(event.end, last)
        if end < event.start:  # past the sampled window
            continue
        time = end if request.at_end else event.start
        frame = _frame_at(index, time)
        found.append(
            SearchResult(
                video=index.video_path,
                title=index.title,
                time=round(time, 6),
                timecode=format_timecode(time),
                score=round(event.probability, 6),
                start=round(event.start, 6),
                end=round(end, 6),
                thumbnail=index.thumbnail_if_present(frame) if frame is not None else None,
                match="sounds",
                text=f"[{event.kind}]",
                confidence=round(confidence, 6),
            )
        )
    return found


def _frame_at(index: VideoIndex, time: float) -> int | None:
    """The sampled frame on screen at ``time`` (the last at or before it), None for an empty index."""
    import numpy as np

    if not len(index):
        return None
    i = int(np.searchsorted(index.times, time + 1e-6, side="right")) - 1
    return max(0, min(i, len(index) - 1))


register(SoundsTrack)
