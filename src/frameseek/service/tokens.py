"""Opaque ids for thumbnails and clips: ``<base64url payload>.<base64url HMAC-SHA256>``.

The server issues them in search results; only ids it signed are accepted (a forged or edited id, a
``../`` or any other character outside base64url and one dot, is refused before anything is decoded), so
a client never names a file. The key (32 random bytes, FRAMESEEK_HOME/service/id-key, mode 0600) is
made once, so ids stay valid across restarts; delete it to revoke every id issued.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from frameseek.api import atomic_path

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,2048}\.[A-Za-z0-9_-]{22}")
_MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_key(path: Path) -> bytes:
    """The signing key stored at ``path``, made (atomically, owner-only) when missing."""
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    with atomic_path(path) as tmp:
        os.chmod(tmp, 0o600)
        tmp.write_bytes(key)
    return key


class Signer:
    """Signs small JSON payloads of one ``kind`` into ids, and checks them back."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def _mac(self, kind: str, body: str) -> str:
        digest = hmac.new(self.key, f"{kind}:{body}".encode("ascii"), hashlib.sha256).digest()
        return _b64(digest[:_MAC_BYTES])

    def issue(self, kind: str, payload: dict[str, Any]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8"))
        return f"{body}.{self._mac(kind, body)}"

    def open(self, kind: str, token: str) -> dict[str, Any] | None:
        """The payload of a valid id of ``kind``; None for anything else (malformed, forged, edited)."""
        if not TOKEN_RE.fullmatch(token):
            return None
        body, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(kind, body)):
            return None
        try:
            payload = json.loads(_unb64(body))
        except (binascii.Error, ValueError):
            return None
        return payload if isinstance(payload, dict) else None


def well_formed(token: str) -> bool:
    """True if ``token`` has the shape of an id (so a bad one is a 400, an unknown one a 404)."""
    return TOKEN_RE.fullmatch(token) is not None
