"""The progress callback every long stage reports through."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, float, float | None], None]
"""``progress(stage, done, total)``: stage is "download" (bytes), "index" (video seconds), "speech" (audio
seconds) or "screen" (video seconds); total is None when unknown."""
