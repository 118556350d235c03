"""``frameseek mcp``: the MCP server through the official SDK's real client — in process, over stdio (the
command a desktop assistant launches) and over streamable HTTP (a real server on 127.0.0.1 with a token) —
on the shared street video.

One FRAMESEEK_HOME for the module: the video is indexed once, by the first search, and reused after.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, ImageContent, TextContent

from frameseek.mcp_server.config import McpSettings
from frameseek.mcp_server.server import FrameseekMCP, build_server
from videos import make_video, require_bikes

QUERY = "a cyclist wearing a helmet"
CYCLIST = (3.0, 5.5)  # shared/data/README.md: 3.0-5.5 s a cyclist in a helmet on a bike beside a van
TOKEN = "mcp-test-token-0123456789abcdef"
TOOLS = {"search", "index", "transcript", "library_list", "library_remove", "export"}
MUSIC = (3.0, 6.2)  # make_music_video: silence, a plucked melody from 3.0 s to 6.2 s, silence


def make_music_video(path: Path) -> Path:
    """A 9.2 s video whose sound is silence, a melody synthesised by sox (``MUSIC``), then silence again
    (as tests/test_sounds.py builds it); shared with the service and app tests."""
    sox, ffmpeg = shutil.which("sox"), shutil.which("ffmpeg")
    assert sox and ffmpeg, "sox and ffmpeg are installed on every test machine"
    tmp = path.with_suffix(".parts")
    tmp.mkdir(parents=True, exist_ok=True)
    notes = [f"synth 0.4 pluck {n}" for n in ("C4", "E4", "G4", "C5", "A4", "F4", "D4", "G4")]
    wav = [str(tmp / name) for name in ("s1.wav", "melody.wav", "s2.wav", "all.wav")]
    subprocess.run([sox, "-n", "-r", "16000", "-c", "1", wav[1], *" : ".join(notes).split()], check=True)
    for silent in (wav[0], wav[2]):
        subprocess.run([sox, "-n", "-r", "16000", "-c", "1", silent, "trim", "0", "3"], check=True)
    subprocess.run([sox, *wav[:3], wav[3]], check=True)
    make_video(tmp / "picture.mp4", seconds=9.2, fps=5, size=(96, 64), cuts=(3.0, 6.2))
    subprocess.run(
        [ffmpeg, "-y", "-loglevel", "error", "-i", str(tmp / "picture.mp4"), "-i", wav[3],
         "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    shutil.rmtree(tmp)
    return path


# --- fixtures: one home, media folders, one in-process server -------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, _joined_mpnet: Path | None) -> Iterator[Path]:
    """FRAMESEEK_HOME for the module, lite's packaged mpnet linked in (as ``fs_home`` does)."""
    folder = tmp_path_factory.mktemp("mcp-home")
    if _joined_mpnet is not None:
        (folder / "models").mkdir()
        (folder / "models" / _joined_mpnet.name).symlink_to(_joined_mpnet, target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESEEK_HOME", str(folder))
        yield folder


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A media folder holding the street video, a text file named like a video, and a symlink that leads
    outside every media folder."""
    bikes = require_bikes()
    folder = tmp_path_factory.mktemp("mcp-media")
    shutil.copyfile(bikes, folder / "bikes.mp4")
    (folder / "notes.mp4").write_text("these are meeting notes, not a video\n", encoding="utf-8")
    outside = tmp_path_factory.mktemp("mcp-outside")
    shutil.copyfile(bikes, outside / "secret.mp4")
    (folder / "escape.mp4").symlink_to(outside / "secret.mp4")
    return folder


@pytest.fixture(scope="module")
def settings(home: Path, media: Path) -> McpSettings:
    return McpSettings(media=(media.resolve(),), exports=home / "exports", model="lite")


@pytest.fixture(scope="module")
def server(settings: McpSettings) -> FrameseekMCP:
    return build_server(settings)


def call(server: FrameseekMCP, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    """One tool call through a real in-process client."""

    async def run() -> CallToolResult:
        async with Client(server) as client:
            return await client.call_tool(tool, arguments)

    return anyio.run(run)


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result
    assert len(result.content) == 1 and isinstance(result.content[0], TextContent)
    return result.content[0].text


def check_cyclist_first(result: CallToolResult) -> dict[str, Any]:
    """The cyclist's moment first, with its confidence, timecodes and thumbnail (an image and a resource)."""
    assert not result.is_error, result.content
    data = result.structured_content
    assert data is not None and data["query"] == QUERY
    best = data["moments"][0]
    assert CYCLIST[0] <= best["time"] <= CYCLIST[1], best
    assert 0.0 <= best["confidence"] <= 1.0 and best["level"] in ("high", "medium", "low")
    assert best["timecode"].startswith("00:00:0") and best["start"] <= best["time"] <= best["end"]
    assert best["thumbnail"] == f"frameseek://thumbnails/{best['id']}"
    images = [block for block in result.content if isinstance(block, ImageContent)]
    assert images and images[0].mime_type == "image/jpeg"
    assert base64.b64decode(images[0].data)[:3] == b"\xff\xd8\xff"  # a JPEG
    assert isinstance(result.content[0], TextContent) and best["id"] in result.content[0].text
    return data


# --- in process -------------------------------------------------------------------------------------------


def test_the_client_lists_every_tool_with_typed_input_and_structured_output(server: FrameseekMCP) -> None:
    async def run() -> Any:
        async with Client(server) as client:
            return (await client.list_tools()).tools

    tools = {tool.name: tool for tool in anyio.run(run)}
    assert set(tools) >= TOOLS
    search = tools["search"]
    assert {"query", "source", "top_k", "then", "count", "speech", "screen", "image", "sounds"} <= set(
        search.input_schema["properties"]
    )
    for tool in ("search", "index", "transcript"):
        assert "speech_language" in tools[tool].input_schema["properties"], tool
    assert search.output_schema is not None and "moments" in search.output_schema["properties"]
    assert tools["index"].input_schema["required"] == ["sources"]


def test_a_cyclist_wearing_a_helmet_comes_first_with_its_thumbnail(server: FrameseekMCP, media: Path) -> None:
    result = call(server, "search", {"source": "bikes.mp4", "query": QUERY, "top_k": 3})
    data = check_cyclist_first(result)
    assert data["source"] == str(media.resolve() / "bikes.mp4")

    async def read() -> Any:
        async with Client(server) as client:
            return await client.read_resource(data["moments"][0]["thumbnail"])

    contents = anyio.run(read).contents
    assert contents[0].mime_type == "image/jpeg"
    assert base64.b64decode(contents[0].blob)[:3] == b"\xff\xd8\xff"


def test_a_sequence_query_is_answered_through_the_moment_query(server: FrameseekMCP) -> None:
    result = call(
        server,
        "search",
        {"source": "bikes.mp4", "query": "cars in a traffic jam", "then": ["a cyclist riding beside a van"]},
    )
    assert not result.is_error, result.content
    best = result.structured_content["moments"][0]  # type: ignore[index]
    assert best["start"] < 3.0 < best["end"], best  # from the jam into the cyclist's scene


def test_an_image_query_and_a_count_query_are_answered(server: FrameseekMCP) -> None:
    async def run() -> tuple[CallToolResult, CallToolResult]:
        async with Client(server) as client:
            found = await client.call_tool("search", {"source": "bikes.mp4", "query": QUERY, "top_k": 1})
            uri = found.structured_content["moments"][0]["thumbnail"]  # type: ignore[index]
            picture = (await client.read_resource(uri)).contents[0].blob  # type: ignore[union-attr]
            by_image = await client.call_tool(
                "search",
                {"source": "bikes.mp4", "image": f"data:image/jpeg;base64,{picture}", "thumbnails": 0},
            )
            counted = await client.call_tool("search", {"source": "bikes.mp4", "query": QUERY, "count": True})
            return by_image, counted

    by_image, counted = anyio.run(run)
    assert not by_image.is_error, by_image.content
    best = by_image.structured_content["moments"][0]  # type: ignore[index]
    assert CYCLIST[0] <= best["time"] <= CYCLIST[1], best  # the cyclist's own frame finds the cyclist
    assert [type(block) for block in by_image.content] == [TextContent]  # thumbnails=0: no images
    assert not counted.is_error and isinstance(counted.structured_content["count"], int)  # type: ignore[index]


HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    (
        "search",
        {"source": "/etc/passwd", "query": "a cyclist"},
        "must lie under the server's --media folders",
    ),
    ("search", {"source": "escape.mp4", "query": "a cyclist"}, "must lie under the server's --media folders"),
    ("search", {"source": "../../etc/passwd", "query": "x"}, "must lie under the server's --media folders"),
    ("search", {"source": "http://127.0.0.1:9/v.mp4", "query": "x"}, "link refused: 127.0.0.1 is a loopback"),
    ("search", {"source": "http://169.254.169.254/latest", "query": "x"}, "link-local address"),
    ("search", {"source": "http://10.0.0.1/v.mp4", "query": "x"}, "10.0.0.1 is a private address"),
    ("search", {"source": "bikes.mp4", "query": "x", "top_k": 10**9}, "top_k must be between 1 and 100"),
    ("search", {"source": "bikes.mp4", "query": "x", "top_k": "many"}, "invalid argument 'top_k'"),
    ("search", {"source": "notes.mp4", "query": "a cyclist"}, "is not a readable video"),
    ("search", {"source": "bikes.mp4", "query": "   "}, "empty"),
    (
        "search",
        {"source": "bikes.mp4", "image": "/etc/hostname"},
        "must lie under the server's --media folders",
    ),
    ("transcript", {"source": "/etc/passwd"}, "must lie under the server's --media folders"),
    ("index", {"sources": ["bikes.mp4", "/root"]}, "must lie under the server's --media folders"),
    ("index", {"sources": ["bikes.mp4"], "library": "../evil"}, "library"),
    (
        "search",
        {"source": "bikes.mp4", "query": "x", "speech_language": "klingon"},
        "unknown speech language",
    ),
    ("index", {"sources": ["bikes.mp4"], "speech_language": "xx"}, "unknown speech language 'xx'"),
    ("transcript", {"source": "bikes.mp4", "speech_language": "zz"}, "unknown speech language 'zz'"),
    ("export", {"moment_ids": ["0123456789abcdef"]}, "unknown moment id"),
    ("library_remove", {"video_id": "not-an-id"}, "give the video's id"),
    ("no_such_tool", {}, "no_such_tool"),
]


