"""Opaque ids for thumbnails and clips: ``<base64url payload>.<base64url HMAC-SHA256>``.

The server issues them in search results; only ids it signed are accepted (a forged or edited id, a
``../`` or any other character outside base64url and one dot, is refused before anything is decoded), so
a client never names a file. The key (32 random bytes, FRAMESEEK_HOME/service/id-key, mode 0600) is
made once, so ids stay valid across restarts until they expire: each id carries its expiry time (``e``,
signed with the rest; ``frameseek serve --id-ttl``, default ``DEFAULT_ID_TTL_S``) and an id without one or
past it is refused like a forged one. Delete the key to revoke every id issued at once. What an id names is
checked again when it is used (``service.files``: the video must still lie under the current ``--media``
folders), so an id never outlives the scope it was issued in.
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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from frameseek.api import atomic_path

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,2048}\.[A-Za-z0-9_-]{22}")
_MAC_BYTES = 16
DEFAULT_ID_TTL_S = 24 * 3600.0
"""How long a thumbnail or clip id stays valid by default (a day: a client keeps a result list that long)."""


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
    """Signs small JSON payloads of one ``kind`` into ids, and checks them back.

    ``ttl_s``: ids expire that many seconds after they are issued (their payload carries the time, ``e``);
    None: no expiry is written or required (the payload is signed as given).
    """

    def __init__(
        self, key: bytes, ttl_s: float | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.key = key
        self.ttl_s = ttl_s
        self.clock = clock

    def _mac(self, kind: str, body: str) -> str:
        digest = hmac.new(self.key, f"{kind}:{body}".encode("ascii"), hashlib.sha256).digest()
        return _b64(digest[:_MAC_BYTES])

    def issue(self, kind: str, payload: dict[str, Any]) -> str:
        if self.ttl_s is not None:
            payload = {**payload, "e": int(self.clock() + self.ttl_s) + 1}
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8"))
        return f"{body}.{self._mac(kind, body)}"

    def open(self, kind: str, token: str) -> dict[str, Any] | None:
        """The payload of a valid id of ``kind``; None for anything else (malformed, forged, edited,
        expired, or without an expiry when ids expire)."""
        if not TOKEN_RE.fullmatch(token):
            return None
        body, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(kind, body)):
            return None
        try:
            payload = json.loads(_unb64(body))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(payload, dict):
            return None
        if self.ttl_s is not None:
            expires = payload.pop("e", None)
            if isinstance(expires, bool) or not isinstance(expires, int) or expires < self.clock():
                return None
        return payload


def well_formed(token: str) -> bool:
    """True if ``token`` has the shape of an id (so a bad one is a 400, an unknown one a 404)."""
    return TOKEN_RE.fullmatch(token) is not None
