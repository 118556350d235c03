"""The tools and resources on the official SDK's ``MCPServer``: each tool a thin typed call of ``Backend``.

Every failure a client can cause is a tool error of one sentence (``is_error``), never a crash of the
server: frameseek's own errors keep their message, argument-validation errors name the argument, anything
unexpected is named by its type (its details go to the server's log). Work runs on a worker thread; a
cancelled call stops at its next progress report (``Cancelled``), and long calls report progress.

Where new tools go: one ``register_*(server, backend)`` function each, called from ``build_server`` (the
``people`` tool, with the faces track, registers here as ``register_people``).

One module because each tool's typed signature is its published schema, and the tools share one error
rule and one worker-thread runner; splitting them would scatter that one contract.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ContentBlock, ImageContent, TextContent
from pydantic import Field, ValidationError

from frameseek.api import (
    FrameseekError,
    InputError,
    Progress,
    __version__,
    find_person,
    is_link,
    list_people,
    name_person,
    one_line,
)
from frameseek.mcp_server.backend import THUMBNAIL_URI, TRANSCRIPT_URI, Backend, ExportKind
from frameseek.mcp_server.config import MAX_THUMBNAILS, McpSettings
from frameseek.mcp_server.schemas import ExportOut, IndexOut, LibraryOut, SearchOut, TranscriptOut

log = logging.getLogger("frameseek.mcp")

T = TypeVar("T")
PROGRESS_EVERY_S = 0.25
"""Progress notifications are sent at most this often (a long index reports thousands of steps)."""

INSTRUCTIONS = (
    "frameseek finds the moments in videos that match a sentence (what is seen, said or written on screen). "
    "search answers with moments (confidence 0-1, timecodes, matched words) and their thumbnails; export "
    "cuts clips, a supercut or editor markers from moment ids. Local paths must lie under the server's "
    "media folders."
)


class FrameseekMCP(MCPServer[Any]):
    """``MCPServer`` whose tool errors are one sentence: an argument that fails validation is named."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(argument_error(name, cause)) from cause
            text = one_line(str(exc))
            prefix = f"Error executing tool {name}: "  # the SDK's wording: shortened to the tool's name
            raise ToolError(f"{name}: {text[len(prefix) :]}" if text.startswith(prefix) else text) from cause


def argument_error(tool: str, error: ValidationError) -> str:
    """One sentence for the first argument that failed validation (and how many more did)."""
    problems = error.errors()
    first = problems[0] if problems else {"loc": (), "msg": "invalid arguments"}
    where = ".".join(str(part) for part in first.get("loc", ())) or "arguments"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return one_line(f"{tool}: invalid argument {where!r}: {first.get('msg', 'invalid value')}{more}")