@pytest.mark.parametrize(
    ("tool", "arguments", "says"), HOSTILE, ids=[h[2][:30] + "|" + h[0] for h in HOSTILE]
)
def test_each_hostile_argument_is_one_clear_tool_error_and_the_server_keeps_serving(
    server: FrameseekMCP, tool: str, arguments: dict[str, Any], says: str
) -> None:
    async def run() -> tuple[CallToolResult, Any]:
        async with Client(server) as client:
            refused = await client.call_tool(tool, arguments)
            still = await client.call_tool("library_list", {})
            return refused, still

    refused, still = anyio.run(run)
    text = error_text(refused)
    assert says in text, text
    assert "\n" not in text and "Traceback" not in text
    assert not still.is_error  # the same connection still answers


def test_the_export_writes_clips_and_markers_inside_the_exports_folder_only(
    server: FrameseekMCP, settings: McpSettings
) -> None:
    found = call(server, "search", {"source": "bikes.mp4", "query": QUERY, "top_k": 2}).structured_content
    ids = [m["id"] for m in found["moments"]]  # type: ignore[index]
    clips = call(server, "export", {"moment_ids": ids[:1], "kind": "clips", "folder": "cyclist"})
    assert not clips.is_error, clips.content
    files = [Path(f) for f in clips.structured_content["files"]]  # type: ignore[index]
    assert {f.suffix for f in files} == {".jpg", ".mp4"}
    assert all(f.is_file() and f.is_relative_to(settings.exports / "cyclist") for f in files)
    supercut = call(server, "export", {"moment_ids": ids, "kind": "supercut", "folder": "cut"})
    assert [Path(f).name for f in supercut.structured_content["files"]] == ["supercut.mp4"]  # type: ignore[index]
    markers = call(server, "export", {"moment_ids": ids, "kind": "markers", "markers_format": "edl"})
    written = Path(markers.structured_content["files"][0])  # type: ignore[index]
    assert written.suffix == ".edl" and "bikes" in written.read_text(encoding="utf-8")
    for folder in ("../outside", "/tmp", "a/../../b"):
        text = error_text(call(server, "export", {"moment_ids": ids, "folder": folder}))
        assert "inside the server's exports folder" in text
    assert "markers" in error_text(
        call(server, "export", {"moment_ids": ids, "kind": "markers", "markers_format": "doc"})
    )


