"""Request and response bodies (pydantic): unknown fields are refused, every number has its range.

Option names and defaults are the CLI's (``frameseek search --help``); the model is the server's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from frameseek.api import MAX_STEPS, MAX_VIDEO_SECONDS, InputError, SearchResult, TrackOptions

MAX_SOURCES = 100
MAX_SOURCE_CHARS = 4096


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SamplingOptions(_Strict):
    """How frames are sampled when a video is indexed (the CLI's --fps, --scene, ...)."""

    fps: float = Field(default=1.0, gt=0, le=60, description="Frames sampled per second of video.")
    scene: bool = Field(default=False, description="Sample at shot changes (+ one frame every scene_gap s).")
    scene_gap: float = Field(
        default=10.0, gt=0, le=3600, description="Scene mode: at least one frame every N s."
    )
    exact_frames: bool = Field(default=False, description="Decode every frame up to each grid time (slower).")


class TrackFlags(_Strict):
    """Text tracks: subtitles, what is said (speech, in ``speech_language``), what is written on screen
    (ocr), and what is heard (sounds)."""

    speech: bool = Field(default=False, description="Offline speech recognition when there are no subtitles.")
    ocr: bool = Field(default=False, description="Also search text on screen.")
    subtitles: bool = Field(default=True, description="Use subtitles and captions that come with a video.")
    sub_lang: str = Field(
        default="en", min_length=2, max_length=12, description="Subtitle language (en, pt-BR)."
    )
    sounds: bool = Field(
        default=False, description="Also search what is heard: music, singing, speech (text like [music])."
    )
    speech_language: str | None = Field(
        default=None,
        max_length=16,
        description="The language spoken, a Whisper code (en, de, ja; auto: detect); none: detected.",
    )

    @field_validator("speech_language")
    @classmethod
    def _known_language(cls, code: str | None) -> str | None:
        """An unknown code is refused here (422, one sentence), before any source is read."""
        if code is None:
            return None
        try:
            return TrackOptions(speech_language=code).speech_language
        except InputError as error:
            raise ValueError(str(error)) from None


class SearchRequest(SamplingOptions, TrackFlags):
    """One query against a ``source`` (a path under a --media folder, or an http(s) link) or a ``library``.

    The query is ``query`` (a sentence), ``image`` (a JPEG/PNG/WebP, base64-encoded, inside the same
    JSON body and so within the request size limit), or both (mixed by ``text_weight``).
    """

    source: str | None = Field(default=None, min_length=1, max_length=MAX_SOURCE_CHARS)
    library: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    query: str | None = Field(default=None, max_length=10_000)
    image: str | None = Field(
        default=None, description="An image as the query: base64 (standard or URL-safe)."
    )
    face: str | None = Field(
        default=None, description="Find a person: a face photo, base64 (with a 'source' under --media)."
    )
    person: str | None = Field(
        default=None, min_length=1, max_length=80, description="Find a known person by id (p3) or name."
    )
    text_weight: float = Field(default=0.5, ge=0, le=1)
    top_k: int = Field(default=5, ge=1, le=100)
    min_gap: float = Field(default=2.0, ge=0, le=3600)
    min_confidence: float = Field(
        default=0.0, ge=0, le=1, description="Only moments whose confidence (0-1) reaches this."
    )
    start: float | None = Field(default=None, ge=0, le=MAX_VIDEO_SECONDS, allow_inf_nan=False)
    end: float | None = Field(default=None, gt=0, le=MAX_VIDEO_SECONDS, allow_inf_nan=False)
    max_frames: int | None = Field(default=None, ge=1)
    refine: bool = False
    then: list[str] = Field(
        default_factory=list,
        max_length=MAX_STEPS - 1,
        description="Next steps: moments where the query is followed by each of these, in order.",
    )
    within: float | None = Field(
        default=None, gt=0, le=86_400, description="With 'then': at most N s from one step's end to the next."
    )
    min_duration: float | None = Field(
        default=None, gt=0, le=86_400, description="Only moments that last at least N seconds."
    )
    count: bool = Field(default=False, description="Every distinct matching moment, and how many ('count').")
    first: bool = Field(default=False, description="Only the earliest matching moment.")
    last: bool = Field(default=False, description="Only the latest matching moment.")
    while_: str | None = Field(
        default=None,
        alias="while",
        max_length=10_000,
        description="Only where the query and this happen at the same time (seen, said or written).",
    )

    @property
    def moment_options(self) -> dict[str, Any] | None:
        """The order / duration / count / overlap fields given (for ``Searcher.moment_query``), else None."""
        options: dict[str, Any] = {
            "then": self.then,
            "within": self.within,
            "min_duration": self.min_duration,
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "while_": self.while_,
        }
        return options if any(v not in (None, False, []) for v in options.values()) else None

    @model_validator(mode="after")
    def _one_target(self) -> SearchRequest:
        if (self.source is None) == (self.library is None):
            raise ValueError("give exactly one of 'source' or 'library'")
        if self.face is not None or self.person is not None:
            if self.face is not None and self.person is not None:
                raise ValueError("give a 'face' photo or a 'person', not both")
            if self.source is None or self.query is not None or self.image is not None:
                raise ValueError("a 'face' or 'person' search takes a 'source' and no 'query' or 'image'")
            return self
        if self.query is None and self.image is None:
            raise ValueError("give a 'query', an 'image', or both")
        if self.moment_options is not None and (
            self.query is None or self.image is not None or self.library is not None or self.refine
        ):
            raise ValueError(
                "'then', 'within', 'min_duration', 'count', 'first', 'last' and 'while' search a 'source' "
                "for a text 'query': leave out 'image', 'library' and 'refine'"
            )
        return self


class IndexRequest(SamplingOptions, TrackFlags):
    """Index files, folders (under --media) or links into a library, as a background job."""

    sources: list[str] = Field(min_length=1, max_length=MAX_SOURCES)
    library: str = Field(default="default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")

    @model_validator(mode="after")
    def _sources_fit(self) -> IndexRequest:
        if any(not s.strip() or len(s) > MAX_SOURCE_CHARS for s in self.sources):
            raise ValueError(
                f"each source must be a non-empty path or link of at most {MAX_SOURCE_CHARS} chars"
            )
        return self


@dataclass(frozen=True)
class Hit(SearchResult):
    """One moment: ``SearchResult``'s fields (``frameseek search --json``'s, the one result type) with the
    ids to fetch its picture and clip."""

    thumbnail_id: str | None = field(default=None, metadata={"description": "For GET /thumbnails/{id}."})
    thumbnail_url: str | None = None
    clip_id: str | None = field(
        default=None, metadata={"description": "For GET /clips/{id} (MP4 of the hit's clip)."}
    )
    clip_url: str | None = None


class SearchAnswer(BaseModel):
    """``frameseek search --json``'s object (``SearchResponse.as_dict()``), hits with their ids."""

    model_config = ConfigDict(extra="allow")

    source: str
    model: str
    query: str | None
    results: list[Hit]
    metrics: dict[str, Any]
    notices: list[str]
    partial: bool
    found: bool = Field(
        default=False,
        description="Whether any moment matches well (confidence >= 0.5); else the results are the "
        "closest moments, weak ones.",
    )


JobState = Literal["queued", "running", "done", "failed", "cancelled"]


class JobProgress(BaseModel):
    stage: str | None = None
    done: float | None = None
    total: float | None = None
    videos_done: int = 0
    videos_total: int | None = None
    fraction: float = Field(default=0.0, description="0..1 over the whole job (estimate).")


class Job(BaseModel):
    """An index job: its state, progress, and the result (``frameseek index --json``) or the error."""

    id: str
    state: JobState
    created: float
    updated: float
    started: float | None = None
    finished: float | None = None
    attempts: int = Field(default=0, description="Runs started; above 1 the job was resumed after a restart.")
    cancel_requested: bool = False
    request: IndexRequest
    progress: JobProgress = Field(default_factory=lambda: JobProgress())
    result: dict[str, Any] | None = None
    error: str | None = None


class JobList(BaseModel):
    jobs: list[Job]


class LibraryVideo(BaseModel):
    video_sha256: str
    title: str
    path: str | None = None
    origin: str | None = None
    frames: int | None = None
    model_fingerprint: str | None = None


class LibraryAnswer(BaseModel):
    library: str
    videos: list[LibraryVideo]


class Removed(BaseModel):
    library: str
    video_sha256: str
    removed: int


class Health(BaseModel):
    status: Literal["ok"]
    model: str
    ready: bool = Field(description="True once the model is loaded (queries before that wait for it).")
    version: str


class ErrorBody(BaseModel):
    error: str = Field(description="One line saying what went wrong.")


class EditRequest(_Strict):
    """Chosen hits (their ``clip_id``s, in order) as one supercut MP4 or as markers for an editor."""

    clips: list[str] = Field(
        min_length=1, max_length=100, description="clip_id of each chosen hit, in order."
    )
    format: Literal["mp4", "edl", "otio", "fcpxml", "fcp7"] = Field(
        default="mp4",
        description="mp4: a supercut with sound; edl: CMX 3600; otio: OpenTimelineIO; fcpxml: Final Cut Pro X;"
        " fcp7: Final Cut 7 XML (Premiere Pro, DaVinci Resolve).",
    )
    pad_before: float = Field(default=0.0, ge=0, le=30, description="Seconds of handle before each hit.")
    pad_after: float = Field(default=0.0, ge=0, le=30, description="Seconds of handle after each hit.")
    query: str | None = Field(default=None, max_length=500, description="Written into the markers.")


class PeopleAnswer(BaseModel):
    """The people of a video or of the library: id, name, screen time, appearances, their videos."""

    people: list[dict[str, Any]]


class NameRequest(_Strict):
    """A name for a person (``POST /people/{person}/name``)."""

    name: str = Field(min_length=1, max_length=80)


class Forgotten(BaseModel):
    """How many people ``DELETE /people`` removed."""

    forgotten: int
