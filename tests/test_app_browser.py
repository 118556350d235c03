"""End to end: `frameseek app` on 127.0.0.1 driven by a real headless Chromium (Playwright).

Types a query against the sample video, waits for result frames with timestamps and saves a screenshot
to ``test-artifacts/app.png``; then searches a copy of it with a sidecar SRT (what matched, the highlighted
words, the transcript panel's jumps) and saves ``test-artifacts/app-transcript.png``. Every wait is bounded;
the server is always stopped.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from frameseek.app import logic
from frameseek.models.registry import packaged_weights
from videos import BIKES  # tests/ is not a package: pytest puts it on sys.path

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"
QUERY = "a cyclist wearing a helmet"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_TIMEOUT_S = 60.0
RESULTS_TIMEOUT_MS = 120_000
SRT = """1
00:00:02,000 --> 00:00:04,000
The budget is ready.

2
00:00:07,000 --> 00:00:09,000
Costs: $5 [draft] *not* final.
"""
PLAYER_AT = (
    "t => { const v = document.querySelector('video');"
    " return v !== null && v.currentTime >= t - 0.05 && v.currentTime < t + 2; }"
)
"""True once the player has seeked to ``t`` seconds (and plays on from there)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (frameseek → streamlit), politely then firmly."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def app_server(tmp_path: Path) -> Iterator[str]:
    """`python -m frameseek.cli app` on a free localhost port, with a private FRAMESEEK_HOME."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FRAMESEEK_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    env.pop(logic.LOCAL_FILES_ENV, None)
    log_path = tmp_path / "server.log"
    command = [sys.executable, "-m", "frameseek.cli", "app", "--server.port", str(port),
               "--server.headless", "true", "--server.fileWatcherType", "none"]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(url):
            if process.poll() is not None:
                pytest.fail(f"`frameseek app` exited early:\n{log_path.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"`frameseek app` did not answer on {url} within {SERVER_START_TIMEOUT_S:.0f} s")
            time.sleep(0.25)
        yield url
    finally:
        _stop(process)


def _search(page: Page, path: str, query: str) -> None:
    """Type a local path and a query into the page, then press Search."""
    path_box = page.get_by_label("A video file or folder on this machine")
    path_box.fill(path)
    path_box.press("Enter")
    query_box = page.get_by_label("What are you looking for?")
    query_box.fill(query)
    query_box.press("Enter")
    page.get_by_role("button", name="Search", exact=True).click()


def _wait_player_at(page: Page, seconds: int) -> None:
    page.wait_for_function(PLAYER_AT, arg=seconds, timeout=20_000)


def _screenshot(page: Page, path: Path) -> None:
    """Streamlit scrolls inside its main section: size the window to the page, then shoot it whole."""
    height = page.evaluate(
        "() => { const main = document.querySelector('[data-testid=\"stMain\"]');"
        " let bottom = 0; for (const e of main.querySelectorAll('[data-testid=\"stElementContainer\"]'))"
        " bottom = Math.max(bottom, e.getBoundingClientRect().bottom + main.scrollTop); return bottom + 48; }"
    )
    page.set_viewport_size({"width": 1440, "height": max(900, min(int(height), 4000))})
    page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollTo(0, 0)")
    page.wait_for_timeout(800)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 1000})


def test_query_in_a_real_browser(app_server: str, tmp_path: Path) -> None:
    if not CHROMIUM.is_file():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    if not BIKES.is_file():
        pytest.skip(f"sample video {BIKES} is not available")
    if not os.environ.get(logic.MODEL_ENV) and packaged_weights("lite") is None:
        pytest.skip("the lite model's trained heads are not installed in src/frameseek/weights/lite/")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    clip = tmp_path / "media" / "clip.mp4"  # the sample video with a sidecar SRT beside it
    clip.parent.mkdir()
    shutil.copyfile(BIKES, clip)
    clip.with_suffix(".srt").write_text(SRT, encoding="utf-8")

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=30_000
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(app_server, wait_until="domcontentloaded")

            page.get_by_text("Local file", exact=True).click()
            _search(page, str(BIKES), QUERY)

            stamps = page.get_by_text(re.compile(r"^#\d+ · 00:00:0\d$"))
            stamps.first.wait_for(state="visible", timeout=RESULTS_TIMEOUT_MS)
            page.get_by_text("Similarity over time").wait_for(state="visible")
            page.locator("[data-testid='stMetric']").first.wait_for(state="visible")
            page.wait_for_timeout(1500)  # let the chart and thumbnails paint before the screenshot

            found = stamps.all_inner_texts()
            assert found and all("00:00:0" in text for text in found), found
            assert not page.get_by_text("Traceback").count()

            # "▶ Play from" on the second result moves the player to that moment
            second = re.search(r"00:00:0(\d)", found[1])
            assert second is not None
            page.get_by_role("button", name=f"Play from 00:00:0{second.group(1)}").click()
            _wait_player_at(page, int(second.group(1)))
            _screenshot(page, ARTIFACTS / "app.png")

            # a video with subtitles: what matched, the matched word highlighted, the transcript's jumps
            _search(page, str(clip), "budget")
            marked = page.locator("[data-testid='stMarkdownContainer'] mark", has_text="budget")
            marked.first.wait_for(state="visible", timeout=RESULTS_TIMEOUT_MS)
            card = page.locator("[data-testid='stVerticalBlock']", has=marked.first).last
            assert card.get_by_text("#1 · 00:00:0", exact=False).count() == 1, card.inner_text()
            badge = card.locator(".stMarkdownBadge", has_text="Speech")
            badge.first.wait_for(state="visible")  # (with a tooltip Streamlit also keeps a hidden copy)
            assert (
                badge.first.inner_text() == "record_voice_over Speech"
            )  # the speech icon's ligature, the label
            assert card.locator("mark").inner_text() == "budget"
            transcript = page.locator(".st-key-transcript")
            box = transcript.bounding_box()
            assert box is not None and 0 < box["height"] <= logic.TRANSCRIPT_HEIGHT + 2  # bounded, scrolls
            lines = transcript.get_by_role("button")
            assert lines.count() == 2, lines.all_inner_texts()
            first, later = lines.all_inner_texts()
            assert first.endswith("00:00:02 The budget is ready."), first
            assert later.endswith("00:00:07 Costs: $5 [draft] *not* final."), later  # shown literally
            assert not page.get_by_text("Traceback").count()
            lines.nth(1).click()  # the player moves to the line, then back to the first one
            _wait_player_at(page, 7)
            page.locator(".st-key-transcript").get_by_role("button").nth(0).click()
            _wait_player_at(page, 2)
            _screenshot(page, ARTIFACTS / "app-transcript.png")
        finally:
            browser.close()
    assert (ARTIFACTS / "app.png").stat().st_size > 10_000
    assert (ARTIFACTS / "app-transcript.png").stat().st_size > 10_000
