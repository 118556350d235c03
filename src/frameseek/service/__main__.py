"""``python -m frameseek.service [OPTIONS]``: the same as ``frameseek serve``."""

from __future__ import annotations

import sys

import typer

from frameseek.api import FrameseekError
from frameseek.service.command import serve


def main(argv: list[str] | None = None) -> None:
    """Run ``serve``; a refused start is one ``error:`` line on stderr and a non-zero exit."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(serve)
    try:
        app(args=argv, prog_name="frameseek serve")
    except FrameseekError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
