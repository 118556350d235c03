"""Timed text: a span of words said (subtitles, speech recognition) or written on screen (OCR)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SpanKind = Literal["speech", "screen"]
"""``speech``: words said (subtitles, captions, speech recognition); ``screen``: text read off the frames."""


@dataclass(frozen=True)
class TextSpan:
    """One piece of timed text: ``[start, end)`` seconds from the video stream's start, and its words."""

    start: float
    end: float
    text: str
    kind: SpanKind = "speech"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TextTrack:
    """Every span of one kind for one video, with where they came from.

    ``origin`` says how the text was obtained, e.g. ``"subtitles:sidecar talk.en.srt"``,
    ``"subtitles:embedded stream 2 (mov_text, eng)"``, ``"captions:en"``, ``"asr:whisper-base"``,
    ``"ocr:rapidocr"``; ``language`` is an ISO 639-1 code when known.
    """

    kind: SpanKind
    spans: tuple[TextSpan, ...]
    origin: str
    language: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind,
                "origin": self.origin,
                "language": self.language,
                "info": self.info,
                "spans": [[s.start, s.end, s.text] for s in self.spans],
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> TextTrack:
        """Inverse of ``to_json``; ValueError / KeyError / TypeError on malformed input."""
        data = json.loads(text)
        kind = data["kind"]
        if kind not in ("speech", "screen"):
            raise ValueError(f"unknown text track kind {kind!r}")
        spans = tuple(TextSpan(float(a), float(b), str(t), kind) for a, b, t in data["spans"])
        return cls(kind, spans, str(data["origin"]), data.get("language"), dict(data.get("info") or {}))
