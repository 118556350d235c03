"""Every failure as ``{"error": "one line"}`` with a 4xx status (5xx only for the server's own faults).

Never a traceback in a response: an unexpected exception is logged with its traceback and answered with
its type only.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frameseek.api import (
    DecodeError,
    FrameseekError,
    IndexError_,
    InputError,
    ModelError,
    SourceError,
    one_line,
)
from frameseek.service.links import LinkRefused

log = logging.getLogger("frameseek.service")


class Forbidden(FrameseekError):
    """A path outside the folders the server was given (HTTP 403)."""


class NotFound(FrameseekError):
    """Something the client named does not exist (HTTP 404)."""


class Conflict(FrameseekError):
    """The request does not fit the state of what it names (a job already finished): HTTP 409."""


class NotReady(FrameseekError):
    """The model is still loading (HTTP 503)."""


class Busy(FrameseekError):
    """Every slot for a bounded piece of work (decoding query images) stayed taken: HTTP 503."""


_STATUS: tuple[tuple[type[FrameseekError], int], ...] = (
    (NotReady, 503),
    (Busy, 503),
    (Conflict, 409),
    (LinkRefused, 403),
    (Forbidden, 403),
    (NotFound, 404),
    (InputError, 400),
    (SourceError, 400),
    (DecodeError, 422),
    (IndexError_, 409),
    (ModelError, 500),
)


def status_of(exc: FrameseekError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 400


ERROR_CHARS = 500
"""An error message is cut to this many characters (``frameseek.api.one_line``)."""


def error(status: int, message: object, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": one_line(message, ERROR_CHARS)}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    problems = list(exc.errors())
    for problem in problems:
        if problem.get("type") == "json_invalid":
            reason = (problem.get("ctx") or {}).get("error", "invalid JSON")
            where = problem.get("loc", ("body", "?"))[-1]
            return 400, f"malformed JSON: {reason} at position {where}"
    parts = []
    for problem in problems[:3]:
        loc = ".".join(str(p) for p in problem.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {problem.get('msg', 'invalid')}")
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return 422, "; ".join(parts) + more


class CatchAll:
    """The innermost middleware: an unexpected exception becomes the one-line 500 *here*.

    Starlette's own handler for ``Exception`` answers and then re-raises, and uvicorn closes a connection
    whose application raised: the client's next request on that keep-alive connection was reset. Caught
    here, the exception never reaches the server and the connection keeps serving.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log.error("unexpected error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
            if started:
                raise  # half an answer is out: only closing the connection can end it
            answer = error(500, f"internal error ({type(exc).__name__}); the server log has the details")
            await answer(scope, receive, send)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(FrameseekError)
    async def _frameseek(request: Request, exc: FrameseekError) -> JSONResponse:
        status = status_of(exc)
        return error(status, exc, {"Retry-After": "5"} if status == 503 else None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(exc)
        return error(status, message)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404 and exc.detail == "Not Found":
            return error(404, f"not found: {request.url.path}")
        return error(exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return error(500, f"internal error ({type(exc).__name__}); the server log has the details")
