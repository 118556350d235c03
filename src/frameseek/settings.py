"""Where frameseek keeps its files and the limits it enforces (all overridable by environment)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from frameseek.errors import InputError


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """An integer from the environment; unset or blank gives ``default``, anything invalid is an error.

    A typo in a limit must not silently fall back to the default (or, negative, refuse every input).
    """
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise InputError(f"environment variable {name} must be a whole number >= {minimum}, got {raw!r}")
    return value


def _env_float(name: str, default: float) -> float:
    """A positive, finite number from the environment; unset or blank gives ``default``."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"environment variable {name} must be a number of seconds > 0, got {raw!r}")
    return value


def home() -> Path:
    """The cache root: ``$FRAMESEEK_HOME`` or the platform's user cache folder."""
    raw = os.environ.get("FRAMESEEK_HOME")
    path = Path(raw).expanduser() if raw else Path(platformdirs.user_cache_dir("frameseek"))
    return path


def downloads_dir() -> Path:
    return home() / "downloads"


def uploads_dir() -> Path:
    return home() / "uploads"


def indexes_dir() -> Path:
    return home() / "indexes"


def libraries_dir() -> Path:
    return home() / "libraries"


@dataclass(frozen=True)
class Limits:
    """Limits applied to untrusted input. Each reads an environment variable (shown in the README)."""

    max_download_bytes: int
    connect_timeout_s: float
    download_timeout_s: float
    max_upload_bytes: int
    max_query_chars: int
    max_frames: int
    max_pixels: int

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            max_download_bytes=env_int("FRAMESEEK_MAX_DOWNLOAD_MB", 2048, minimum=0) * 1024 * 1024,
            connect_timeout_s=_env_float("FRAMESEEK_CONNECT_TIMEOUT", 15.0),
            download_timeout_s=_env_float("FRAMESEEK_DOWNLOAD_TIMEOUT", 3600.0),
            max_upload_bytes=env_int("FRAMESEEK_MAX_UPLOAD_MB", 1024, minimum=0) * 1024 * 1024,
            max_query_chars=env_int("FRAMESEEK_MAX_QUERY_CHARS", 500),
            max_frames=env_int("FRAMESEEK_MAX_FRAMES", 200_000),
            max_pixels=env_int("FRAMESEEK_MAX_PIXELS", 8192 * 8192),
        )


def limits() -> Limits:
    return Limits.from_env()