def test_index_reports_progress_and_the_library_lists_and_removes_the_video(server: FrameseekMCP) -> None:
    reports: list[tuple[float, float | None, str | None]] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total, message))

    async def run() -> tuple[CallToolResult, CallToolResult]:
        async with Client(server) as client:
            indexed = await client.call_tool(
                "index",
                {"sources": ["bikes.mp4"], "library": "street", "fps": 2.0},
                progress_callback=progress,
            )
            listed = await client.call_tool("library_list", {"library": "street"})
            return indexed, listed

    indexed, listed = anyio.run(run)
    assert not indexed.is_error, indexed.content
    video = indexed.structured_content["videos"][0]  # type: ignore[index]
    assert video["title"] == "bikes" and video["frames"] >= 19
    assert reports and any(message == "index" for _, _, message in reports)
    assert [v["id"] for v in listed.structured_content["videos"]] == [video["id"]]  # type: ignore[index]
    removed = call(server, "library_remove", {"video_id": video["id"][:12], "library": "street"})
    assert [v["id"] for v in removed.structured_content["videos"]] == [video["id"]]  # type: ignore[index]
    assert call(server, "library_list", {"library": "street"}).structured_content["videos"] == []  # type: ignore[index]


def test_a_cancelled_index_stops_and_the_server_keeps_serving(server: FrameseekMCP, home: Path) -> None:
    async def run() -> CallToolResult:
        async with Client(server) as client:
            with anyio.CancelScope() as scope:

                async def cancel_at_first_report(
                    progress: float, total: float | None, message: str | None
                ) -> None:
                    scope.cancel()  # the client cancels the call as soon as the work has started

                early = await client.call_tool(
                    "index",
                    {"sources": ["bikes.mp4"], "library": "cancelled", "fps": 25.0},  # every frame: seconds
                    progress_callback=cancel_at_first_report,
                )
                raise AssertionError(f"the index finished before it was cancelled: {early.content}")
            return await client.call_tool("library_list", {"library": "cancelled"})

    listed = anyio.run(run)
    assert not listed.is_error and listed.structured_content["videos"] == []  # type: ignore[index]
    # the work lock is released once the stopped job ends: a new index runs (and nothing half-written stays)
    again = call(server, "index", {"sources": ["bikes.mp4"], "library": "cancelled", "fps": 2.0})
    assert not again.is_error, again.content
    listed = call(server, "library_list", {"library": "cancelled"})
    frames = [v["frames"] for v in listed.structured_content["videos"]]  # type: ignore[index]
    assert len(frames) == 1 and frames[0] <= 21  # the 2 fps index alone: the 25 fps one stopped
    left = [p.name for p in home.rglob(".*") if p.name.endswith(".tmp") or p.name.startswith(".thumbs-")]
    assert not left, left


