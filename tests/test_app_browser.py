"""End to end: `frameseek app` on 127.0.0.1 driven by a real headless Chromium (Playwright), one point of
issue 27 per test: results first, the player in sight after a card click, Enter searches, cancel, a rerun
that keeps a running search, the whole library, the clickable timeline, the Link box refusing a path,
friendly errors, the phone layout, and subtitles in the transcript.

One server and one browser page for the module (a private FRAMESEEK_HOME; the first search indexes the
sample video). Screenshots at 1440×900 and 390×844 go to a tmp folder (``SHOTS``, printed), and to
``test-artifacts/`` for a look after the run. Every wait is bounded; the server is always stopped.
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
from test_mcp import MUSIC, make_music_video  # the melody video the MCP and service tests use
from videos import BIKES, MSRVTT_DIR, require_ffmpeg  # tests/ is not a package: pytest puts it on sys.path

if TYPE_CHECKING:
    from playwright.sync_api import Browser, FilePayload, Page, ViewportSize

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"
DESKTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
QUERY = "a cyclist in a helmet riding beside a van"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
SERVER_START_TIMEOUT_S = 60.0
RESULTS_TIMEOUT_MS = 180_000
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


PEOPLE_SCENES = (("video236.mp4", 0.0, 6.0), ("video2392.mp4", 6.0, 11.0))
"""A montage of two real MSR-VTT clips (as tests/test_people.py builds it): a teacher 0-6 s, then
another woman 6-11 s."""


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


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample video, a copy with a sidecar SRT, and a folder of three MSR-VTT clips (not indexed)."""
    if not BIKES.is_file():
        pytest.skip(f"sample video {BIKES} is not available")
    root = tmp_path_factory.mktemp("app-media")
    (root / "subs").mkdir()
    shutil.copyfile(BIKES, root / "subs" / "clip.mp4")
    (root / "subs" / "clip.srt").write_text(SRT, encoding="utf-8")
    (root / "folder").mkdir()
    for clip in sorted(MSRVTT_DIR.glob("*.mp4"))[:3]:
        shutil.copyfile(clip, root / "folder" / clip.name)
    (root / "slow").mkdir()
    for clip in sorted(MSRVTT_DIR.glob("*.mp4"))[3:9]:
        shutil.copyfile(clip, root / "slow" / clip.name)
    return root


