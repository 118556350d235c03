"""What ``frameseek search --export`` writes: each hit's frame and clip, a supercut, markers.

The exports and the clip rule they cut by live in ``edits`` (the one place every door calls); this module
keeps their old import path.
"""

from __future__ import annotations

from frameseek.editing.clips import clip_encoder, export_clip
from frameseek.editing.edits import HitRow, export_for_editing, export_frame, export_hits, hit_stem

__all__ = [
    "HitRow",
    "clip_encoder",
    "export_clip",
    "export_for_editing",
    "export_frame",
    "export_hits",
    "hit_stem",
]
