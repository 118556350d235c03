"""The fuzzing harness, MCP section: generated arguments thrown at every tool of ``frameseek mcp`` through the
SDK's real in-process client, on a 2 s clip of the street video in a media folder.

Every argument of every tool gets every JSON type (nested a little), numbers at the float limits, NaN and
±Infinity, huge integers, Unicode with control characters, lone surrogates and right-to-left text, paths
outside the media folders and private-address links. (``speech`` and ``screen`` stay off: Whisper and OCR
per example would make the bounded run minutes long; ``tests/test_mcp.py`` covers the tracks.)

The properties: every call comes back as a tool result — an answer whose structured content has the
tool's shape, or a tool error of one line with no traceback and no "unexpected" error — and the same
server still answers the next call; nothing half-written is left in FRAMESEEK_HOME.

The bounded run is derandomised. A longer, random run:
``FRAMESEEK_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_fuzz_mcp.py``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult, TextContent

from frameseek.mcp_server.config import McpSettings
from frameseek.mcp_server.server import FrameseekMCP, build_server
from videos import require_bikes, require_ffmpeg

LONG_RUN = int(os.environ.get("FRAMESEEK_FUZZ_EXAMPLES", "0") or 0)


def fuzz_settings(bounded: int) -> settings:
    return settings(
        max_examples=LONG_RUN or bounded,
        deadline=None,
        derandomize=not LONG_RUN,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


EDGE_TEXT = [
    "\u202eevil\u202c", "مرحبا بالعالم", "a\x00b", "\x1b[31mred", "\r\n", "\ud800", "a\udfffb", "\ufeff",
    "🚲🚲", "e\u0301" * 50, "%s%n", "../../etc/passwd", "/etc/passwd", "~root", "http://127.0.0.1:9/v.mp4",
    "http://169.254.169.254/latest/meta-data", "file:///etc/passwd", "clip.mp4", "notes.mp4", " ", "",
]  # fmt: skip
EDGE_NUMBERS = [float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 5e-324, -0.0, 0, -1, 10**15, 10**40]


def texts() -> st.SearchStrategy[str]:
    return st.one_of(st.text(st.characters(exclude_categories=()), max_size=30), st.sampled_from(EDGE_TEXT))


def json_values() -> st.SearchStrategy[Any]:
    """Every JSON type, nested a little, with the edge numbers and strings."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(EDGE_NUMBERS),
        texts(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
        ),
        max_leaves=5,
    )


BASE: dict[str, dict[str, Any]] = {
    "search": {"source": "clip.mp4", "query": "a cyclist wearing a helmet", "top_k": 2},
    "index": {"sources": ["clip.mp4"], "library": "fuzz"},
    "transcript": {"source": "clip.mp4"},
    "library_list": {"library": "fuzz"},
    "library_remove": {"video_id": "0123456789abcdef", "library": "fuzz"},
    "export": {"moment_ids": ["0123456789abcdef"], "kind": "markers", "markers_format": "edl"},
}
FIELDS: dict[str, list[str]] = {
    "search": [
        "query", "source", "library", "image", "text_weight", "top_k", "then", "within", "min_duration",
        "count", "first", "last", "during", "subtitles", "min_confidence", "thumbnails", "unknown_field",
    ],
    "index": ["sources", "library", "fps", "subtitles"],
    "transcript": ["source", "subtitles"],
    "library_list": ["library"],
    "library_remove": ["video_id", "library"],
    "export": ["moment_ids", "kind", "folder", "markers_format", "pad_before", "pad_after"],
}  # fmt: skip


def overrides(tool: str) -> st.SearchStrategy[dict[str, Any]]:
    """Up to three of the tool's arguments replaced by any JSON value (``...``: left out)."""
    return st.dictionaries(st.sampled_from(FIELDS[tool]), st.one_of(json_values(), st.just(...)), max_size=3)


# --- the real inputs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_home(tmp_path_factory: pytest.TempPathFactory, _joined_mpnet: Path | None) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("fuzz-mcp-home")
    if _joined_mpnet is not None:
        (home / "models").mkdir()
        (home / "models" / _joined_mpnet.name).symlink_to(_joined_mpnet, target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESEEK_HOME", str(home))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield home


@pytest.fixture(scope="module")
def server(fuzz_home: Path, tmp_path_factory: pytest.TempPathFactory) -> FrameseekMCP:
    """A media folder with a 2 s clip of the street video (3-5 s: the cyclist) and a text file named like a
    video; a server on it whose clip is indexed, and one moment of it remembered."""
    media = tmp_path_factory.mktemp("fuzz-mcp-media")
    subprocess.run(
        [require_ffmpeg(), "-v", "error", "-y", "-ss", "3", "-t", "2", "-i", str(require_bikes()), "-c:v", "libx264",
         "-preset", "ultrafast", "-an", str(media / "clip.mp4")],
        check=True, timeout=120,
    )  # fmt: skip
    (media / "notes.mp4").write_text("not a video\n", encoding="utf-8")
    built = build_server(McpSettings(media=(media.resolve(),), exports=fuzz_home / "exports", model="lite"))
    first = call(built, "search", BASE["search"])
    assert not first.is_error, first.content
    BASE["export"]["moment_ids"] = [first.structured_content["moments"][0]["id"]]  # type: ignore[index]
    return built


def call(server: FrameseekMCP, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    async def run() -> CallToolResult:
        async with Client(server) as client:
            return await client.call_tool(tool, arguments)

    return anyio.run(run)


def check(server: FrameseekMCP, tool: str, changes: dict[str, Any], home: Path) -> None:
    """The call is an answer or one clear tool error, and the server still answers."""
    arguments = {**BASE[tool], **changes}
    arguments = {key: value for key, value in arguments.items() if value is not ...}
    result = call(server, tool, arguments)
    if result.is_error:
        assert len(result.content) == 1 and isinstance(result.content[0], TextContent), result.content
        text = result.content[0].text
        assert text.strip() and "\n" not in text, text
        assert "Traceback" not in text and "unexpected" not in text.lower(), text
        event(f"{tool}: tool error")
    else:
        assert isinstance(result.structured_content, dict), result
        event(f"{tool}: answer")
    still = call(server, "library_list", {"library": "fuzz"})
    assert not still.is_error, still.content
    assert not [p for p in home.rglob("*") if p.name.endswith((".tmp", ".partial", ".part"))]


@fuzz_settings(60)
@given(changes=overrides("search"))
def test_search_arguments_give_an_answer_or_one_clear_tool_error(
    server: FrameseekMCP, fuzz_home: Path, changes: dict[str, Any]
) -> None:
    check(server, "search", changes, fuzz_home)


@fuzz_settings(30)
@given(tool=st.sampled_from(["library_list", "library_remove", "export"]), data=st.data())
def test_library_and_export_arguments_give_an_answer_or_one_clear_tool_error(
    server: FrameseekMCP, fuzz_home: Path, tool: str, data: st.DataObject
) -> None:
    check(server, tool, data.draw(overrides(tool)), fuzz_home)


@fuzz_settings(15)
@given(tool=st.sampled_from(["index", "transcript"]), data=st.data())
def test_index_and_transcript_arguments_give_an_answer_or_one_clear_tool_error(
    server: FrameseekMCP, fuzz_home: Path, tool: str, data: st.DataObject
) -> None:
    check(server, tool, data.draw(overrides(tool)), fuzz_home)
