"""Timestamps as exact data: seconds (float, from the stream's PTS) shown as HH:MM:SS.mmm."""

from __future__ import annotations

import math
import re

_TIMECODE = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def format_timecode(seconds: float) -> str:
    """Format seconds as ``HH:MM:SS.mmm`` (milliseconds rounded half-up; negative values rejected)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"timestamp must be a finite, non-negative number of seconds, got {seconds!r}")
    total_ms = math.floor(seconds * 1000 + 0.5)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def parse_timecode(text: str) -> float:
    """Parse ``HH:MM:SS(.mmm)``, ``MM:SS(.mmm)`` or plain seconds into seconds."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        match = _TIMECODE.match(text)
        if not match:
            raise ValueError(f"not a timecode: {text!r} (use seconds or HH:MM:SS.mmm)") from None
        hours = int(match.group(1) or 0)
        minutes = int(match.group(2))
        secs = float(match.group(3))
        if minutes >= 60 or secs >= 60:
            raise ValueError(f"not a timecode: {text!r} (minutes and seconds must be below 60)") from None
        value = hours * 3600 + minutes * 60 + secs
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"timestamp must be a finite, non-negative number of seconds, got {text!r}")
    return value
