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
    language: str | None = None
    """ISO 639-1 code of the span's language (Whisper's detection, a forced ``--speech-language``, or the
    screen-text detector); None when unknown."""

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
                "spans": [
                    [s.start, s.end, s.text]
                    if s.language == self.language
                    else [s.start, s.end, s.text, s.language]
                    for s in self.spans
                ],
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> TextTrack:
        """Inverse of ``to_json``; ValueError / KeyError / TypeError on malformed input.

        A span is ``[start, end, text]`` (its language: the track's, as every transcript stored before
        per-span languages reads) or ``[start, end, text, language]``."""
        data = json.loads(text)
        kind = data["kind"]
        if kind not in ("speech", "screen"):
            raise ValueError(f"unknown text track kind {kind!r}")
        language = data.get("language")
        if language is not None and not isinstance(language, str):
            raise TypeError(f"a track's language must be a string, got {language!r}")
        spans = []
        for item in data["spans"]:
            if len(item) not in (3, 4):
                raise ValueError(f"a span is [start, end, text(, language)], got {len(item)} items")
            own = language if len(item) == 3 else (None if item[3] is None else str(item[3]))
            spans.append(TextSpan(float(item[0]), float(item[1]), str(item[2]), kind, own))
        return cls(kind, tuple(spans), str(data["origin"]), language, dict(data.get("info") or {}))
