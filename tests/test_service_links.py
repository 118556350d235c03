"""The link guard: address rules, the pre-check after DNS, every connection of a download (redirects
included), and a server with --allow-private-links (plus its rate limit)."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from frameseek.errors import SourceError
from frameseek.service.links import ConnectionGuard, LinkRefused, address_refusal, check_link
from frameseek.video.sources import download
from service_support import Server, file_server, start_server
from videos import make_video, require_bikes


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "233.252.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1",
        "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "64:ff9b::7f00:1", "2002:7f00:1::", "2001:db8::1", "not-an-ip",
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str) -> None:
    assert address_refusal(address) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "93.184.215.14"])
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(address) is None


@pytest.mark.parametrize(
    "link",
    [
        "http://127.0.0.1/a.mp4", "http://0x7f.1/a.mp4", "http://2130706433/a.mp4", "http://0177.0.0.1/a.mp4",
        "http://LocalHost/a.mp4", "https://[::1]:8443/a.mp4", "http://[::ffff:7f00:1]/a.mp4",
        "http://169.254.169.254/latest/meta-data/", "http://0/a.mp4", "http://user:pw@127.0.0.1/a.mp4",
    ],
)  # fmt: skip
def test_check_link_resolves_then_refuses(link: str) -> None:
    with pytest.raises(LinkRefused, match="link refused"):
        check_link(link)
    assert check_link(link, allow_private=True) == link


def test_check_link_other_failures() -> None:
    with pytest.raises(SourceError, match="only http"):
        check_link("ftp://example.com/a.mp4")
    with pytest.raises(SourceError, match="resolve"):
        check_link("http://no-such-host.invalid/a.mp4")


def test_guard_checks_every_connection_of_this_thread_only() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with ConnectionGuard() as guard, pytest.raises(ConnectionRefusedError, match="link guard"):
            socket.create_connection(("127.0.0.1", port), timeout=5)
        assert guard.refused and "loopback" in guard.refused[0]
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # outside the block: allowed
        with pytest.raises(LinkRefused, match=r"127\.0\.0\.1"), ConnectionGuard():
            socket.create_connection(("localhost", port), timeout=5)


def test_download_refuses_a_redirect_to_a_refused_address(fs_home: Path, tmp_path: Path) -> None:
    """A link on an allowed address that redirects to a refused one: the hop is refused, nothing is kept."""
    shutil.copy(require_bikes(), tmp_path / "bikes.mp4")

    def only_127_0_0_2_refused(ip: str) -> str | None:
        return "the test's private address" if ip == "127.0.0.2" else None

    with file_server(tmp_path, "127.0.0.2") as private, file_server(tmp_path) as public:
        hop = f"{public}/redirect?to={private}/bikes.mp4"
        with pytest.raises(LinkRefused, match=r"127\.0\.0\.2, the test's private address"):
            download(hop, guard=ConnectionGuard(only_127_0_0_2_refused))
        assert not list((fs_home / "downloads").glob("*.json"))
        direct = download(f"{public}/bikes.mp4", guard=ConnectionGuard(only_127_0_0_2_refused))
        assert direct.path.is_file() and direct.download is not None


# ---- a server that allows private links -----------------------------------------------------------------


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("home-open"),
        extra=["--allow-private-links", "--rate-limit", "2", "--rate-burst", "4"],
    )
    yield running
    running.stop()


@pytest.mark.slow
def test_with_allow_private_links_a_local_link_works(open_server: Server, tmp_path: Path) -> None:
    make_video(tmp_path / "clip.mp4", seconds=2, fps=10, size=(160, 90))
    with file_server(tmp_path) as base, open_server.client() as client:
        answer = client.post("/search", json={"source": f"{base}/clip.mp4", "query": "a red square"})
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert data["source"] == f"{base}/clip.mp4" and data["results"]
        assert data["metrics"]["download_bytes"] > 0
        local = client.post("/search", json={"source": str(tmp_path / "clip.mp4"), "query": "a dog"})
        assert local.status_code == 403  # no --media folders: no local paths at all


@pytest.mark.slow
def test_rate_limit_per_client(open_server: Server) -> None:
    transport = httpx.HTTPTransport(local_address="127.0.0.2")  # a client of its own (its own bucket)
    with open_server.client(transport=transport) as client:
        codes = [client.get("/library").status_code for _ in range(12)]
        assert codes[:4] == [200] * 4 and 429 in codes
        limited = next(r for r in (client.get("/library") for _ in range(3)) if r.status_code == 429)
        assert "too many requests" in limited.json()["error"] and int(limited.headers["retry-after"]) >= 1
        assert client.get("/health").status_code == 200  # never limited
    with open_server.client() as other:  # 127.0.0.1 has its own bucket
        assert other.get("/library").status_code == 200
