"""Sources: local files, folders, uploads, and http(s) downloads through yt-dlp from a real local server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from frameseek import settings
from frameseek.errors import InputError, SourceError
from frameseek.video.decode import probe
from frameseek.video.sources import (
    VideoSource,
    _match_filter,
    check_url,
    file_sha256,
    from_upload,
    list_videos,
    resolve,
    url_key,
)
from videos import make_video  # tests/ is on sys.path (like conftest)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files plus a few special paths; counts requests per path."""

    hits: Counter[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.hits[self.path] += 1
        special = {
            "/to-file": self._redirect_to_file,
            "/to-video": self._redirect_to_video,
            "/stream.mp4": self._stream_without_length,
            "/broken.mp4": self._cut_short,
        }.get(self.path)
        if special is not None:
            special()
        else:
            super().do_GET()

    def do_HEAD(self) -> None:
        self.hits["HEAD " + self.path] += 1
        super().do_HEAD()

    def _redirect_to_file(self) -> None:
        self.send_response(302)
        self.send_header("Location", "file:///etc/passwd")
        self.end_headers()

    def _redirect_to_video(self) -> None:
        self.send_response(302)
        self.send_header("Location", "/video.mp4")
        self.end_headers()

    def _video_bytes(self) -> bytes:
        return Path(self.directory, "video.mp4").read_bytes()

    def _stream_without_length(self) -> None:
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(self._video_bytes())

    def _cut_short(self) -> None:
        data = self._video_bytes()
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 3])


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients aborting downloads on purpose (size limit) are expected


class LocalSite:
    """A real HTTP server on 127.0.0.1 serving a folder, with request counts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hits: Counter[str] = Counter()
        handler = type("Handler", (_Handler,), {"hits": self.hits})
        self.server = _Server(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{path.lstrip('/')}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def site_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    make_video(root / "video.mp4", 2.0, size=(160, 90))
    (root / "page.html").write_text("<html><head><title>hi</title></head><body><p>no video</p></body></html>")
    (root / "fake.mp4").write_text("this is text served as video/mp4\n" * 50)
    return root


@pytest.fixture(scope="module")
def site(site_root: Path) -> Iterator[LocalSite]:
    server = LocalSite(site_root)
    yield server
    server.close()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private FRAMESEEK_HOME and no proxy for 127.0.0.1."""
    monkeypatch.setenv("FRAMESEEK_HOME", str(tmp_path / "home"))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return tmp_path / "home"


def _download_leftovers(url: str) -> list[Path]:
    """Files of a URL's cache entry (final folder, sidecar) and any temporary folders."""
    root = settings.downloads_dir()
    if not root.exists():
        return []
    key = url_key(url)
    return [p for p in root.iterdir() if p.name.startswith((key, f".{key}"))]


# --- downloads ----------------------------------------------------------------------------------


def test_download_direct_link_then_cache(site: LocalSite, capsys: pytest.CaptureFixture[str]) -> None:
    url = site.url("video.mp4")
    seen: list[tuple[int, int | None]] = []
    [first] = resolve(url, progress=lambda done, total: seen.append((done, total)))
    size = (site.root / "video.mp4").stat().st_size
    assert first.path.is_file() and first.path.stat().st_size == size
    assert first.path.is_relative_to(settings.downloads_dir())
    assert first.sha256 == hashlib.sha256((site.root / "video.mp4").read_bytes()).hexdigest()
    assert first.origin == url and first.title == "video"
    assert first.download is not None and first.download.bytes == size and first.download.mb_per_s > 0
    assert seen and seen[-1] == (size, size)
    requests_after_first = sum(site.hits.values())

    [second] = resolve(url)
    assert second.path == first.path and second.sha256 == first.sha256
    assert second.download is None
    assert sum(site.hits.values()) == requests_after_first  # no re-download
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""  # yt-dlp stays quiet


def test_redirect_to_http_is_followed(site: LocalSite) -> None:
    [source] = resolve(site.url("to-video"))
    assert source.path.stat().st_size == (site.root / "video.mp4").stat().st_size


def test_redirect_to_a_local_file_is_refused(site: LocalSite) -> None:
    url = site.url("to-file")
    with pytest.raises(SourceError, match=r"could not download .*non-http\(s\) address"):
        resolve(url)
    assert _download_leftovers(url) == []


def test_html_page_is_not_a_video(site: LocalSite) -> None:
    with pytest.raises(SourceError, match="is not a video"):
        resolve(site.url("page.html"))


