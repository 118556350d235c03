"""User-facing errors: each carries a one-line message that the CLI and the app show as is."""

from __future__ import annotations


def one_line(text: object, limit: int | None = None) -> str:
    """``text`` (a message or an exception) as one clean line: whitespace runs become one space, and a
    line longer than ``limit`` characters ends in "...". Every door's messages go through it."""
    words = str(text) or (type(text).__name__ if isinstance(text, BaseException) else "")
    line = " ".join(words.split())
    if limit is not None and len(line) > limit:
        return line[: max(0, limit - 3)] + "..."
    return line


class FrameseekError(Exception):
    """Base class for every error frameseek reports to a user (one line, no traceback)."""

    exit_code: int = 1

    def __str__(self) -> str:
        return one_line(super().__str__())  # always a single line


class InputError(FrameseekError):
    """The user's input (query, option, path) is not acceptable."""

    exit_code = 2


class SourceError(FrameseekError):
    """A video source (file, link, folder) cannot be found, fetched or accepted."""

    exit_code = 3


class DecodeError(FrameseekError):
    """A file was found but holds no decodable video frames."""

    exit_code = 4


class ModelError(FrameseekError):
    """A model name or checkpoint folder cannot be loaded."""

    exit_code = 5


class IndexError_(FrameseekError):
    """A stored index is missing, stale or does not match the model."""

    exit_code = 6
