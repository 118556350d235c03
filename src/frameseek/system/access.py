"""Who may reach what, for the doors that serve other programs (the HTTP service, the MCP server).

- **Tokens**: the bearer token comes from a file (its first line) or ``$FRAMESEEK_TOKEN``; it has at least
  ``MIN_TOKEN_CHARS`` characters and is compared in constant time.
- **Loopback**: without a token a server listens only on a loopback address, and answers only requests
  whose ``Host`` names this machine (a page cannot reach it through a DNS name it rebinds to 127.0.0.1).
- **Media roots**: a client names local videos only under the folders it was given; a path is compared
  after every symlink is followed, and so is each video a folder holds. Outside every root the answer
  never says whether the path exists.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import socket
from pathlib import Path

from frameseek.errors import InputError, SourceError

TOKEN_ENV = "FRAMESEEK_TOKEN"
MIN_TOKEN_CHARS = 16
"""A shorter bearer token is refused at start (``secrets.token_urlsafe(32)`` gives 43 characters)."""
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})


class OutsideRoots(InputError):
    """A local path a client named lies outside the folders it may use (or none were given)."""


def read_token(token_file: Path | None) -> str | None:
    """The bearer token: the first line of ``token_file``, else ``$FRAMESEEK_TOKEN``, else None."""
    if token_file is not None:
        try:
            text = token_file.expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"cannot read --token-file {token_file}: {err}") from None
        token = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not token:
            raise InputError(f"--token-file {token_file} is empty")
        return check_token(token)
    token = os.environ.get(TOKEN_ENV, "").strip()
    return check_token(token) if token else None


def check_token(token: str) -> str:
    """``token`` if it is long enough to guard a server."""
    if len(token) < MIN_TOKEN_CHARS:
        raise InputError(
            f"the bearer token must have at least {MIN_TOKEN_CHARS} characters; make one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return token


def token_matches(given: bytes | None, token: str) -> bool:
    """True if ``given`` is ``token`` (constant-time comparison)."""
    return given is not None and hmac.compare_digest(given, token.encode("utf-8"))


def bearer_of(header: bytes | None) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return None
    return token.strip()


def is_loopback_host(host: str) -> bool:
    """True if listening on ``host`` is reachable from this machine only (every address is loopback)."""
    name = host.strip().strip("[]")
    if not name:
        return False
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos)


def host_header_is_loopback(host_header: bytes | None) -> bool:
    """True if a ``Host`` header names this machine (localhost, 127.0.0.0/8, ::1), with any port."""
    if not host_header:
        return False
    host = host_header.decode("latin-1").strip().lower()
    if host.startswith("["):  # [::1]:8000
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def media_roots(folders: list[Path]) -> tuple[Path, ...]:
    """``--media`` folders resolved (symlinks followed); each must be an existing folder."""
    roots = []
    for folder in folders:
        resolved = Path(os.path.realpath(folder.expanduser()))
        if not resolved.is_dir():
            raise InputError(f"--media {folder}: no such folder")
        roots.append(resolved)
    return tuple(dict.fromkeys(roots))


def inside_roots(path: Path, roots: tuple[Path, ...]) -> bool:
    """True if the real ``path`` (symlinks followed) lies under one of ``roots``."""
    real = Path(os.path.realpath(path))
    return any(real == root or real.is_relative_to(root) for root in roots)


def path_in_roots(source: str, roots: tuple[Path, ...], *, what: str = "--media folders") -> Path:
    """The real path of a local ``source`` under one of ``roots`` (a relative one is looked up in each).

    OutsideRoots when it lies outside every root (whether it exists is not said), SourceError when it lies
    inside but does not exist.
    """
    if not roots:
        raise OutsideRoots(f"local paths are not accepted: the server was started without {what}")
    text = source.strip()
    refused = OutsideRoots(f"local paths must lie under the server's {what}")
    if not text or "\x00" in text:
        raise refused
    try:
        given = Path(text).expanduser()
        candidates = [given] if given.is_absolute() else [root / given for root in roots]
        for candidate in candidates:
            real = Path(os.path.realpath(candidate))
            if inside_roots(real, roots) and real.exists():
                return real
        inside = any(inside_roots(c, roots) for c in candidates)
    except (OSError, ValueError, RuntimeError) as err:  # a name the file system cannot hold, a symlink loop
        raise OutsideRoots(f"cannot use the path {text!r}: {err}") from None
    if inside:
        raise SourceError(f"no such file or folder under the {what}: {text}")
    raise refused
