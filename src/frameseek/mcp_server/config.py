"""The MCP server's settings: one frozen value built by ``frameseek mcp`` (or a test) and read everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from frameseek.api import InputError, check_token, home

MAX_TOP_K = 100
"""The most moments one search returns (an assistant reads each one; more is a mistake or an attack)."""
MAX_THUMBNAILS = 10
"""The most thumbnails attached to one answer as images."""
MAX_SOURCES = 64
"""The most sources one index call takes."""
KEPT_MOMENTS = 5000
"""Moments (and transcripts) remembered for the export tool and the resources; the oldest go first."""


@dataclass(frozen=True)
class McpSettings:
    """Which local paths a client may name, where exports go, the model, and the HTTP guard."""

    media: tuple[Path, ...] = ()
    """Folders (resolved, symlinks followed) under which local videos and query images are accepted."""
    exports: Path = field(default_factory=lambda: home() / "mcp" / "exports")
    """The folder clips, supercuts and markers are written under (``--exports``)."""
    allow_private_links: bool = False
    model: str = "lite"
    device: str | None = None
    token: str | None = None
    """The bearer token the HTTP transport asks for (None: loopback only, Host checked)."""

    def __post_init__(self) -> None:
        if self.token is not None:
            check_token(self.token)
        if not self.exports.is_absolute():
            raise InputError(f"--exports must be an absolute folder, got {self.exports}")