async def run_work(ctx: Context[Any, Any] | None, work: Callable[[Progress, threading.Event], T]) -> T:
    """``work(progress, cancelled)`` on a worker thread: its progress sent to the client (throttled), its
    frameseek errors as one-sentence tool errors, a cancelled call stopping it at its next report."""
    cancelled = threading.Event()
    sent: dict[str, float] = {}  # stage → when it was last reported

    def progress(stage: str, done: float, total: float | None) -> None:
        now = time.monotonic()
        if ctx is None or now - sent.get(stage, -PROGRESS_EVERY_S) < PROGRESS_EVERY_S:
            return
        sent[stage] = now
        with_total = None if total is None or total <= 0 else float(total)
        with contextlib.suppress(Exception):  # a client gone or without a progress token: the work goes on
            anyio.from_thread.run(functools.partial(ctx.report_progress, float(done), with_total, stage))

    try:
        return await anyio.to_thread.run_sync(lambda: work(progress, cancelled), abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        cancelled.set()  # the thread stops at its next progress report; its writes are atomic
        raise
    except FrameseekError as exc:
        raise ToolError(one_line(str(exc))) from None
    except Exception as exc:
        log.exception("unexpected error in a tool")
        raise ToolError(f"unexpected {type(exc).__name__}: {one_line(str(exc))}") from None


async def run_quick(work: Callable[[], T]) -> T:
    return await run_work(None, lambda _progress, _cancelled: work())


def search_content(answer: SearchOut, pictures: list[bytes], shown: int) -> list[ContentBlock]:
    """A sentence an assistant reads first, then the best moments' thumbnails as images."""
    if not answer.moments:
        lines = [f"No moments in {answer.source} for {answer.query!r}."]
    else:
        verdict = "found" if answer.found else "nothing matches well; the closest moments"
        lines = [f"{verdict} ({len(answer.moments)} moments, most confident first):"]
        for m in answer.moments:
            words = f' — "{m.matched_words}"' if m.matched_words else ""
            lines.append(
                f"- {m.title} at {m.timecode} ({m.start_timecode}-{m.end_timecode}), "
                f"confidence {m.confidence:.2f} ({m.level}, {m.match}){words} [id {m.id}]"
            )
    if answer.count is not None:
        lines.insert(0, f"{answer.count} matching moments counted.")
    lines += [f"note: {n}" for n in answer.notices]
    blocks: list[ContentBlock] = [TextContent(type="text", text="\n".join(lines))]
    for picture in pictures[:shown]:
        blocks.append(
            ImageContent(type="image", data=base64.b64encode(picture).decode(), mime_type="image/jpeg")
        )
    return blocks


def register_search(server: MCPServer[Any], backend: Backend) -> None:
    @server.tool(
        name="search",
        description=(
            "Find the moments in a video, a folder or a library that match a sentence and/or an image. "
            "Give `source` (a file or folder under the media folders, or an http(s) link) or leave it out "
            "to search the library. `then`/`within` ask for a sequence, `count` for how many times, "
            "`first`/`last` for the earliest/latest, `during` for two things at once, `min_duration` for "
            "a lasting moment. `speech`/`screen` also search what is said / written on screen, `sounds` what "
            "is heard (music, singing)."
        ),
    )
    async def search(
        ctx: Context[Any, Any],
        query: Annotated[str | None, Field(description="What to find, in a sentence.")] = None,
        source: Annotated[
            str | None, Field(description="A video file, folder or link; none: the library.")
        ] = None,
        library: Annotated[
            str, Field(description="The library to search when no source is given.")
        ] = "default",
        image: Annotated[
            str | None, Field(description="A query image: a file under the media folders or a data: URL.")
        ] = None,
        text_weight: Annotated[
            float, Field(description="Weight of the text when text and image are given.")
        ] = 0.5,
        top_k: Annotated[int, Field(description="How many moments to return (1-100).")] = 5,
        then: Annotated[list[str] | None, Field(description="Sentences that must follow, in order.")] = None,
        within: Annotated[
            float | None, Field(description="Seconds within which each next step follows.")
        ] = None,
        min_duration: Annotated[
            float | None, Field(description="Only moments lasting at least this.")
        ] = None,
        count: Annotated[bool, Field(description="Count the distinct matching moments.")] = False,
        first: Annotated[bool, Field(description="Only the earliest matching moment.")] = False,
        last: Annotated[bool, Field(description="Only the latest matching moment.")] = False,
        during: Annotated[str | None, Field(description="Something seen at the same time.")] = None,
        speech: Annotated[bool, Field(description="Also search recognised speech.")] = False,
        screen: Annotated[bool, Field(description="Also search text on screen (OCR).")] = False,
        subtitles: Annotated[bool, Field(description="Use subtitles when the video has them.")] = True,
        sounds: Annotated[
            bool, Field(description="Also search what is heard: music, singing, speech (badge: [music]).")
        ] = False,
        speech_language: Annotated[
            str | None,
            Field(description="The language spoken, as a Whisper code (en, de, ja ...); none: detected."),
        ] = None,
        min_confidence: Annotated[
            float, Field(description="Keep only moments at least this confident.")
        ] = 0.0,
        thumbnails: Annotated[int, Field(description="How many thumbnails to attach as images (0-10).")] = 3,
    ) -> Annotated[CallToolResult, SearchOut]:
        shown = max(0, min(int(thumbnails), MAX_THUMBNAILS))

        def work(progress: Progress, cancelled: threading.Event) -> tuple[SearchOut, list[bytes]]:
            return backend.search(
                query=query,
                source=source,
                library=library,
                image=image,
                text_weight=text_weight,
                top_k=top_k,
                then=then or (),
                within=within,
                min_duration=min_duration,
                count=count,
                first=first,
                last=last,
                during=during,
                speech=speech,
                screen=screen,
                subtitles=subtitles,
                sounds=sounds,
                speech_language=speech_language,
                min_confidence=min_confidence,
                progress=progress,
            )

        answer, pictures = await run_work(ctx, work)
        return CallToolResult(
            content=search_content(answer, pictures, shown), structured_content=answer.model_dump(mode="json")
        )


def register_index(server: MCPServer[Any], backend: Backend) -> None:
    @server.tool(
        name="index",
        description=(
            "Index videos (files, folders under the media folders, or links) into a library, so later "
            "searches of the library are instant. Reports progress; can be cancelled."
        ),
    )
    async def index(
        ctx: Context[Any, Any],
        sources: Annotated[list[str], Field(description="Files, folders or links to index.")],
        library: Annotated[str, Field(description="The library to add them to.")] = "default",
        fps: Annotated[float, Field(description="Frames looked at per second of video.")] = 1.0,
        speech: Annotated[bool, Field(description="Also recognise speech.")] = False,
        screen: Annotated[bool, Field(description="Also read text on screen (OCR).")] = False,
        subtitles: Annotated[bool, Field(description="Use subtitles when a video has them.")] = True,
        sounds: Annotated[
            bool, Field(description="Also detect what is heard: music, singing, speech (badge: [music]).")
        ] = False,
        speech_language: Annotated[
            str | None,
            Field(description="The language spoken, as a Whisper code (en, de, ja ...); none: detected."),
        ] = None,
    ) -> IndexOut:
        return await run_work(
            ctx,
            lambda progress, cancelled: backend.index(
                sources,
                library=library,
                fps=fps,
                speech=speech,
                screen=screen,
                subtitles=subtitles,
                sounds=sounds,
                speech_language=speech_language,
                progress=progress,
                cancelled=cancelled,
            ),
        )


def register_transcript(server: MCPServer[Any], backend: Backend) -> None:
    @server.tool(
        name="transcript",
        description=(
            "What is said (subtitles, or recognised speech with speech=true) and written on screen "
            "(screen=true) in a video, with timecodes; each transcript is also a resource."
        ),
    )
    async def transcript(
        ctx: Context[Any, Any],
        source: Annotated[str, Field(description="A video file, folder or link.")],
        speech: Annotated[bool, Field(description="Recognise speech when there are no subtitles.")] = False,
        screen: Annotated[bool, Field(description="Read text on screen (OCR).")] = False,
        subtitles: Annotated[bool, Field(description="Use subtitles when the video has them.")] = True,
        speech_language: Annotated[
            str | None,
            Field(description="The language spoken, as a Whisper code (en, de, ja ...); none: detected."),
        ] = None,
    ) -> TranscriptOut:
        return await run_work(
            ctx,
            lambda progress, cancelled: backend.transcript(
                source,
                speech=speech,
                screen=screen,
                subtitles=subtitles,
                speech_language=speech_language,
                progress=progress,
                cancelled=cancelled,
            ),
        )

    @server.resource(TRANSCRIPT_URI, name="transcript", mime_type="application/json")
    async def transcript_resource(transcript_id: str) -> str:
        return await run_quick(lambda: backend.transcript_json(transcript_id))


def register_library(server: MCPServer[Any], backend: Backend) -> None:
    @server.tool(name="library_list", description="The videos of a library (id, title, path, frames).")
    async def library_list(
        library: Annotated[str, Field(description="The library's name.")] = "default",
    ) -> LibraryOut:
        return await run_quick(lambda: backend.library(library))

    @server.tool(
        name="library_remove",
        description="Remove a video (its id from library_list) from a library; its index stays cached.",
    )
    async def library_remove(
        video_id: Annotated[str, Field(description="The video's id (8 or more hex characters).")],
        library: Annotated[str, Field(description="The library's name.")] = "default",
    ) -> LibraryOut:
        return await run_quick(lambda: backend.remove(video_id, library))


def register_export(server: MCPServer[Any], backend: Backend) -> None:
    @server.tool(
        name="export",
        description=(
            "Write moments (ids from search) under the server's exports folder: `clips` (a frame and an MP4 "
            "with sound per moment), `supercut` (every moment in one MP4) or `markers` (an editor's markers "
            "file; `markers_format` edl or otio, and any format the server's version adds)."
        ),
    )
    async def export(
        moment_ids: Annotated[list[str], Field(description="Moment ids from search answers.")],
        kind: Annotated[
            Literal["clips", "supercut", "markers"], Field(description="What to write.")
        ] = "clips",
        folder: Annotated[str, Field(description="A subfolder of the exports folder.")] = "",
        markers_format: Annotated[str, Field(description="For kind=markers: edl, otio, ...")] = "otio",
        pad_before: Annotated[float, Field(description="Seconds added before each moment.")] = 0.0,
        pad_after: Annotated[float, Field(description="Seconds added after each moment.")] = 0.0,
    ) -> ExportOut:
        how: ExportKind = kind
        return await run_quick(
            lambda: backend.export(
                moment_ids,
                how,
                folder=folder,
                markers=markers_format,
                pad_before=pad_before,
                pad_after=pad_after,
            )
        )


def register_thumbnails(server: MCPServer[Any], backend: Backend) -> None:
    @server.resource(THUMBNAIL_URI, name="thumbnail", mime_type="image/jpeg")
    async def thumbnail(moment_id: str) -> bytes:
        return await run_quick(lambda: backend.thumbnail(moment_id))


def register_people(server: MCPServer[Any], backend: Backend) -> None:
    @server.tool(
        name="people",
        description="Who is there (faces, opt-in): with 'source' and a base64 'face' photo or a 'person' (id "
        "or name), where they appear; with 'person' and 'name', names them; else the people of 'source' or all.",
    )
    async def people(
        ctx: Context[Any, Any],
        source: Annotated[
            str | None, Field(description="A video file or folder under the media folders.")
        ] = None,
        face: Annotated[str | None, Field(description="A face photo to look for, base64.")] = None,
        person: Annotated[str | None, Field(description="A known person's id (p3) or name.")] = None,
        name: Annotated[str | None, Field(description="With 'person': the name to give them.")] = None,
        top_k: Annotated[int, Field(description="How many appearances to return.", ge=1, le=100)] = 5,
    ) -> dict[str, Any]:
        if name is not None:
            if person is None or face is not None:
                raise ToolError("people: give 'person' (an id such as p3) with 'name'")
            return await run_quick(lambda: {"person": name_person(person, name)})

        def local() -> str | None:
            if source is None:
                return None
            checked = backend.check_source(source)
            if is_link(checked):
                raise InputError("faces are read only from videos under the media folders, not links")
            backend.local_videos(checked)
            return checked

        if face is not None or person is not None:
            if source is None:
                raise ToolError("people: give 'source' to search for a face or person")
            return await run_work(
                ctx,
                lambda progress, cancelled: find_person(
                    local() or "", face=face, person=person, top_k=top_k, progress=progress
                ).as_dict(),
            )
        return await run_work(ctx, lambda progress, cancelled: {"people": list_people(local(), progress)})


REGISTER: list[Callable[[MCPServer[Any], Backend], None]] = [
    register_search,
    register_index,
    register_transcript,
    register_library,
    register_export,
    register_thumbnails,
    register_people,
]
"""Each adds its tools (and resources); a new tool family appends its ``register_*`` here."""


def build_server(settings: McpSettings, backend: Backend | None = None) -> FrameseekMCP:
    """The MCP server with every tool and resource, on one ``Backend`` (made from ``settings`` if none)."""
    backend = backend or Backend(settings)
    server = FrameseekMCP(
        name="frameseek", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    for register in REGISTER:
        register(server, backend)
    return server