def test_a_transcript_is_a_tool_answer_and_a_resource_and_its_words_are_searched(
    server: FrameseekMCP, media: Path
) -> None:
    srt = "1\n00:00:03,000 --> 00:00:05,000\nA cyclist rides past the van.\n"
    (media / "bikes.en.srt").write_text(srt, encoding="utf-8")
    try:
        result = call(server, "transcript", {"source": "bikes.mp4"})
        said = call(
            server, "search", {"source": "bikes.mp4", "query": "someone rides past the van", "top_k": 1}
        )
    finally:
        (media / "bikes.en.srt").unlink()
    assert not result.is_error, result.content
    heard = said.structured_content["moments"][0]  # type: ignore[index]
    assert "speech" in heard["match"] and heard["matched_words"] == "A cyclist rides past the van."
    video = result.structured_content["videos"][0]  # type: ignore[index]
    span = video["tracks"][0]["spans"][0]
    assert span["text"] == "A cyclist rides past the van." and span["start_timecode"] == "00:00:03.000"

    async def read() -> Any:
        async with Client(server) as client:
            return await client.read_resource(video["resource"])

    contents = anyio.run(read).contents
    assert json.loads(contents[0].text)["tracks"][0]["spans"][0]["end"] == 5.0


def test_with_sounds_the_music_is_found_with_its_badge_and_without_them_it_is_not(
    server: FrameseekMCP, media: Path
) -> None:
    make_music_video(media / "music.mp4")
    try:
        heard = call(
            server, "search", {"source": "music.mp4", "query": "when the music starts", "sounds": True}
        )
        plain = call(server, "search", {"source": "music.mp4", "query": "when the music starts"})
    finally:
        (media / "music.mp4").unlink()
    assert not heard.is_error, heard.content
    best = heard.structured_content["moments"][0]  # type: ignore[index]
    assert best["match"].startswith("sounds") and best["matched_words"] == "[music]", best
    assert MUSIC[0] - 0.5 <= best["time"] <= MUSIC[0] + 1.0 and best["confidence"] >= 0.5
    assert not plain.is_error and all(
        "sounds" not in m["match"]
        for m in plain.structured_content["moments"]  # type: ignore[index]
    )


