"""The ``frameseek`` command line: the typer app assembled from the command modules, and ``main``, which
runs it for a user — quiet logging, every error as one ``error: ...`` line with its exit code, Ctrl-C as
``interrupted`` (exit 130).

Each command lives in its own module (``search``, ``index``, ``transcript``, ``models``, ``lab``,
``launcher``, ``library``) and calls only ``frameseek.api``; ``output`` prints and ``options`` holds the
shared options. ``frameseek serve`` is the HTTP service's own launcher; ``frameseek mcp`` (``mcp``) starts
the MCP server through its launcher.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Iterator
from types import ModuleType

import typer

from frameseek.cli.index import index
from frameseek.cli.lab import calibrate, eval_, train
from frameseek.cli.languages import fit_multilingual
from frameseek.cli.launcher import run_app
from frameseek.cli.library import library_app
from frameseek.cli.mcp import mcp
from frameseek.cli.models import models
from frameseek.cli.options import load_api
from frameseek.cli.output import err, error_line, note
from frameseek.cli.people import people
from frameseek.cli.search import search
from frameseek.cli.transcript import transcript
from frameseek.service.command import serve

app = typer.Typer(
    name="frameseek",
    help="Find the moments in a video that match a sentence.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(search)
app.command()(index)
app.command()(transcript)
app.command()(models)
app.command()(train)
app.command(name="eval")(eval_)
app.command()(calibrate)
app.command(name="fit-multilingual")(fit_multilingual)
app.command(name="app", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(run_app)
app.add_typer(library_app, name="library")
app.command(name="serve")(serve)
app.command(name="mcp")(mcp)
app.command(name="people")(people)


@app.command()
def version() -> None:
    """Print the version."""
    load_api()
    from frameseek import api

    typer.echo(api.__version__)


class _WarningNotes(logging.Handler):
    """Keeps frameseek's warnings (e.g. "stopped reading at a damaged part") to show them as notes."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(" ".join(record.getMessage().split()))


@contextlib.contextmanager
def _quiet_logging() -> Iterator[_WarningNotes]:
    """Logging for a user: no library chatter or Python warnings on stderr, frameseek's warnings kept.

    With ``FRAMESEEK_DEBUG`` set, everything from INFO up goes to stderr instead, as it happens. The
    previous configuration is restored on the way out (``main`` may run in-process, e.g. in tests).
    """
    notes = _WarningNotes()
    if os.environ.get("FRAMESEEK_DEBUG"):
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        yield notes
        return
    root, ours = logging.getLogger(), logging.getLogger("frameseek")
    silence = logging.NullHandler()  # with a handler on the root, Python's "last resort" prints nothing
    propagate = ours.propagate
    logging.captureWarnings(True)
    root.addHandler(silence)
    ours.addHandler(notes)
    ours.propagate = False
    try:
        yield notes
    finally:
        ours.propagate = propagate
        ours.removeHandler(notes)
        root.removeHandler(silence)
        logging.captureWarnings(False)


def _caused_by_interrupt(exc: BaseException) -> bool:
    """True if ``exc`` was raised while handling a KeyboardInterrupt (follows __cause__ / __context__)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        todo += [current.__cause__, current.__context__]
    return False


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback.

    Warnings logged along the way are shown as ``note:`` lines when the command succeeds; when it fails,
    the one error line says what went wrong.
    """
    with _quiet_logging() as notes:
        _run(argv, notes)


def _run(argv: list[str] | None, notes: _WarningNotes) -> None:
    """``main`` without the logging set-up."""
    try:
        # not standalone: click's usage errors come here as exceptions, to be told in one line
        code = app(args=argv, prog_name="frameseek", standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        err.print("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # click's own: an option or argument it cannot take (exit 2)
        exit_code = int(getattr(exc, "exit_code", 2))
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if not message.strip():  # no arguments at all: the help was shown
            sys.exit(exit_code)
        ctx = getattr(exc, "ctx", None)
        where = getattr(ctx, "command_path", None) or "frameseek"
        error_line("error", f"{message} (see `{where} --help`)")
        sys.exit(exit_code)
    except SystemExit as exc:  # how typer ends every run; it also turns Ctrl-C into a silent exit 130
        if _caused_by_interrupt(exc):
            err.print("interrupted")
            sys.exit(130)
        if exc.code in (0, None):
            for line in dict.fromkeys(notes.lines):
                note(line)
        raise
    except Exception as exc:  # sorted here: the API (its error classes) is imported only by a command
        api = _api()
        if api is not None and isinstance(exc, api.FrameseekError):
            error_line("error", str(exc))
            sys.exit(exc.exit_code)
        if os.environ.get("FRAMESEEK_DEBUG"):  # the last line of defence: the traceback only on request
            raise
        text = api.one_line(str(exc)) if api is not None else " ".join(str(exc).split())
        error_line(
            "error", f"unexpected {type(exc).__name__}: {text} (set FRAMESEEK_DEBUG=1 for the traceback)"
        )
        sys.exit(1)
    if code == 130:  # typer turns a Ctrl-C inside a command into Exit(130), returned when not standalone
        err.print("interrupted")
        sys.exit(130)
    if isinstance(code, int) and code != 0:  # typer.Exit(code) returns it when not standalone
        sys.exit(code)
    for line in dict.fromkeys(notes.lines):
        note(line)
    sys.exit(0)  # as a standalone typer run ends: the entry point always exits with its code


def _api() -> ModuleType | None:
    """``frameseek.api``, or None when it cannot be imported (the error being reported may be why)."""
    try:
        return importlib.import_module("frameseek.api")
    except Exception:
        return None


if __name__ == "__main__":
    main()
