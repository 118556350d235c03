"""The HTTP API: ``create_app(settings)`` builds the FastAPI application (OpenAPI docs at ``/docs``).

Middlewares, outermost first: rate limit (429) → bearer token (401) → body size (413) → catch-all (500,
the connection kept) → the routes.
Errors are ``{"error": "one line"}`` (``service.errors``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Query, Security
from fastapi.security import HTTPBearer
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frameseek.api import __version__, name_person, person_thumbnail
from frameseek.service import errors
from frameseek.service.auth import BearerAuth
from frameseek.service.backend import Backend
from frameseek.service.config import ServiceSettings
from frameseek.service.limits import BodyLimit, RateLimit
from frameseek.service.people import People
from frameseek.service.schemas import (
    EditRequest,
    ErrorBody,
    Forgotten,
    Health,
    IndexRequest,
    Job,
    JobList,
    LibraryAnswer,
    NameRequest,
    PeopleAnswer,
    Removed,
    SearchAnswer,
    SearchRequest,
)

_bearer = HTTPBearer(auto_error=False, description="The server's token (FRAMESEEK_TOKEN or --token-file).")
_AUTH = [Security(_bearer)]  # documents the scheme in /docs; BearerAuth enforces it on every path
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}
_LIBRARY = Query("default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class _SecurityHeaders:
    """``X-Content-Type-Options: nosniff`` and no caching of API answers (thumbnails set their own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers.append((b"x-content-type-options", b"nosniff"))
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: ServiceSettings) -> FastAPI:
    """The application for ``settings``: one Backend (one model), its jobs resumed on start."""
    backend = Backend(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend.start()
        try:
            yield
        finally:
            backend.stop()

    app = FastAPI(
        title="frameseek",
        version=__version__,
        description="Find the moments in videos that match a sentence (or an image).",
        lifespan=lifespan,
        responses=_ERRORS,
    )
    app.state.backend = backend
    errors.install(app)
    app.add_middleware(errors.CatchAll)  # added first: the innermost, just around the routes
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(BearerAuth, token=settings.token)
    app.add_middleware(RateLimit, rate=settings.rate_per_s, burst=settings.rate_burst)
    app.add_middleware(_SecurityHeaders)

    @app.get("/health", response_model=Health, tags=["service"])
    def health() -> Health:
        """Liveness (no token needed): whether the model is loaded yet."""
        return Health(status="ok", model=settings.model, ready=backend.ready, version=__version__)

    @app.post("/search", response_model=SearchAnswer, dependencies=_AUTH, tags=["search"])
    def search(request: SearchRequest) -> JSONResponse:
        """Search a source (a path under --media, or an http(s) link) or a library; the answer is
        ``frameseek search --json``'s, each hit with ``thumbnail_id``/``clip_id`` and their URLs."""
        if request.face is not None or request.person is not None:
            return JSONResponse(people.find(request))
        return JSONResponse(backend.search(request))

    @app.post("/index", response_model=Job, status_code=202, dependencies=_AUTH, tags=["jobs"])
    def index(request: IndexRequest) -> Job:
        """Start an index job (sources into a library); poll ``GET /jobs/{id}``."""
        backend.check_index_request(request)
        return backend.jobs.submit(request)

    @app.get("/jobs", response_model=JobList, dependencies=_AUTH, tags=["jobs"])
    def jobs() -> JobList:
        """The latest jobs, newest first."""
        return JobList(jobs=backend.jobs.list())

    @app.get("/jobs/{job_id}", response_model=Job, dependencies=_AUTH, tags=["jobs"])
    def job(job_id: str) -> Job:
        """A job's state, progress, and its result or error."""
        return backend.jobs.get(job_id)

    @app.post("/jobs/{job_id}/cancel", response_model=Job, dependencies=_AUTH, tags=["jobs"])
    def cancel(job_id: str) -> Job:
        """Cancel a job (a running one stops at its next progress step)."""
        return backend.jobs.cancel(job_id)

    @app.delete("/jobs/{job_id}", response_model=Job, dependencies=_AUTH, tags=["jobs"])
    def cancel_by_delete(job_id: str) -> Job:
        """The same as ``POST /jobs/{id}/cancel``."""
        return backend.jobs.cancel(job_id)

    @app.get("/library", response_model=LibraryAnswer, dependencies=_AUTH, tags=["library"])
    def library(name: str = _LIBRARY) -> dict[str, Any]:
        """The videos of a library."""
        return {"library": name, "videos": backend.library(name)}

    @app.delete(
        "/library/videos/{video_sha256}", response_model=Removed, dependencies=_AUTH, tags=["library"]
    )
    def remove(video_sha256: str, name: str = _LIBRARY) -> Removed:
        """Remove a video (by its content's sha256) from a library; its index stays for reuse."""
        if not _SHA256.fullmatch(video_sha256):
            raise errors.NotFound("no such video: give the sha256 of its content (64 hex digits)")
        removed = backend.remove(name, video_sha256)
        if not removed:
            raise errors.NotFound(f"video {video_sha256} is not in library {name!r}")
        return Removed(library=name, video_sha256=video_sha256, removed=removed)

    @app.get("/thumbnails/{thumbnail_id}", dependencies=_AUTH, tags=["files"], response_class=FileResponse)
    def thumbnail(thumbnail_id: str) -> FileResponse:
        """A hit's thumbnail (JPEG) by the ``thumbnail_id`` of a search result."""
        path = backend.files.thumbnail(thumbnail_id)
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/clips/{clip_id}", dependencies=_AUTH, tags=["files"], response_class=FileResponse)
    def clip(clip_id: str) -> FileResponse:
        """A hit's segment as an MP4 (H.264 + AAC) by the ``clip_id`` of a search result."""
        path = backend.files.clip(clip_id)
        return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=3600"})

    people = People(backend, settings)

    @app.get("/people", response_model=PeopleAnswer, dependencies=_AUTH, tags=["people"])
    def people_list(source: str | None = Query(None, min_length=1, max_length=4096)) -> PeopleAnswer:
        """The people of a video under --media (its faces read now if not yet), else of the library."""
        return PeopleAnswer(people=people.listed(source))

    @app.post("/people/{person}/name", response_model=PeopleAnswer, dependencies=_AUTH, tags=["people"])
    def people_name(person: str, request: NameRequest) -> PeopleAnswer:
        """Name a person (by id such as p3, or by current name)."""
        return PeopleAnswer(people=[name_person(person, request.name)])

    @app.delete("/people", response_model=Forgotten, dependencies=_AUTH, tags=["people"])
    def people_forget(source: str | None = Query(None, min_length=1, max_length=4096)) -> Forgotten:
        """Delete face data: one video's (a path under --media), or all of it."""
        return Forgotten(forgotten=people.forget(source))

    @app.get("/people/{person}/thumbnail", dependencies=_AUTH, tags=["people"], response_class=FileResponse)
    def people_thumbnail(person: str) -> FileResponse:
        """A person's face thumbnail (JPEG)."""
        return FileResponse(person_thumbnail(person), media_type="image/jpeg")

    @app.post("/edits", dependencies=_AUTH, tags=["files"], response_class=Response)
    def edits(request: EditRequest) -> Response:
        """Chosen hits as one supercut MP4 (with sound) or as markers for editing software (EDL, OTIO,
        Final Cut Pro X FCPXML, Final Cut 7 XML for Premiere Pro and DaVinci Resolve)."""
        made = backend.edit(request)
        return Response(
            made.data,
            media_type=made.media_type,
            headers={"Content-Disposition": f'attachment; filename="{made.name}"'},
        )

    return app