def test_text_served_as_video_is_rejected_and_not_cached(site: LocalSite) -> None:
    url = site.url("fake.mp4")
    with pytest.raises(SourceError, match="is not a video"):
        resolve(url)
    assert _download_leftovers(url) == []


def test_404_is_a_source_error(site: LocalSite) -> None:
    with pytest.raises(SourceError, match=r"could not download .*404"):
        resolve(site.url("missing.mp4"))


def test_size_limit_with_content_length(site: LocalSite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMESEEK_MAX_DOWNLOAD_MB", "0")
    url = site.url("video.mp4")
    with pytest.raises(SourceError, match="download limit"):
        resolve(url)
    assert _download_leftovers(url) == []


def test_size_limit_without_content_length(site: LocalSite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMESEEK_MAX_DOWNLOAD_MB", "0")
    url = site.url("stream.mp4")
    with pytest.raises(SourceError, match="download limit"):
        resolve(url)
    assert _download_leftovers(url) == []


def test_stream_without_length_downloads(site: LocalSite) -> None:
    [source] = resolve(site.url("stream.mp4"))
    assert source.path.read_bytes() == (site.root / "video.mp4").read_bytes()


def test_interrupted_download_leaves_nothing_at_the_final_name(site: LocalSite) -> None:
    url = site.url("broken.mp4")
    with pytest.raises(SourceError):
        resolve(url)
    assert _download_leftovers(url) == []
    assert not (settings.downloads_dir() / url_key(url)).exists()


def test_unreachable_link_fails_fast() -> None:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]  # closed again when the block ends: nothing listens
    started = time.perf_counter()
    with pytest.raises(SourceError, match="could not download"):
        resolve(f"http://127.0.0.1:{port}/video.mp4")
    assert time.perf_counter() - started < 5.0


def test_silent_server_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMESEEK_CONNECT_TIMEOUT", "1")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections (kernel backlog) but never answers
        started = time.perf_counter()
        with pytest.raises(SourceError, match="could not download"):
            resolve(f"http://127.0.0.1:{silent.getsockname()[1]}/video.mp4")
        assert time.perf_counter() - started < 1.0 + 4.0


@pytest.mark.parametrize(
    "link",
    ["file:///etc/passwd", "FILE:///etc/passwd", "ftp://127.0.0.1/video.mp4", "data:video/mp4;base64,AAAA",
     "javascript:alert(1)", "rtsp://127.0.0.1/stream", "http://", "https:///path-only.mp4",
     "http://127.0.0.1:99999/x.mp4", "http://127.0.0.1/a b.mp4"],
)  # fmt: skip
def test_other_schemes_and_bad_links_are_refused(link: str) -> None:
    with pytest.raises(SourceError):
        resolve(link)


def test_check_url_accepts_http_and_https() -> None:
    assert check_url("  https://example.com/v.mp4 ") == "https://example.com/v.mp4"
    assert check_url("HTTP://127.0.0.1:8000/v") == "HTTP://127.0.0.1:8000/v"


def test_min_short_side_must_be_positive(site: LocalSite) -> None:
    with pytest.raises(InputError):
        resolve(site.url("video.mp4"), min_short_side=0)


def test_match_filter_refuses_non_http_media() -> None:
    rejected: list[str] = []
    check = _match_filter(rejected)
    assert check({"url": "https://cdn.example/v.mp4", "protocol": "https"}) is None
    assert check({"url": "https://cdn.example/v.m3u8", "protocol": "m3u8_native"}) is None
    assert check({"url": "file:///etc/passwd", "protocol": "file"}) is not None
    merged = {
        "requested_formats": [
            {"url": "https://a/v", "protocol": "https"},
            {"url": "rtmp://a/x", "protocol": "rtmp"},
        ]
    }
    assert check(merged) is not None
    assert check({"url": "file:///x"}, incomplete=True) is None
    assert len(rejected) == 2


# --- local files and folders --------------------------------------------------------------------


def test_local_file(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"not decoded here")
    for given in (path, str(path)):
        [source] = resolve(given)
        assert source == VideoSource(
            path=path.resolve(),
            origin=str(given),
            title="clip",
            sha256=hashlib.sha256(b"not decoded here").hexdigest(),
        )


def test_missing_path_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or folder"):
        resolve(tmp_path / "nope.mp4")
    with pytest.raises(SourceError):
        resolve("   ")


def test_folder_listing(tmp_path: Path) -> None:
    for name in ["b.mp4", "a.MKV", "sub/c.webm", "sub/deeper/d.mov", "notes.txt", ".hidden.mp4", ".git/e.mp4",
                 "sub/._f.mp4", "g.ts", "h.3gp"]:  # fmt: skip
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(name.encode())
    expected = ["a.MKV", "b.mp4", "g.ts", "h.3gp", "sub/c.webm", "sub/deeper/d.mov"]
    assert [p.relative_to(tmp_path).as_posix() for p in list_videos(tmp_path)] == expected
    sources = resolve(tmp_path)
    assert [s.path for s in sources] == [(tmp_path / e).resolve() for e in expected]
    assert sources[0].sha256 == hashlib.sha256(b"a.MKV").hexdigest()
    assert {s.origin for s in sources} == {str(tmp_path)}
    assert [s.title for s in sources] == ["a", "b", "g", "h", "c", "d"]


def test_empty_folder_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no videos")
    with pytest.raises(SourceError, match="no videos found"):
        resolve(tmp_path)


def test_hash_cache_notices_changes(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    path.write_bytes(b"one")
    assert file_sha256(path) == hashlib.sha256(b"one").hexdigest()
    path.write_bytes(b"two!")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert file_sha256(path) == hashlib.sha256(b"two!").hexdigest()


def test_hash_streams_large_files(tmp_path: Path) -> None:
    path = tmp_path / "big.mp4"
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


# --- uploads ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "ext", "title"),
    [("../../evil.mp4", ".mp4", "evil"), ("..\\..\\evil.MKV", ".mkv", "evil"), ("/etc/passwd", "", "passwd"),
     ("movie.exe", "", "movie"), ("noext", "", "noext"), ("..", "", "upload"), ("a/b/../../../x.webm", ".webm", "x")],
)  # fmt: skip
def test_upload_names_never_escape(filename: str, ext: str, title: str) -> None:
    data = b"uploaded video bytes " + filename.encode()
    source = from_upload(data, filename)
    uploads = settings.uploads_dir().resolve()
    digest = hashlib.sha256(data).hexdigest()
    assert source.path == uploads / f"{digest}{ext}"
    assert source.path.read_bytes() == data
    assert source.sha256 == digest and source.title == title and source.origin == filename
    assert [p.name for p in uploads.iterdir()] == [source.path.name]


def test_upload_is_idempotent_and_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    first = from_upload(b"abc", "a.mp4")
    again = from_upload(b"abc", "other-name.mp4")
    assert again.path == first.path
    with pytest.raises(SourceError, match="empty"):
        from_upload(b"", "a.mp4")
    monkeypatch.setenv("FRAMESEEK_MAX_UPLOAD_MB", "0")
    with pytest.raises(SourceError, match="too large"):
        from_upload(b"abc", "a.mp4")


def _hls_ladder(root: Path, heights: tuple[int, ...]) -> str:
    """An HLS master playlist with one rendition per height (real H.264 segments made by ffmpeg)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg CLI is not installed")
    source = root / "source.mp4"
    make_video(source, 4.0, size=(320, 180))
    lines = ["#EXTM3U"]
    for h in heights:
        w = h * 16 // 9 // 2 * 2
        out = root / f"v{h}"
        out.mkdir()
        subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(source), "-vf", f"scale={w}:{h}", "-c:v",
                        "libx264", "-preset", "veryfast", "-g", "25", "-f", "hls", "-hls_time", "2",
                        "-hls_playlist_type", "vod", str(out / "index.m3u8")], check=True, timeout=120)  # fmt: skip
        lines += [f"#EXT-X-STREAM-INF:BANDWIDTH={h * 2000},RESOLUTION={w}x{h}", f"v{h}/index.m3u8"]
    (root / "master.m3u8").write_text("\n".join(lines) + "\n")
    return "master.m3u8"


def test_a_link_downloads_the_smallest_stream_that_serves_the_model(tmp_path: Path) -> None:
    root = tmp_path / "ladder"
    root.mkdir()
    name = _hls_ladder(root, (144, 270, 480, 720))
    ladder = LocalSite(root)
    try:
        [src] = resolve(ladder.url(name))  # default: short side >= 448 (2 x the models' 224 px)
        assert src.download is not None and (src.download.width, src.download.height) == (852, 480)
        assert probe(src.path).height == 480
        assert ladder.hits["/v720/index.m3u8"] == 0  # the larger stream was never fetched
        [small] = resolve(ladder.url(name) + "?again", min_short_side=1000)  # none that large: the largest
        assert small.download is not None and small.download.height == 720
    finally:
        ladder.close()
