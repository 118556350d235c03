"""What a search returns: moments (with their segments), similarity timelines, and the run's metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SearchResult:
    """One matching moment: where, when (seconds and HH:MM:SS.mmm), how well, and its segment.

    The one result type: ``as_dict`` is a hit of ``frameseek search --json`` and of the app, and the HTTP
    service's response schema is this dataclass, extended by the ids of its files (``service.schemas.Hit``).
    """

    video: str
    title: str
    time: float
    timecode: str
    score: float
    start: float
    end: float
    thumbnail: str | None
    match: str = "visual"
    """What matched: ``visual``, ``speech`` or ``screen``, or several joined by ``+`` (strongest first)."""
    text: str | None = None
    """The words that matched (a sentence said, a line on screen), when a text track matched."""
    confidence: float = 0.0
    """The calibrated probability that this moment matches the query, in [0, 1]
    (``frameseek.moments.confidence``)."""
    language: str | None = None
    """The ISO 639-1 code of ``text``'s language (what Whisper heard, ``--speech-language``, or the screen
    text's detected language); None when unknown or no text matched."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Timeline:
    """A video's similarity over time for one query (the app's chart)."""

    video: str
    title: str
    times: np.ndarray
    scores: np.ndarray
    origin: str = ""
    """Where the video came from (a path or the link it was downloaded from)."""


@dataclass
class SearchResponse:
    """Results of one query, with the metrics of the run that produced them."""

    source: str
    model: str
    query: str | None
    results: list[SearchResult]
    metrics: dict[str, Any]
    notices: list[str] = field(default_factory=list)
    timelines: list[Timeline] = field(default_factory=list)
    transcripts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Per video path: the spans of its text tracks (the app's transcript panel)."""
    partial: bool = False
    """True for first results from a quick preview while the full index is still being built."""
    found: bool = False
    """Whether any moment matches well (its confidence reaches ``moments.confidence.FOUND_AT``); when
    False the results are the closest moments, shown as weak."""
    count: int | None = None
    """For an order, duration, count or overlap query (``query.MomentQuery``): how many distinct moments
    match (confidence ≥ ``FOUND_AT``); None for a plain query."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "model": self.model,
            "query": self.query,
            "results": [r.as_dict() for r in self.results],
            "metrics": self.metrics,
            "notices": self.notices,
            "partial": self.partial,
            "found": self.found,
            "count": self.count,
        }
