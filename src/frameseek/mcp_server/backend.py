"""The work behind the tools: one ``Searcher`` per process, every source checked, answers as typed values.

Each method is a plain synchronous call of ``frameseek.api`` (the server runs it on a worker thread). A
local path must lie under the ``--media`` folders (symlinks followed, for each video a folder holds too);
a link must reach public addresses only, and every connection its download makes is checked
(``ConnectionGuard``), unless the server runs with ``--allow-private-links``. Indexing (and a search that
must index first) runs one at a time. Moments and transcripts are remembered by id, a bounded number, for
the export tool and the resources.

One module because every tool's work shares its state: one Searcher, one work lock, the remembered ids
and the source rules.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from frameseek.api import (
    ConnectionGuard,
    InputError,
    MomentQuery,
    PipelineMetrics,
    Progress,
    Query,
    Sampling,
    Searcher,
    SearchResponse,
    SearchResult,
    TrackOptions,
    VideoSource,
    check_library_name,
    check_link,
    check_min_confidence,
    check_text,
    confidence_level,
    export_for_editing,
    export_hits,
    format_timecode,
    frame_limit_notices,
    inside_roots,
    is_link,
    library_entries,
    load_query_image,
    path_in_roots,
    probe,
    read_text,
    remove_video,
    resolve,
    to_json,
)
from frameseek.mcp_server.config import KEPT_MOMENTS, MAX_SOURCES, MAX_TOP_K, McpSettings
from frameseek.mcp_server.schemas import (
    ExportOut,
    IndexedVideo,
    IndexOut,
    LibraryOut,
    MomentOut,
    SearchOut,
    TrackOut,
    TranscriptOut,
    TranscriptVideo,
)

THUMBNAIL_URI = "frameseek://thumbnails/{moment_id}"
TRANSCRIPT_URI = "frameseek://transcripts/{transcript_id}"
VIDEO_ID = re.compile(r"[0-9a-f]{8,64}")
ExportKind = Literal["clips", "supercut", "markers"]


class Cancelled(InputError):
    """The client cancelled the call; the work stopped at its next progress report."""


class Remembered:
    """A bounded map of ids to values (the oldest forgotten first), safe across threads."""

    def __init__(self, limit: int = KEPT_MOMENTS) -> None:
        self.limit = limit
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, value: Any) -> str:
        key = uuid.uuid4().hex[:16]
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        return key

    def get(self, key: str, what: str) -> Any:
        with self._lock:
            value = self._items.get(key)
        if value is None:
            raise InputError(f"unknown {what} id {key[:40]!r}: ids come from this server's answers")
        return value


def track_options(
    subtitles: bool, speech: bool, screen: bool, sounds: bool, speech_language: str | None
) -> TrackOptions:
    """The tracks a tool asked for; an unknown ``speech_language`` is one line (InputError), before any
    source is checked."""
    return TrackOptions(
        subtitles=subtitles,
        speech=speech,
        ocr=screen,
        extra=frozenset({"sounds"}) if sounds else frozenset(),
        speech_language=speech_language,
    )


def check_top_k(top_k: int) -> int:
    if not 1 <= top_k <= MAX_TOP_K:
        raise InputError(f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}")
    return top_k


class Backend:
    """The process's Searcher and what its answers refer to, behind one object the tools call."""

    def __init__(self, settings: McpSettings, searcher: Searcher | None = None) -> None:
        self.settings = settings
        self._searcher = searcher
        self._made = threading.Lock()
        self._work = threading.Lock()  # indexing (and a search that must index first): one at a time
        self.moments = Remembered()
        self.transcripts = Remembered()

    # ---- the model, sources and links --------------------------------------------------------------------
    def searcher(self) -> Searcher:
        with self._made:
            if self._searcher is None:
                self._searcher = Searcher(self.settings.model, device=self.settings.device)
            return self._searcher

    def check_source(self, source: str) -> str:
        """A source a client may use, as the server will use it (a checked link, or a real local path)."""
        if not isinstance(source, str) or not source.strip():
            raise InputError("give a video: a file or folder under the media folders, or an http(s) link")
        if is_link(source):
            return check_link(source, allow_private=self.settings.allow_private_links)
        return str(path_in_roots(source, self.settings.media))

    def local_videos(self, path: str) -> list[VideoSource]:
        """The videos of a checked local path, each under the media folders once its symlinks are followed."""
        found = resolve(path)
        for src in found:
            if not inside_roots(Path(src.path), self.settings.media):
                raise InputError(
                    f"{src.title} in {path} links to a file outside the server's --media folders"
                )
        if len(found) == 1 and Path(path).is_file():
            probe(found[0].path)  # a file that is not a video is refused before the model loads
        return found

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Every connection this thread makes is checked, unless private links are allowed."""
        if self.settings.allow_private_links:
            yield
            return
        with ConnectionGuard():
            yield

    def videos(self, source: str, searcher: Searcher, progress: Progress | None) -> list[VideoSource]:
        """A checked source as local videos (a link downloaded through the guard); call inside ``guard``."""
        if is_link(source):
            guard = None if self.settings.allow_private_links else ConnectionGuard()
            return searcher.resolve(source, PipelineMetrics(), progress, guard=guard)
        return self.local_videos(source)

    # ---- search ------------------------------------------------------------------------------------------
    def search(
        self,
        *,
        query: str | None,
        source: str | None = None,
        library: str = "default",
        image: str | None = None,
        text_weight: float = 0.5,
        top_k: int = 5,
        then: Sequence[str] = (),
        within: float | None = None,
        min_duration: float | None = None,
        count: bool = False,
        first: bool = False,
        last: bool = False,
        during: str | None = None,
        speech: bool = False,
        screen: bool = False,
        subtitles: bool = True,
        sounds: bool = False,
        speech_language: str | None = None,
        min_confidence: float = 0.0,
        progress: Progress | None = None,
    ) -> tuple[SearchOut, list[bytes]]:
        """The moments of a source (or of a library when no source is given), and their thumbnails."""
        tracks = track_options(subtitles, speech, screen, sounds, speech_language)
        check_top_k(top_k)
        check_min_confidence(min_confidence)
        if query is None and image is None:
            raise InputError("give a text query, an image, or both")
        if query is not None:
            check_text(query)
        name = check_library_name(library)
        composed = any([then, within is not None, min_duration is not None, count, first, last, during])
        if composed and (source is None or image is not None):
            raise InputError(
                "then, within, min_duration, count, first, last and during search a source for text: "
                "give a source and leave out the image"
            )
        checked = None if source is None else self.check_source(source)
        picture = None if image is None else self.query_image(image)
        searcher = self.searcher()
        q: Query = searcher.query(query, picture, text_weight)
        if checked is None:
            response = searcher.search_library(q, library=name, top_k=top_k, min_confidence=min_confidence)
            return self.answer(response)
        asked: Query | MomentQuery = q
        if composed:
            asked = searcher.moment_query(
                query or "",
                then=list(then),
                within=within,
                min_duration=min_duration,
                count=count,
                first=first,
                last=last,
                while_=during,
            )
        with self._work, self.guard():
            found = self.videos(checked, searcher, progress)
            target: str | VideoSource = found[0] if is_link(checked) else checked
            response = searcher.search(
                target, asked, top_k=top_k, tracks=tracks, min_confidence=min_confidence, progress=progress
            )
        return self.answer(response)

    def query_image(self, image: str) -> Any:
        """A query image: a ``data:`` URL, or a file under the media folders."""
        limit = self.searcher().limits.max_pixels
        if image.startswith("data:"):
            return load_query_image(image, limit)
        return load_query_image(path_in_roots(image, self.settings.media), limit, name=image)

    def answer(self, response: SearchResponse) -> tuple[SearchOut, list[bytes]]:
        """A response as the tool's output (each moment remembered for export) and the thumbnails' bytes."""
        moments: list[MomentOut] = []
        pictures: list[bytes] = []
        for result in response.results:
            key = self.moments.add(result)
            picture = thumbnail_bytes(result)
            if picture is not None:
                pictures.append(picture)
            moments.append(
                MomentOut(
                    id=key,
                    video=result.video,
                    title=result.title,
                    time=result.time,
                    timecode=result.timecode,
                    start=result.start,
                    end=result.end,
                    start_timecode=format_timecode(result.start),
                    end_timecode=format_timecode(result.end),
                    confidence=round(result.confidence, 4),
                    level=confidence_level(result.confidence),
                    match=result.match,
                    matched_words=result.text,
                    language=result.language,
                    thumbnail=None if picture is None else THUMBNAIL_URI.format(moment_id=key),
                )
            )
        out = SearchOut(
            source=response.source,
            query=response.query,
            model=response.model,
            found=response.found,
            count=response.count,
            moments=moments,
            notices=list(response.notices),
        )
        return out, pictures

    def thumbnail(self, moment_id: str) -> bytes:
        picture = thumbnail_bytes(self.moments.get(moment_id, "moment"))
        if picture is None:
            raise InputError(f"moment {moment_id!r} has no thumbnail")
        return picture

    # ---- index -------------------------------------------------------------------------------------------
    def index(
        self,
        sources: Sequence[str],
        *,
        library: str = "default",
        fps: float = 1.0,
        speech: bool = False,
        screen: bool = False,
        subtitles: bool = True,
        sounds: bool = False,
        speech_language: str | None = None,
        progress: Progress | None = None,
        cancelled: threading.Event | None = None,
    ) -> IndexOut:
        """Index files, folders or links into a library; every source is checked before any work."""
        tracks = track_options(subtitles, speech, screen, sounds, speech_language)
        if not sources:
            raise InputError("give at least one source to index")
        if len(sources) > MAX_SOURCES:
            raise InputError(f"index at most {MAX_SOURCES} sources per call, got {len(sources)}")
        name = check_library_name(library)
        sampling = Sampling(fps=fps)
        checked = [self.check_source(s) for s in sources]
        report = stoppable(progress, cancelled)
        searcher = self.searcher()
        with self._work, self.guard():
            videos: list[VideoSource] = []
            for source in checked:
                report("resolve", 0.0, None)
                videos += self.videos(source, searcher, report)
            outcomes, _ = searcher.add(videos, name, sampling=sampling, tracks=tracks, progress=report)
        rows: list[IndexedVideo] = []
        notices: list[str] = []
        for outcome in outcomes:
            if outcome.index is None:
                continue
            index = outcome.index
            rows.append(
                IndexedVideo(
                    id=index.video_sha256, title=index.title, path=index.video_path, frames=len(index)
                )
            )
            notices += frame_limit_notices([index]) + outcome.text.notices
        return IndexOut(library=name, model=searcher.model_name, videos=rows, notices=notices)

    # ---- transcripts -------------------------------------------------------------------------------------
    def transcript(
        self,
        source: str,
        *,
        speech: bool = False,
        screen: bool = False,
        subtitles: bool = True,
        speech_language: str | None = None,
        progress: Progress | None = None,
        cancelled: threading.Event | None = None,
    ) -> TranscriptOut:
        """What is said (subtitles, or recognised speech) and written on screen in each video of a source."""
        options = track_options(subtitles, speech, screen, False, speech_language)
        checked = self.check_source(source)
        report = stoppable(progress, cancelled)
        rows: list[TranscriptVideo] = []
        notices: list[str] = []
        with self._work, self.guard():
            videos = self.videos(checked, self.searcher(), report)
            texts = [text for src in videos for text in read_text(src, options, progress=report)]
        for text in texts:
            present = text.tracks.present()
            data = json.loads(to_json(present))
            key = self.transcripts.add(
                json.dumps({"video": str(text.source.path), **data}, ensure_ascii=False)
            )
            tracks = [TrackOut.model_validate(track) for track in data["tracks"]]
            rows.append(
                TranscriptVideo(
                    video=str(text.source.path),
                    title=text.source.title,
                    duration=text.duration,
                    resource=TRANSCRIPT_URI.format(transcript_id=key),
                    tracks=tracks,
                )
            )
            notices += text.tracks.notices
        return TranscriptOut(videos=rows, notices=notices)

    def transcript_json(self, transcript_id: str) -> str:
        return str(self.transcripts.get(transcript_id, "transcript"))

    # ---- library -----------------------------------------------------------------------------------------
    def library(self, library: str = "default") -> LibraryOut:
        name = check_library_name(library)
        return LibraryOut(library=name, videos=[library_video(e) for e in library_entries(name)])

    def remove(self, video_id: str, library: str = "default") -> LibraryOut:
        """Drop a video (its id, or an id prefix of 8 or more characters) from a library."""
        name = check_library_name(library)
        if not VIDEO_ID.fullmatch(video_id.strip().lower()):
            raise InputError("give the video's id (8 to 64 hex characters) from library_list")
        removed = remove_video(name, video_id.strip().lower())
        return LibraryOut(library=name, videos=[library_video(e) for e in removed])

    # ---- exports -----------------------------------------------------------------------------------------
    def export(
        self,
        moment_ids: Sequence[str],
        kind: ExportKind,
        *,
        folder: str = "",
        markers: str = "otio",
        pad_before: float = 0.0,
        pad_after: float = 0.0,
    ) -> ExportOut:
        """Clips (a frame and an MP4 per moment), one supercut, or a markers file, under the exports folder."""
        if not moment_ids:
            raise InputError("give at least one moment id from a search")
        if len(moment_ids) > KEPT_MOMENTS:
            raise InputError(f"export at most {KEPT_MOMENTS} moments at once")
        hits: list[SearchResult] = [self.moments.get(key, "moment") for key in moment_ids]
        target = self.export_folder(folder)
        if kind == "clips":
            rows = export_hits(hits, target, pad_before=pad_before, pad_after=pad_after)
            files = [path for row in rows for path in row.values()]
        elif kind in ("supercut", "markers"):
            written = export_for_editing(
                hits,
                target,
                supercut=kind == "supercut",
                markers=markers if kind == "markers" else None,
                pad_before=pad_before,
                pad_after=pad_after,
            )
            files = list(written.values())
        else:
            raise InputError(f"kind must be clips, supercut or markers, got {kind!r}")
        return ExportOut(folder=str(target), files=[str(f) for f in files])

    def export_folder(self, folder: str) -> Path:
        """``folder`` (relative) under the exports folder, created; refused when it would leave it."""
        root = self.settings.exports
        root.mkdir(parents=True, exist_ok=True)
        real_root = Path(os.path.realpath(root))
        text = folder.strip()
        if "\x00" in text or Path(text).is_absolute() or ".." in Path(text).parts:
            raise InputError("folder must be a relative folder inside the server's exports folder")
        target = Path(os.path.realpath(real_root / text))
        if not inside_roots(target, (real_root,)):
            raise InputError("folder must be a relative folder inside the server's exports folder")
        target.mkdir(parents=True, exist_ok=True)
        return target


def thumbnail_bytes(result: SearchResult) -> bytes | None:
    if not result.thumbnail:
        return None
    try:
        return Path(result.thumbnail).read_bytes()
    except OSError:
        return None


def library_video(entry: dict[str, Any]) -> IndexedVideo:
    return IndexedVideo(
        id=str(entry.get("video_sha256") or ""),
        title=str(entry.get("title") or ""),
        path=str(entry.get("path") or ""),
        frames=int(entry.get("frames") or 0),
        origin=None if entry.get("origin") is None else str(entry["origin"]),
    )


def stoppable(progress: Progress | None, cancelled: threading.Event | None) -> Progress:
    """``progress`` that raises ``Cancelled`` at the next report once ``cancelled`` is set."""

    def report(stage: str, done: float, total: float | None) -> None:
        if cancelled is not None and cancelled.is_set():
            raise Cancelled("cancelled by the client")
        if progress is not None:
            progress(stage, done, total)

    return report
