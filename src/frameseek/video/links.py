"""The link guard (SSRF): links a client gives never reach loopback, private, link-local, multicast or
reserved addresses unless the server runs with ``--allow-private-links``. Its one home: the HTTP service
and the MCP server both use it through ``frameseek.api``.

Two checks, both on addresses, never on names:

* ``check_link`` before any work: the link must be http(s) and its host must resolve (``getaddrinfo``,
  every address it returns, IPv4 and IPv6) to public addresses only; literal IPs in any spelling
  (``2130706433``, ``0x7f.1``, ``[::ffff:127.0.0.1]``) resolve to what they mean and are checked the same.
* ``ConnectionGuard`` around the download (``sources.download(guard=...)``) and the whole search or index
  job: every ``socket.connect`` made **in that thread** is checked against the address actually being
  connected to (an audit hook, ``sys.addaudithook``). That covers each redirect hop, each fragment or
  segment of a stream, a link's captions, and a DNS answer that changes between the two checks (DNS
  rebinding): yt-dlp's own networking (urllib, requests, websockets handlers) connects from this thread.

Not covered: connections made outside Python's socket module (yt-dlp's optional ``curl_cffi`` handler,
not installed here; an external downloader, which the download's protocol filter never selects) or from
other threads; with an HTTP(S)_PROXY set, the address checked is the proxy's.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from frameseek.errors import SourceError
from frameseek.video.sources import check_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Refusal = Callable[[str], str | None]
"""``refusal(ip)``: why a connection to ``ip`` is refused (e.g. "a loopback address"), or None."""

HINT = "start the server with --allow-private-links to allow such links"

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class LinkRefused(SourceError):
    """A link (or a redirect, or a DNS answer) leads to an address the server does not connect to."""


class _RefusedConnection(ConnectionRefusedError):
    """Raised inside ``socket.connect`` by the audit hook (an OSError: callers try their next address)."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4, Teredo or NAT64 IPv6 address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _kind(ip: IPAddress) -> str | None:
    """What makes ``ip`` non-public, or None for a public unicast address."""
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a non-public address"
    return None


def address_refusal(address: str) -> str | None:
    """Why a connection to the IP ``address`` is refused, or None when it is a public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone ("fe80::1%eth0") is dropped
    except ValueError:
        return "not an IP address"
    reason = _kind(ip)
    if reason is None and isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None and _kind(inner) is not None:
            return f"an IPv6 address wrapping {inner}, {_kind(inner)}"
    return reason


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (TCP), or SourceError when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise SourceError(f"cannot resolve the host {host!r} of the link: {err}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise SourceError(f"cannot resolve the host {host!r} of the link")
    return addresses


def check_link(url: str, *, allow_private: bool = False, refusal: Refusal = address_refusal) -> str:
    """``url`` stripped if it is an http(s) link whose host resolves to acceptable addresses only.

    SourceError for a malformed or unresolvable link, LinkRefused for one that reaches a refused address.
    """
    url = check_url(url)
    if allow_private:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    for address in resolve_host(host, port):
        reason = refusal(address)
        if reason is not None:
            shown = f"{host} is" if host == address else f"{host} resolves to {address},"
            raise LinkRefused(f"link refused: {shown} {reason}; {HINT}")
    return url


# --- the connection guard -----------------------------------------------------------------------------

_local = threading.local()
_installed = False
_install_lock = threading.Lock()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """The process's audit hook: checks ``socket.connect`` in threads that run under a guard."""
    if event != "socket.connect":
        return
    guard: ConnectionGuard | None = getattr(_local, "guard", None)
    if guard is not None:
        guard.check(args[1])


def _install_hook() -> None:
    """Add the audit hook once per process (audit hooks cannot be removed; idle ones cost a compare)."""
    global _installed
    with _install_lock:
        if not _installed:
            sys.addaudithook(_audit)
            _installed = True


class ConnectionGuard:
    """Inside ``with ConnectionGuard():`` every socket connection this thread makes is checked first.

    A refused connection fails like a refused TCP connection (so a client tries its next address); when
    the block then ends with an error, that error becomes one ``LinkRefused`` naming the address.
    """

    def __init__(self, refusal: Refusal = address_refusal, hint: str = HINT) -> None:
        self.refusal = refusal
        self.hint = hint
        self.refused: list[str] = []
        self._previous: list[ConnectionGuard | None] = []

    def check(self, address: object) -> None:
        """Raise ``_RefusedConnection`` unless every address ``address`` stands for is acceptable."""
        if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[0], str):
            host, port = address[0], address[1]
            try:
                candidates = [host] if _is_ip(host) else resolve_host(host, int(port))
            except SourceError:
                candidates = [host]
            for ip in candidates:
                reason = self.refusal(ip)
                if reason is not None:
                    self._refuse(f"{ip}, {reason}")
            return
        self._refuse(f"{address!r}, not an internet address")  # a Unix socket path, a raw address

    def _refuse(self, what: str) -> None:
        self.refused.append(what)
        raise _RefusedConnection(f"connection refused by the server's link guard: {what}")

    def __enter__(self) -> ConnectionGuard:
        _install_hook()
        self._previous.append(getattr(_local, "guard", None))
        _local.guard = self
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _local.guard = self._previous.pop()
        if exc_type is not None and self.refused and not isinstance(exc, LinkRefused):
            raise LinkRefused(f"link refused: it leads to {self.refused[0]}; {self.hint}") from None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True