@pytest.fixture(scope="module")
def heard_and_seen(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A melody video (sox, ``MUSIC``) and a montage of two people from real footage (``PEOPLE_SCENES``)."""
    ffmpeg = require_ffmpeg()
    missing = sorted({c for c, _, _ in PEOPLE_SCENES if not (MSRVTT_DIR / c).is_file()})
    if missing:
        pytest.skip(f"montage clips not available: {', '.join(missing)}")
    root = tmp_path_factory.mktemp("app-heard-seen")
    music = make_music_video(root / "music.mp4")
    inputs: list[str] = []
    chains = []
    for i, (clip, start, end) in enumerate(PEOPLE_SCENES):
        inputs += ["-i", str(MSRVTT_DIR / clip)]
        chains.append(
            f"[{i}:v]trim=start={start}:end={end},setpts=PTS-STARTPTS,scale=640:360:force_original_aspect_ratio="
            f"decrease,pad=640:360:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=25[v{i}]"
        )
    graph = ";".join(chains) + ";[v0][v1]concat=n=2:v=1:a=0[out]"
    people = root / "people.mp4"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]", "-c:v", "libx264",
         "-preset", "veryfast", "-pix_fmt", "yuv420p", str(people)],
        check=True,
    )  # fmt: skip
    return music, people


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory, _joined_mpnet: Path | None) -> Iterator[str]:
    """`python -m frameseek.cli app` on a free localhost port, with a private FRAMESEEK_HOME."""
    if not CHROMIUM.is_file():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    tmp = tmp_path_factory.mktemp("app-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    home = tmp / "home"
    if _joined_mpnet is not None:  # the 419 MB packaged mpnet, joined once per session (conftest.py)
        (home / "models").mkdir(parents=True)
        (home / "models" / _joined_mpnet.name).symlink_to(_joined_mpnet, target_is_directory=True)
    env = {**os.environ, "FRAMESEEK_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.setdefault(logic.MODEL_ENV, "lite")
    env.pop(logic.LOCAL_FILES_ENV, None)
    log_path = tmp / "server.log"
    command = [sys.executable, "-m", "frameseek.cli", "app", "--server.port", str(port),
               "--server.headless", "true", "--server.fileWatcherType", "none"]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp, start_new_session=True
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
        assert "Traceback" not in log_path.read_text(errors="replace"), log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("app-screenshots")
    print(f"screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                                      timeout=30_000)  # fmt: skip
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, app_server: str) -> Iterator[Page]:
    """A fresh page (its own Streamlit session) at 1440×900."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(app_server, wait_until="domcontentloaded")
    page.get_by_label("What are you looking for?").wait_for()
    try:
        yield page
    finally:
        context.close()


IDLE = "() => document.querySelectorAll('[data-stale=\"true\"]').length === 0"
"""True when no element of an earlier run is still on the page: until a run has drawn its part, Streamlit
keeps the previous run's element there (marked stale), beside the new ones."""


def _idle(page: Page) -> None:
    page.wait_for_function(IDLE, timeout=RESULTS_TIMEOUT_MS)
    page.wait_for_timeout(300)


def _source(page: Page, kind: str, value: str | None = None) -> None:
    _idle(page)
    page.get_by_text(kind, exact=True).first.click()
    _idle(page)
    if kind == "Local file" and value is not None:
        page.get_by_label("A video file or folder on this machine").fill(value)
    elif kind == "Link" and value is not None:
        page.get_by_role("textbox", name="Link to a video").fill(value)


def _ask(page: Page, query: str) -> None:
    """Type the query and press Enter (no click: Enter searches)."""
    _idle(page)
    box = page.get_by_label("What are you looking for?")
    box.fill(query)
    box.press("Enter")


def _verdict(page: Page, query: str) -> str:
    """The verdict line of the answer to ``query`` (an earlier answer's may still be on the page)."""
    verdict = page.locator(".st-key-verdict", has_text=f"“{query}”")
    verdict.wait_for(state="visible", timeout=RESULTS_TIMEOUT_MS)
    _idle(page)  # the answer is drawn whole (the cards, then the dock)
    return verdict.inner_text()


def _main_scroll(page: Page, y: int) -> None:
    page.evaluate(f"document.querySelector('[data-testid=\"stMain\"]').scrollTo(0, {y})")
    page.wait_for_timeout(400)


def _shot(page: Page, folder: Path, name: str) -> None:
    page.wait_for_timeout(800)  # let thumbnails and the chart paint
    page.screenshot(path=str(folder / name))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(folder / name, ARTIFACTS / name)


def _search_bikes(page: Page, query: str = QUERY) -> str:
    _source(page, "Local file", str(BIKES))
    _ask(page, query)
    return _verdict(page, query)


def test_enter_searches_and_the_answer_comes_first(page: Page, shots: Path) -> None:
    said = _search_bikes(page)
    assert "Found “a cyclist in a helmet riding beside a van”" in said, said
    assert not page.get_by_text("Traceback").count()
    # the verdict and the first row of large thumbnails are in the first screen; metrics are folded away
    verdict = page.locator(".st-key-verdict").bounding_box()
    first = page.locator(".st-key-card-1 img, .st-key-playing-card img").first.bounding_box()
    assert verdict is not None and first is not None
    assert verdict["y"] < first["y"] < DESKTOP["height"] - 100, (verdict, first)
    assert first["width"] >= 240, first  # large thumbnails (were 150-190 px)
    assert not page.locator("[data-testid='stMetric']").first.is_visible()
    levels = page.locator(".stMarkdownBadge").all_inner_texts()
    assert any(re.match(r"(High|Medium|Low) · \d+%", text) for text in levels), levels
    _shot(page, shots, "app-desktop.png")


def test_the_player_stays_in_view_and_follows_a_card(page: Page) -> None:
    _search_bikes(page)
    cards = page.get_by_role("button", name=re.compile(r"^▶ Play from 00:00:0\d$"))
    last = cards.last
    label = last.inner_text()
    seconds = int(label[-1])
    _main_scroll(page, 500)  # scrolled down through the results...
    last.click()
    page.wait_for_function(PLAYER_AT, arg=seconds, timeout=20_000)
    video = page.locator("video").bounding_box()
    assert video is not None and video["y"] >= 0 and video["y"] + video["height"] <= DESKTOP["height"], video
    playing = page.locator(".st-key-playing-card")
    assert playing.count() == 1 and "▶ Playing" in playing.inner_text()


def test_the_timeline_is_a_control_that_seeks(page: Page) -> None:
    _search_bikes(page)
    chart = page.locator(".st-key-timeline-player")
    chart.wait_for(state="visible")
    canvas = chart.locator("canvas, svg").first
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.82, box["y"] + box["height"] * 0.5)  # ≈ 8 s of 10
    page.wait_for_function(
        "() => { const v = document.querySelector('video'); return v !== null && v.currentTime >= 6.5; }",
        timeout=20_000,
    )