# --- over stdio: the command an assistant launches --------------------------------------------------------


def test_over_stdio_the_cyclist_comes_first_and_a_hostile_path_is_one_tool_error(
    home: Path, media: Path
) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "frameseek", "mcp", "--media", str(media), "--model", "lite"],
        env={**os.environ, "FRAMESEEK_HOME": str(home)},
    )

    async def run() -> tuple[set[str], CallToolResult, CallToolResult, CallToolResult]:
        async with Client(params, read_timeout_seconds=300) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            refused = await client.call_tool("search", {"source": "/etc/passwd", "query": QUERY})
            found = await client.call_tool("search", {"source": "bikes.mp4", "query": QUERY})
            text_file = await client.call_tool("search", {"source": "notes.mp4", "query": QUERY})
            return names, refused, found, text_file

    names, refused, found, text_file = anyio.run(run)
    assert names >= TOOLS
    assert "must lie under the server's --media folders" in error_text(refused)
    check_cyclist_first(found)
    assert "is not a readable video" in error_text(text_file)


# --- over streamable HTTP: a real server with a token -----------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def http_server(home: Path, media: Path) -> Iterator[str]:
    """``frameseek mcp --http 127.0.0.1:PORT`` with a token, in its own process; yields its /mcp URL."""
    port = free_port()
    log = home / f"mcp-http-{port}.log"
    env = {**os.environ, "FRAMESEEK_HOME": str(home), "FRAMESEEK_TOKEN": TOKEN}
    command = [sys.executable, "-m", "frameseek", "mcp", "--http", f"127.0.0.1:{port}", "--media", str(media)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--model", "lite"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "the MCP server did not start: " + log.read_text(errors="replace")
                    ) from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@asynccontextmanager
async def http_client(url: str, token: str | None) -> AsyncIterator[Client]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(300)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


def test_over_http_with_the_token_the_cyclist_comes_first_and_a_private_link_is_refused(
    http_server: str,
) -> None:
    async def run() -> tuple[CallToolResult, CallToolResult, CallToolResult]:
        async with http_client(http_server, TOKEN) as client:
            found = await client.call_tool("search", {"source": "bikes.mp4", "query": QUERY})
            refused = await client.call_tool("search", {"source": "http://localhost:1/v.mp4", "query": QUERY})
            huge = await client.call_tool("search", {"source": "bikes.mp4", "query": QUERY, "top_k": 10**12})
            return found, refused, huge

    found, refused, huge = anyio.run(run)
    check_cyclist_first(found)
    assert "link refused" in error_text(refused)
    assert "top_k must be between 1 and 100" in error_text(huge)


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789abcdef"], ids=["no token", "a wrong token"])
def test_over_http_a_client_without_the_token_is_refused(http_server: str, token: str | None) -> None:
    async def run() -> None:
        async with http_client(http_server, token) as client:
            await client.list_tools()

    with pytest.raises(Exception):  # noqa: B017 - the SDK's client fails to connect; the status is checked below
        anyio.run(run)
    headers = {"Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    answer = httpx.post(http_server, json=body, headers=headers, timeout=30)
    assert answer.status_code == 401
    assert "bearer token" in answer.json()["error"]


def test_mcp_refuses_to_listen_beyond_this_machine_without_a_token(home: Path, media: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FRAMESEEK_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "frameseek", "mcp", "--http", "0.0.0.0:0", "--media", str(media)],
        env={**env, "FRAMESEEK_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: refusing to listen on 0.0.0.0 without a token: set FRAMESEEK_TOKEN or --token-file "
        "(or listen on 127.0.0.1)"
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--media", "/no/such/folder"], "error: --media /no/such/folder: no such folder"),
        (["--http", "localhost"], "error: --http must be HOST:PORT (e.g. 127.0.0.1:8765), got 'localhost'"),
        (
            ["--http", "127.0.0.1:99999"],
            "error: --http must be HOST:PORT (e.g. 127.0.0.1:8765), got '127.0.0.1:99999'",
        ),
        (["--device", "tpu"], "error: --device"),
    ],
)
def test_mcp_refuses_bad_options_in_one_line_before_serving(
    args: list[str], says: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from frameseek.cli.main import main

    with pytest.raises(SystemExit) as stopped:
        main(["mcp", *args])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(says), err
