"""What the tools return (their structured output, published as each tool's output schema)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MomentOut(BaseModel):
    """One moment: where, when, how sure, what matched, and its thumbnail as a resource."""

    id: str = Field(description="The moment's id for the export tool (valid while this server runs).")
    video: str = Field(description="The video file the moment is in.")
    title: str
    time: float = Field(description="Its best frame, in seconds from the start.")
    timecode: str = Field(description="``time`` as HH:MM:SS.mmm.")
    start: float
    end: float
    start_timecode: str
    end_timecode: str
    confidence: float = Field(description="The calibrated probability that the moment matches, 0 to 1.")
    level: str = Field(description="high, medium or low (low: below the found threshold).")
    match: str = Field(
        description="What matched: visual, speech, screen, sounds, faces, or several joined by '+'."
    )
    matched_words: str | None = Field(
        None, description="The words said or written that matched; for sounds the event, e.g. [music]."
    )
    language: str | None = Field(None, description="The matched words' language (ISO 639-1), when known.")
    thumbnail: str | None = Field(None, description="The thumbnail's resource URI (image/jpeg).")


class SearchOut(BaseModel):
    """A search's answer: the moments, most confident first."""

    source: str
    query: str | None
    model: str
    found: bool = Field(description="Whether any moment matches well (confidence ≥ 0.5).")
    count: int | None = Field(None, description="For a count query: how many distinct moments match.")
    moments: list[MomentOut]
    notices: list[str] = Field(default_factory=list)


class IndexedVideo(BaseModel):
    """A video of a library."""

    id: str = Field(description="The video's id (its content's sha256) for library_remove.")
    title: str
    path: str
    frames: int
    origin: str | None = None


class IndexOut(BaseModel):
    """What an index call added to a library."""

    library: str
    model: str
    videos: list[IndexedVideo]
    notices: list[str] = Field(default_factory=list)


class SpanOut(BaseModel):
    start: float
    end: float
    start_timecode: str
    end_timecode: str
    text: str


class TrackOut(BaseModel):
    kind: str = Field(description="speech (subtitles, captions or recognised speech) or screen (OCR).")
    origin: str
    language: str | None = None
    spans: list[SpanOut]


class TranscriptVideo(BaseModel):
    video: str
    title: str
    duration: float | None
    resource: str = Field(description="The transcript as a resource URI (application/json).")
    tracks: list[TrackOut]


class TranscriptOut(BaseModel):
    videos: list[TranscriptVideo]
    notices: list[str] = Field(default_factory=list)


class LibraryOut(BaseModel):
    library: str
    videos: list[IndexedVideo]


class ExportOut(BaseModel):
    """What an export wrote (every path lies under the server's exports folder)."""

    folder: str
    files: list[str]