def test_a_folder_and_the_whole_library_show_one_row_per_video(page: Page, media: Path) -> None:
    _search_bikes(page)
    _source(page, "Local file", str(media / "folder"))
    _ask(page, "a person talking")
    _verdict(page, "a person talking")
    assert page.locator("[class*='st-key-video-row-']").count() >= 2
    page.get_by_text("Library", exact=True).first.click()
    chosen = page.get_by_role("combobox", name="Library video").input_value()
    assert re.fullmatch(r"All [4-9] videos in the library", chosen), chosen  # the default: every video
    _ask(page, "a person riding a bike")
    said = _verdict(page, "a person riding a bike")
    rows = page.locator("[class*='st-key-video-row-']")
    assert rows.count() >= 2, said
    titles = rows.locator("h5").all_inner_texts()
    assert len(set(titles)) == len(titles) >= 2, titles  # one row per video, each named


def test_cancel_stops_a_running_search(page: Page, media: Path) -> None:
    _source(page, "Local file", str(media / "slow"))
    page.get_by_role("button", name="Speech").click()  # transcribing six clips takes a while
    _ask(page, "someone says hello")
    page.get_by_role("button", name="Cancel").wait_for(state="visible", timeout=20_000)
    progress = page.locator(".st-key-progress")
    assert "s so far" in progress.inner_text()
    page.get_by_role("button", name="Cancel").click()
    page.get_by_text(re.compile(r"^Cancelled the search for “someone says hello”")).wait_for(timeout=20_000)
    assert page.get_by_role("button", name="Cancel").count() == 0
    assert page.locator(".st-key-verdict").count() == 0


def test_a_rerun_never_loses_a_running_search(page: Page, media: Path) -> None:
    _source(page, "Local file", str(media / "slow"))
    _ask(page, "a man in a suit")
    page.get_by_role("button", name="Cancel").wait_for(state="visible", timeout=20_000)
    page.get_by_text("Link", exact=True).first.click()  # touching another widget reruns the page...
    page.get_by_role("button", name="Cancel").wait_for(state="visible", timeout=20_000)  # ...it still runs
    said = _verdict(page, "a man in a suit")  # and its answer arrives
    assert "“a man in a suit”" in said


def test_the_link_box_refuses_a_path(page: Page) -> None:
    _source(page, "Link", "/etc/passwd")
    _ask(page, QUERY)
    error = page.locator("[data-testid='stAlertContentError']")
    error.wait_for(timeout=20_000)
    assert "“/etc/passwd” is not a web link" in error.inner_text()
    assert page.locator(".st-key-verdict").count() == 0


def test_errors_are_in_words_and_name_the_file_as_given(page: Page) -> None:
    _source(page, "Upload")
    broken: FilePayload = {
        "name": "holiday clip.mp4",
        "mimeType": "video/mp4",
        "buffer": b"not a video" * 200,
    }
    with page.expect_file_chooser() as chooser:  # as a person does: the uploader's button, a file
        page.get_by_role("button", name="Upload", exact=True).first.click()
    chooser.value.set_files(files=[broken])
    page.wait_for_timeout(1500)  # the file reaches the server
    _ask(page, QUERY)
    error = page.locator("[data-testid='stAlertContentError']")
    error.wait_for(timeout=60_000)
    text = error.inner_text()
    assert "holiday clip.mp4" in text and "uploads" not in text and "Traceback" not in text, text
    _source(page, "Link", "http://127.0.0.1:9/nothing.mp4")
    _ask(page, QUERY)
    page.get_by_text(re.compile("the server refused the connection")).wait_for(timeout=60_000)
    assert "HTTPConnection" not in page.locator("[data-testid='stAlertContentError']").inner_text()


