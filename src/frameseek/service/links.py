"""The link guard (SSRF) as the service uses it; its home is ``frameseek.video.links`` (through the API),
shared with the MCP server."""

from __future__ import annotations

from frameseek.api import ConnectionGuard, LinkRefused, address_refusal, check_link

__all__ = ["ConnectionGuard", "LinkRefused", "address_refusal", "check_link"]
