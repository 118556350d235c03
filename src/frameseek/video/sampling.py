"""How frames are sampled from a video: one typed value that validates itself once, when it is made."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from frameseek.errors import InputError

SamplingMode = Literal["grid", "scene"]
"""``grid``: the first frame at or after each ``k / fps``; ``scene``: shot changes + one every max gap."""

MAX_FPS = 120.0
MIN_SIDE = 16
MAX_VIDEO_SECONDS = 1e8
"""The largest ``start`` / ``end`` (about 3 years of video): any real video is shorter, and a seek to a
larger time would not fit FFmpeg's 64-bit timestamps at fine time bases (1e15 s overflowed)."""


@dataclass(frozen=True)
class Sampling:
    """Which frames of a video are indexed; part of the visual track's identity.

    Construction validates every field (an impossible value is an InputError naming the CLI option), so
    code that receives a ``Sampling`` never checks it again.
    """

    fps: float = 1.0
    scene: bool = False
    scene_max_gap: float = 10.0
    start: float | None = None
    end: float | None = None
    max_frames: int | None = None
    max_side: int = 640
    # Decoder shortcuts invisible at the model's 224 px (``--exact-frames`` turns them off): skip frames
    # nothing depends on (most B-frames) when sampling at ≤ 1/4 of the frame rate, and skip H.264 / HEVC
    # deblocking (``decode.FAST_LOOP_FILTER_SKIP``; measured in benchmarks/decode_limit.py).
    fast_decode: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fps) and 0 < self.fps <= MAX_FPS):
            raise InputError(f"--fps must be in (0, {MAX_FPS:g}], got {self.fps}")
        for name, value in (("start", self.start), ("end", self.end)):
            if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_VIDEO_SECONDS):
                raise InputError(
                    f"--{name} must be a number of seconds in [0, {MAX_VIDEO_SECONDS:g}], got {value}"
                )
        if self.end is not None and not (self.end > (self.start or 0.0)):
            which = f"--start ({self.start})" if self.start is not None else "0"
            raise InputError(f"--end ({self.end}) must be after {which}")
        if self.max_frames is not None and self.max_frames <= 0:
            raise InputError(f"--max-frames must be positive, got {self.max_frames}")
        if not (math.isfinite(self.scene_max_gap) and self.scene_max_gap > 0):
            raise InputError(f"scene max gap must be positive, got {self.scene_max_gap}")
        if self.max_side < MIN_SIDE:
            raise InputError(f"max side must be at least {MIN_SIDE} pixels, got {self.max_side}")

    @property
    def mode(self) -> SamplingMode:
        return "scene" if self.scene else "grid"

    @property
    def nominal_step(self) -> float:
        """Seconds one sampled frame stands for at most: ``1 / fps`` on the grid, the max gap in scene mode."""
        return self.scene_max_gap if self.scene else 1.0 / self.fps

    def frame_cap(self, limit: int) -> int:
        """How many frames may be sampled: ``max_frames`` within the process-wide ``limit``."""
        return min(self.max_frames or limit, limit)

    def as_dict(self) -> dict[str, Any]:
        """Values normalised to their types (``fps=1`` and ``fps=1.0`` alike)."""
        values = asdict(self)
        for name in ("fps", "scene_max_gap", "start", "end"):
            if values[name] is not None:
                values[name] = float(values[name])
        for name in ("max_frames", "max_side"):
            if values[name] is not None:
                values[name] = int(values[name])
        values["scene"] = bool(values["scene"])
        values["fast_decode"] = bool(values["fast_decode"])
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Sampling:
        """Inverse of ``as_dict``; unknown keys are ignored, missing ones take their defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def key(self, version: int | None = None) -> str:
        """A short hash of the values: equal samplings give equal keys. ``version`` salts it (layouts)."""
        payload: dict[str, Any] = self.as_dict()
        if version is not None:
            payload["format"] = version
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

    def but(self, **changes: Any) -> Sampling:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)