def test_the_phone_layout_puts_results_first_and_fits_cards(
    browser: Browser, app_server: str, shots: Path
) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    try:
        page.goto(app_server, wait_until="domcontentloaded")
        page.get_by_label("What are you looking for?").wait_for()
        said = _search_bikes(page)
        assert "Found" in said, said
        verdict = page.locator(".st-key-verdict").bounding_box()
        assert verdict is not None and verdict["y"] + verdict["height"] <= PHONE["height"], verdict
        cards = page.locator("[class*='st-key-card-'], .st-key-playing-card")
        assert cards.count() >= 2
        for i in range(cards.count()):
            box = cards.nth(i).bounding_box()
            assert box is not None and box["height"] <= PHONE["height"], box
        assert not page.locator("[data-testid='stMetric']").first.is_visible()  # folded
        page.locator(".st-key-verdict").evaluate("e => e.scrollIntoView({block: 'start'})")
        page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollBy(0, -64)")
        _shot(page, shots, "app-phone.png")
    finally:
        context.close()


def test_subtitles_show_in_the_transcript_and_a_line_seeks(page: Page, media: Path, shots: Path) -> None:
    _source(page, "Local file", str(media / "subs" / "clip.mp4"))
    _ask(page, "budget")
    _verdict(page, "budget")
    marked = page.locator("[data-testid='stMarkdownContainer'] mark", has_text="budget")
    marked.first.wait_for(state="visible")
    transcript = page.locator(".st-key-transcript")
    lines = transcript.get_by_role("button")
    assert lines.count() == 2, lines.all_inner_texts()
    first, later = lines.all_inner_texts()
    assert first.endswith("00:00:02 The budget is ready."), first
    assert later.endswith("00:00:07 Costs: $5 [draft] *not* final."), later  # shown literally
    lines.nth(1).click()
    page.wait_for_function(PLAYER_AT, arg=7, timeout=20_000)
    _shot(page, shots, "app-transcript.png")


def test_the_sounds_chip_finds_the_music_with_a_music_badge(
    page: Page, heard_and_seen: tuple[Path, Path]
) -> None:
    music, _ = heard_and_seen
    _source(page, "Local file", str(music))
    page.get_by_role("button", name="Sounds").click()
    _ask(page, "when the music starts")
    said = _verdict(page, "when the music starts")
    assert "Found" in said, said
    first = page.locator(".st-key-card-1, .st-key-playing-card").first
    assert "♪ Music" in first.inner_text(), first.inner_text()
    assert "[music]" not in first.inner_text()  # the badge says it; the raw label is not shown as words
    start = int(first.get_by_role("button", name=re.compile("Play")).inner_text()[-1])
    assert MUSIC[0] - 1 <= start <= MUSIC[0] + 1, start


def test_the_faces_chip_shows_a_people_gallery_whose_faces_show_their_moments_and_can_be_named(
    page: Page, heard_and_seen: tuple[Path, Path], shots: Path
) -> None:
    _, people = heard_and_seen
    _source(page, "Local file", str(people))
    page.get_by_role("button", name="Faces").click()
    _ask(page, "a woman talking")
    _verdict(page, "a woman talking")
    gallery = page.locator(".st-key-people")
    gallery.wait_for(state="visible")
    faces = gallery.locator("[class*='st-key-person-']")
    assert faces.count() == 2, gallery.inner_text()  # the teacher and the other woman
    assert gallery.locator("img").count() == 2 and "on screen" in gallery.inner_text()
    person = faces.first.get_by_role("button", name=re.compile(r"p\d+$"))
    found_id = re.search(r"p\d+", person.inner_text())
    assert found_id is not None, person.inner_text()
    ident = found_id.group()
    person.click()
    said = _verdict(page, ident)  # the answer is now this person's moments
    assert "Found" in said, said
    first = page.locator(".st-key-card-1, .st-key-playing-card").first
    assert "Face" in first.inner_text(), first.inner_text()
    _shot(page, shots, "app-people.png")
    faces.first.get_by_role("button", name="Name").click()
    page.get_by_role("textbox", name="Name").fill("Alice")
    page.get_by_role("button", name="Save").click()
    page.get_by_text(f"{ident} is now called Alice.").wait_for(state="visible")
    _idle(page)
    assert gallery.get_by_role("button", name="Alice").count() == 1
