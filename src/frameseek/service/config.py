"""The service's settings: one frozen value built by ``frameseek serve`` (or a test) and read everywhere."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from frameseek.api import InputError, home

TOKEN_ENV = "FRAMESEEK_TOKEN"
MIN_TOKEN_CHARS = 16
"""A shorter bearer token is refused at start (``secrets.token_urlsafe(32)`` gives 43 characters)."""
MAX_ID_TTL_S = 365 * 24 * 3600.0
"""The longest an id may be made to last (a year)."""


@dataclass(frozen=True)
class ServiceSettings:
    """What the server listens on, what it accepts, and its limits."""

    host: str = "127.0.0.1"
    port: int = 8000
    media: tuple[Path, ...] = ()
    """Folders (resolved, symlinks followed) under which local video paths are accepted."""
    token: str | None = None
    allow_private_links: bool = False
    model: str = "lite"
    device: str | None = None  # --device; None: $FRAMESEEK_DEVICE, else auto
    max_body_bytes: int = 1024 * 1024
    """Largest request body (JSON, an image query in base64 included); beyond it: 413."""
    rate_per_s: float = 10.0
    """Requests per second per client address (token bucket refill); beyond the burst: 429."""
    rate_burst: int = 40
    max_image_decodes: int = 2
    """Query images decoded at once (``--max-image-decodes``); the next wait up to 30 s, then get a 503."""
    id_ttl_s: float = 24 * 3600.0
    """Seconds a thumbnail / clip id stays valid (``--id-ttl``, ``$FRAMESEEK_ID_TTL``)."""
    home: Path = field(default_factory=lambda: home() / "service")
    """Job states, the id-signing key, generated clips (FRAMESEEK_HOME/service)."""

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token) < MIN_TOKEN_CHARS:
            raise InputError(
                f"the bearer token must have at least {MIN_TOKEN_CHARS} characters; make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if self.max_body_bytes < 1024:
            raise InputError(f"the request size limit must be at least 1 KB, got {self.max_body_bytes} B")
        if not (self.rate_per_s > 0 and self.rate_burst >= 1):
            raise InputError("the rate limit needs a rate > 0 per second and a burst of at least 1")
        if not (math.isfinite(self.id_ttl_s) and 1 <= self.id_ttl_s <= MAX_ID_TTL_S):
            raise InputError(
                f"--id-ttl must be a number of seconds in [1, {MAX_ID_TTL_S:g}], got {self.id_ttl_s}"
            )
        if not 1 <= self.max_image_decodes <= 64:
            raise InputError(f"--max-image-decodes must be in 1..64, got {self.max_image_decodes}")
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port must be in 0..65535, got {self.port}")

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def clips_dir(self) -> Path:
        return self.home / "clips"


def read_token(token_file: Path | None) -> str | None:
    """The bearer token: the first line of ``--token-file``, else ``$FRAMESEEK_TOKEN``, else None."""
    if token_file is not None:
        try:
            text = token_file.expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"cannot read --token-file {token_file}: {err}") from None
        token = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not token:
            raise InputError(f"--token-file {token_file} is empty")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None
