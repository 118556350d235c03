"""The Streamlit app: AppTest flows (upload → query → results; errors as messages) and its pure logic."""

from __future__ import annotations

import io
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import PYTEST_MAIN
from frameseek import settings
from frameseek.api import clip_bounds
from frameseek.app import APP_SCRIPT, jobs, logic, present
from frameseek.errors import InputError, SourceError
from frameseek.indexing.text_tracks import TrackOptions
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import create_model
from frameseek.models.registry import packaged_weights
from frameseek.search import Searcher, SearchResponse, SearchResult, Timeline
from videos import BIKES  # tests/ is not a package: pytest puts it on sys.path

QUERY = "a cyclist wearing a helmet"
SRT = """1
00:00:02,000 --> 00:00:04,000
The budget is ready.

2
00:00:07,000 --> 00:00:09,000
Costs: $5 [draft] *not* final.
"""
BAD_LINK = "http://127.0.0.1:9/nothing.mp4"
TIMEOUT = 120.0


def require_app_model() -> str:
    """The model the app tests use: the packaged ``lite`` (or ``$FRAMESEEK_APP_MODEL``), else skip."""
    configured = os.environ.get(logic.MODEL_ENV, "").strip()
    if configured:
        return configured
    if packaged_weights("lite") is None:
        pytest.skip("the lite model's trained heads are not installed in src/frameseek/weights/lite/")
    return "lite"


def require_bikes() -> Path:
    if not BIKES.is_file():
        pytest.skip(f"sample video {BIKES} is not available")
    return BIKES


@pytest.fixture(scope="module")
def app_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One private FRAMESEEK_HOME for the module (so the second query can reuse the first one's index)."""
    home = tmp_path_factory.mktemp("app-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESEEK_HOME", str(home))
        # AppTest has no server address (like a bare `streamlit run`, which listens on every interface):
        # enable the "Local file" input explicitly; `frameseek app` binds to 127.0.0.1 where it is on.
        mp.setenv(logic.LOCAL_FILES_ENV, "1")
        yield home


@pytest.fixture(scope="module")
def model(app_home: Path) -> DualEncoder:
    return create_model(require_app_model())


def new_app() -> AppTest:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def metric(at: AppTest, label: str) -> str:
    return next(str(m.value) for m in at.metric if m.label == label)


def search(at: AppTest, query: str) -> AppTest:
    at.text_input(key="query").input(query)
    at.button(key="search").click()
    at.run()
    assert not at.exception, at.exception
    return at


# ---------------------------------------------------------------------------------------- AppTest flows


@pytest.mark.slow
def test_upload_query_shows_results_then_reuses_the_index(app_home: Path) -> None:
    require_app_model()
    data = require_bikes().read_bytes()
    at = new_app()
    at.radio(key="source_kind").set_value("Upload").run()
    at.file_uploader(key="upload").set_value(("bikes.mp4", data, "video/mp4"))
    search(at, QUERY)

    assert not at.error, [e.value for e in at.error]
    headers = [t for t in texts(at) if t.startswith("**#")]
    assert 2 <= len(headers) <= 5  # top-5 after temporal NMS (2 s apart) on a 10 s video
    assert all("· 00:00:0" in h for h in headers), headers
    assert len(at.success) + len(at.warning) == 1  # the verdict line: found, or nothing matches well
    assert metric(at, "Index") == "built"
    assert int(metric(at, "Frames processed")) >= 9
    assert "frames/s" in metric(at, "Encoding FPS")
    assert metric(at, "Search latency").endswith("ms")
    buttons = at.get("download_button")
    assert len(buttons) == 2 * len(headers) + 2  # a frame and a clip per hit, then the supercut and markers
    assert [b.proto.label for b in buttons[-2:]] == [
        "Download supercut (MP4)",
        "Download markers (EDL / OTIO)",
    ]
    assert len(at.checkbox) == len(headers) and all(box.value for box in at.checkbox)  # every hit selected
    at.checkbox[0].uncheck().run()
    picked = f"{len(headers) - 1} of {len(headers)} moments selected"
    assert any(c.value.startswith(picked) for c in at.caption), [c.value for c in at.caption]
    assert at.get("vega_lite_chart"), "the similarity chart is missing"
    assert at.get("video"), "the player is missing"
    # the upload was stored under its hash, never under the browser's file name
    uploads = list(settings.uploads_dir().iterdir())
    assert [p.name for p in uploads if p.suffix == ".mp4"] and all(p.stem != "bikes" for p in uploads)

    # same video again: the stored index is reused, nothing is decoded or encoded
    search(at, "a person riding a bike")
    assert not at.error
    assert metric(at, "Index") == "reused"
    assert metric(at, "Frames processed") == "0"
    assert metric(at, "Extraction") == "—"

    # "▶ Play from" opens the player at that moment
    response = at.session_state["response"]
    hit = response.results[1]
    at.button(key="play-2").click().run()
    assert not at.exception
    assert at.session_state["start_time"] == int(hit.time)
    video = at.get("video")[0].proto
    assert video.start_time == int(hit.time) and video.autoplay
    # the same moment again: a new player identity, so the browser seeks again
    at.button(key="play-2").click().run()
    again = at.get("video")[0].proto
    assert again.start_time == video.start_time and again.id != video.id
    # other widgets rerun the page without restarting the player
    at.number_input(key="min_gap").set_value(2.5).run()
    assert at.get("video")[0].proto.id == again.id


@pytest.mark.slow
def test_library_and_local_file_inputs(app_home: Path) -> None:
    require_app_model()
    bikes = require_bikes()
    at = new_app()
    at.radio(key="source_kind").set_value("Local file").run()
    at.text_input(key="local_path").input(str(bikes))
    search(at, QUERY)
    assert not at.error, [e.value for e in at.error]
    assert any(t.startswith("**#1 · 00:00:") for t in texts(at))

    # searched videos are offered again from the library
    at.radio(key="source_kind").set_value("Library").run()
    box = at.selectbox(key="library_video")
    assert any("bikes" in str(option) for option in box.options), box.options
    search(at, QUERY)
    assert not at.error
    assert metric(at, "Index") == "reused"


def test_the_then_while_at_least_builder_asks_an_order_query(app_home: Path) -> None:
    """The page's builder turns "A, then B within N s" into one order query: its answer spans A to B;
    a builder field that cannot work (within without then) is a message on the page, not a traceback."""
    require_app_model()
    bikes = require_bikes()  # 1.2-3.0 s a traffic jam, 3.0-5.5 s a cyclist (shared/data/README.md)
    at = new_app()
    at.radio(key="source_kind").set_value("Local file").run()
    at.text_input(key="local_path").input(str(bikes))
    at.text_input(key="then").input("a cyclist riding beside a van")
    at.number_input(key="within").set_value(5.0)
    search(at, "cars in a traffic jam")
    assert not at.error, [e.value for e in at.error]
    response = at.session_state["response"]
    assert response.results, "an order query answers with its closest sequences at least"
    best = response.results[0]
    assert best.start < 3.0 < best.end, (best.start, best.end)  # from the jam into the cyclist's scene

    at.text_input(key="then").input("")
    search(at, "cars in a traffic jam")
    assert at.error and "then" in at.error[0].value.lower(), [e.value for e in at.error]


@pytest.mark.slow
def test_subtitles_give_badges_highlights_and_a_transcript(app_home: Path, tmp_path: Path) -> None:
    require_app_model()
    video = tmp_path / "clip.mp4"
    shutil.copyfile(require_bikes(), video)
    video.with_suffix(".srt").write_text(SRT, encoding="utf-8")
    at = new_app()
    assert not at.session_state["tracks"]  # the Speech and Screen text chips start off
    at.radio(key="source_kind").set_value("Local file").run()
    at.text_input(key="local_path").input(str(video))
    search(at, "budget")
    assert not at.error, [e.value for e in at.error]

    response = at.session_state["response"]
    best = response.results[0]
    assert best.match.startswith("speech") and best.text == "The budget is ready."
    markdown = texts(at)
    assert any(":orange-badge[:material/record_voice_over: Speech]" in t for t in markdown), markdown
    assert any("<mark>budget</mark>" in t for t in markdown)
    assert (
        metric(at, "Transcription speed") == "—" and metric(at, "OCR") == "—"
    )  # subtitles: nothing recognised

    lines = [b for b in at.button if str(b.key).startswith("line-")]
    assert [b.label for b in lines] == [
        "`00:00:02` The **budget** is ready\\.",
        "`00:00:07` Costs\\: \\$5 \\[draft\\] \\*not\\* final\\.",
    ]
    assert lines[0].proto.type == "secondary"  # the player starts at the best hit: its line is marked
    at.button(key="line-1").click().run()
    assert not at.exception
    assert at.session_state["start_time"] == 7 and at.get("video")[0].proto.start_time == 7
    assert at.button(key="line-1").proto.type == "secondary"


def test_bad_link_is_a_message_not_a_traceback(app_home: Path) -> None:
    require_app_model()
    at = new_app()
    at.radio(key="source_kind").set_value("Link").run()
    at.text_input(key="link").input(BAD_LINK)
    search(at, QUERY)
    assert len(at.error) == 1
    message = at.error[0].value
    assert "127.0.0.1:9" in message and "\n" not in message and "Traceback" not in message
    assert "response" not in at.session_state


def test_the_app_runs_above_leave_the_real_main_module_for_processes_spawned_later() -> None:
    # AppTest installed the app script as sys.modules["__main__"] in the test above; a process spawned
    # now (a DDP worker) would run the whole app at start-up. conftest's _main_module_kept put it back.
    assert sys.modules["__main__"] is PYTEST_MAIN
    assert getattr(sys.modules["__main__"], "__file__", None) != str(APP_SCRIPT)


def test_empty_query_is_refused_before_any_work(app_home: Path) -> None:
    at = new_app()
    at.radio(key="source_kind").set_value("Local file").run()
    at.text_input(key="local_path").input(str(BIKES))
    search(at, "   ")
    assert [e.value for e in at.error] == [
        "the query is empty; type a sentence such as 'a cyclist wearing a helmet'"
    ]
    assert not at.status  # no progress box: nothing was started


@pytest.mark.parametrize(
    ("kind", "key", "value", "expected"),
    [
        ("Local file", "local_path", "/no/such/video.mp4", "no such file or folder"),
        ("Link", "link", "ftp://example.com/v.mp4", "is not a web link"),
        ("Link", "link", "/etc/passwd", "“/etc/passwd” is not a web link"),
        ("Local file", "local_path", "", "no video chosen"),
    ],
)
def test_bad_sources_are_messages(app_home: Path, kind: str, key: str, value: str, expected: str) -> None:
    require_app_model()
    at = new_app()
    at.radio(key="source_kind").set_value(kind).run()
    at.text_input(key=key).input(value)
    search(at, QUERY)
    assert len(at.error) == 1 and expected in at.error[0].value, [e.value for e in at.error]


def test_unreadable_upload_is_a_message(app_home: Path) -> None:
    require_app_model()
    at = new_app()
    at.radio(key="source_kind").set_value("Upload").run()
    at.file_uploader(key="upload").set_value(("clip.mp4", b"this is not a video" * 100, "video/mp4"))
    search(at, QUERY)
    assert len(at.error) == 1, [e.value for e in at.error]
    assert "Traceback" not in at.error[0].value and "\n" not in at.error[0].value


def test_page_without_results_has_inputs_and_limits(app_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMESEEK_MAX_UPLOAD_MB", "7")
    at = new_app()
    assert at.markdown[0].value.endswith("frameseek · find the moment in a video")
    kinds = ["Link", "Upload", "Local file"]  # the library first (the default) only once it has videos
    expected = ["Library", *kinds] if logic.library_videos() else [*kinds, "Library"]
    assert list(at.radio(key="source_kind").options) == expected
    monkeypatch.delenv(logic.LOCAL_FILES_ENV)
    assert "Local file" not in new_app().radio(key="source_kind").options  # no address = all interfaces
    assert not at.error and not at.metric
    assert len(at.markdown) == 1  # the title; nothing stray (a bare string in the script would be drawn)
    assert at.text_input(key="sub_lang").value == "en"
    assert any("Uploads up to 7 MB" in c.value for c in at.sidebar.caption)
    at.radio(key="source_kind").set_value("Upload").run()
    assert at.file_uploader(key="upload").proto.max_upload_size_mb == 7
    allowed = set(at.file_uploader(key="upload").allowed_type)
    assert {f".{t}" for t in logic.UPLOAD_TYPES} <= allowed


# ---------------------------------------------------------------------------------------- pure logic


@pytest.mark.slow
def test_run_query_with_an_upload(model: DualEncoder, app_home: Path) -> None:
    data = require_bikes().read_bytes()
    upload = logic.Upload(data, "../../etc/evil name.mp4")
    seen: list[tuple[str, float, float | None]] = []
    options = logic.QueryOptions(top_k=3, min_gap=1.0)
    response = logic.run_query(
        Searcher(model),
        upload,
        logic.make_query(QUERY, None),
        options,
        progress=lambda s, d, t: seen.append((s, d, t)),
        library=None,
    )
    assert 1 <= len(response.results) <= 3  # one result per moment: at most top_k
    assert Path(response.results[0].video).parent == settings.uploads_dir().resolve()
    stored = logic.to_source(upload)  # the browser's file name is a title, never a path
    assert stored.title == "evil name" and stored.path.parent == settings.uploads_dir().resolve()
    assert stored.path.name == f"{stored.sha256}.mp4"
    assert response.timelines and len(response.timelines[0].times) >= 9
    if not response.metrics["index_reused"]:
        assert seen and {s for s, _, _ in seen} == {"index"}
    hit = response.results[0]
    assert logic.frame_jpeg(hit)[:3] == b"\xff\xd8\xff"
    assert logic.clip_mp4(hit)[4:8] == b"ftyp"


def test_the_heading_says_nothing_matches_well_when_nothing_is_found(
    model: DualEncoder, app_home: Path
) -> None:
    searcher = Searcher(model)
    options = logic.QueryOptions(top_k=3)
    bikes = str(require_bikes())
    found = logic.run_query(
        searcher, bikes, logic.make_query("cars in a traffic jam", None), options, library=None
    )
    assert found.found and logic.results_heading(found) == (
        f"Top {len(found.results)} moments for “cars in a traffic jam”"
    )
    absent = logic.run_query(
        searcher, bikes, logic.make_query("an elephant on the moon", None), options, library=None
    )
    assert not absent.found and absent.results
    assert logic.results_heading(absent) == (
        f"Nothing matches “an elephant on the moon” well: the closest {len(absent.results)} moments"
    )


def test_run_query_refuses_empty_queries_and_uploads() -> None:
    with pytest.raises(InputError, match="query is empty"):
        logic.make_query("  \n", None)  # checked before any model loads
    with pytest.raises(SourceError, match="empty"):
        logic.to_source(logic.Upload(b"", "a.mp4"))


def test_upload_size_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FRAMESEEK_HOME", str(tmp_path))
    monkeypatch.setenv("FRAMESEEK_MAX_UPLOAD_MB", "1")
    with pytest.raises(SourceError, match="too large"):
        logic.to_source(logic.Upload(b"\0" * (1024 * 1024 + 1), "big.mp4"))


def test_check_query_and_source() -> None:
    assert logic.make_query("  a   dog ", None).text == "a dog"
    image = Image.new("RGB", (8, 8))
    assert logic.make_query("", image).text is None and logic.make_query(None, image).image is image
    with pytest.raises(InputError):
        logic.make_query(None, None)
    assert logic.check_source(" clip.mp4 ", "Local file") == "clip.mp4"
    with pytest.raises(InputError, match="paste a YouTube or web link"):
        logic.check_source("", "Link")
    with pytest.raises(InputError, match="upload a video"):
        logic.check_source(None, "Upload")


def test_an_uploaded_query_image_is_read_by_the_one_loader_and_named_as_given() -> None:
    buffer = io.BytesIO()
    Image.new("LA", (8, 6), (128, 0)).save(buffer, format="PNG")  # fully transparent grey
    image = logic.query_image(logic.Upload(buffer.getvalue(), "my sketch.png"))
    assert image.mode == "RGB" and image.size == (8, 6)
    assert image.getpixel((0, 0)) == (255, 255, 255)  # transparency on white, as at every door
    with pytest.raises(InputError, match=r"cannot read my sketch\.png: not a readable image"):
        logic.query_image(logic.Upload(b"not an image", "my sketch.png"))


def test_progress_tracker_eta_and_throttle() -> None:
    now = [100.0]
    tracker = logic.ProgressTracker(clock=lambda: now[0], min_interval=0.5)
    first = tracker.update("index", 0.0, 10.0)
    assert first is not None and first.fraction == 0.0 and first.eta_seconds is None
    now[0] += 0.1
    assert tracker.update("index", 1.0, 10.0) is None  # throttled
    now[0] += 1.9  # 2 s for 2.5 of 10 video seconds → 6 s left
    view = tracker.update("index", 2.5, 10.0)
    assert view is not None and view.eta_seconds == pytest.approx(6.0)
    assert view.label == "Extracting and encoding frames"
    assert "25%" in view.text and "ETA 6 s" in view.text and "00:00:02 of 00:00:10" in view.text
    now[0] += 0.01
    done = tracker.update("index", 10.0, 10.0)  # completion is never throttled
    assert done is not None and done.fraction == 1.0 and "ETA" not in done.text
    download = tracker.update("download", 2_500_000, None)  # new stage, unknown size
    assert download is not None and download.fraction is None and "2.5 MB" in download.text


def test_progress_of_speech_and_screen_text() -> None:
    now = [0.0]
    tracker = logic.ProgressTracker(clock=lambda: now[0], min_interval=0.0)
    assert tracker.update("speech", 0.0, 120.0) is not None
    now[0] += 10.0  # 10 s for 30 of 120 audio seconds → 30 s left
    speech = tracker.update("speech", 30.0, 120.0)
    assert speech is not None and speech.label == "Transcribing speech"
    assert speech.text == "Transcribing speech · 00:00:30 of 00:02:00 of audio · 25% · ETA 30 s"
    screen = tracker.update("screen", 0.0, 60.0)  # a new stage starts its own clock
    assert screen is not None and screen.label == "Reading on-screen text" and screen.eta_seconds is None
    now[0] += 4.0
    screen = tracker.update("screen", 45.0, 60.0)
    assert screen is not None and screen.eta_seconds == pytest.approx(4 / 3)
    assert screen.text.startswith("Reading on-screen text · 00:00:45 of 00:01:00 of video · 75%")


def test_query_options_ask_for_text_tracks() -> None:
    assert logic.QueryOptions().tracks() == TrackOptions(
        subtitles=True, speech=False, ocr=False, sub_lang="en"
    )
    chosen = logic.QueryOptions(speech=True, ocr=True, sub_lang=" pt-BR ").tracks()
    assert chosen == TrackOptions(subtitles=True, speech=True, ocr=True, sub_lang="pt-BR")
    assert logic.QueryOptions(sub_lang="  ").tracks().sub_lang == "en"
    with pytest.raises(InputError, match=r"^the subtitle language must be a language code"):
        logic.QueryOptions(sub_lang="english please").tracks()


def test_run_query_passes_the_text_tracks() -> None:
    calls: list[dict[str, Any]] = []

    class FakeSearcher:
        def search(self, source: object, query: object, **kwargs: Any) -> str:
            calls.append({"source": source, "query": query, **kwargs})
            return "response"

    options = logic.QueryOptions(top_k=3, min_gap=1.5, speech=True, ocr=True)
    query = logic.make_query("budget", None)
    result = logic.run_query(cast(Searcher, FakeSearcher()), "/v/clip.mp4", query, options, library=None)
    assert result == "response"
    (call,) = calls
    assert call["tracks"] == TrackOptions(speech=True, ocr=True) and call["sampling"] == options.sampling()
    assert call["source"] == "/v/clip.mp4" and call["query"] is query and call["top_k"] == 3
    assert call["min_gap"] == 1.5 and call["library"] is None


def test_match_badges() -> None:
    assert [b.label for b in logic.match_badges("visual")] == ["Visual"]
    both = logic.match_badges("speech+visual")
    assert [(b.label, b.color) for b in both] == [("Speech", "orange"), ("Visual", "blue")]
    assert both[0].icon == logic.KIND_ICONS["speech"] != logic.KIND_ICONS["screen"]
    assert [b.label for b in logic.match_badges("screen+speech+visual")] == ["On screen", "Speech", "Visual"]
    assert [b.label for b in logic.match_badges(" Speech + speech ")] == ["Speech"]  # normalised, once
    assert logic.match_badges("") == []
    odd = logic.match_badges("face]")  # a kind this app does not know: shown, its name escaped
    assert [(b.label, b.color) for b in odd] == [("Face\\]", "gray")]


def test_highlight_markup_escapes_untrusted_text() -> None:
    markup = logic.highlight_html("The budget is ready.", "budget")
    assert markup == '<div class="frameseek-said">“The <mark>budget</mark> is ready.”</div>'
    evil = logic.highlight_html(
        '<script>alert("budget")</script> <img src=x onerror=alert(1)> & budget', "budget"
    )
    assert "<script" not in evil and "<img" not in evil and '"budget"' not in evil
    assert "&lt;script&gt;" in evil and "&lt;img src&#61;x onerror&#61;alert&#40;1&#41;&gt;" in evil
    assert "&amp; <mark>budget</mark>" in evil and evil.count("<mark>") == 2
    assert evil.count("<") == evil.count("<mark>") + evil.count("</mark>") + 2  # + the div's own tags
    # Markdown and Streamlit's extensions act on nothing in the text: links, emphasis, math, icons
    md = logic.highlight_html("[x](https://evil.example) *a* $5$ :material/home: `c`", None)
    assert not any(c in md.removeprefix('<div class="frameseek-said">') for c in "[]()*$`") and "&#58;" in md
    assert "<mark>" not in md  # no query (an image search): nothing marked
    # whitespace (a blank line would end the HTML block) is collapsed
    assert "\n" not in logic.highlight_html("FINAL\n\nLAP  3", "final lap")
    # long text is cut around the first match
    long = logic.highlight_html("filler " * 100 + "budget " + "filler " * 100, "budget", limit=80)
    assert long.count("filler") < 15 and "<mark>budget</mark>" in long and "“…" in long and "…”" in long


def test_markdown_text_escapes_every_mark() -> None:
    assert logic.markdown_text("Costs: $5 [draft](x) *not*\nfinal.") == (
        "Costs\\: \\$5 \\[draft\\]\\(x\\) \\*not\\* final\\."
    )
    assert logic.markdown_text("plain words") == "plain words"


def test_transcript_rows() -> None:
    spans = [
        {"start": 7.0, "end": 9.0, "text": "Costs: $5 *not* final.", "kind": "speech"},
        {"start": 2.0, "end": 6.0, "text": "BUDGET 2024", "kind": "screen"},
        {"start": 2.4, "end": 4.0, "text": "The budget  is\nready.", "kind": "speech"},
        {"start": "bad", "end": 1.0, "text": "x", "kind": "speech"},  # malformed: left out
        {"start": 5.0, "end": 6.0, "text": "   ", "kind": "speech"},  # blank: left out
    ]
    response = SearchResponse("v", "lite", "budget", [], {}, transcripts={"/v/a.mp4": spans})
    rows = logic.transcript_rows(response, "/v/a.mp4")
    assert [(r.start, r.kind) for r in rows] == [(2.0, "screen"), (2.4, "speech"), (7.0, "speech")]
    speech, screen = logic.KIND_ICONS["speech"], logic.KIND_ICONS["screen"]
    assert [r.icon for r in rows] == [screen, speech, speech]
    assert rows[1].text == "The budget is ready." and rows[1].label == "`00:00:02` The **budget** is ready\\."
    assert rows[0].label == "`00:00:02` **BUDGET** 2024" and rows[0].matched and not rows[2].matched
    assert rows[2].label == "`00:00:07` Costs\\: \\$5 \\*not\\* final\\."
    assert (
        logic.transcript_rows(response, "/v/other.mp4") == [] and logic.transcript_rows(response, None) == []
    )
    assert (
        logic.active_row(rows, 2) == 1 and logic.active_row(rows, 5) == 0 and logic.active_row(rows, 8) == 2
    )
    assert logic.active_row(rows, 6) is None and logic.active_row([], 0) is None
    assert logic.transcript_height(1) == 96 and logic.transcript_height(3) == 184
    assert logic.transcript_height(1000) == logic.TRANSCRIPT_HEIGHT
    assert logic.transcript_note(rows) == "2 said · 1 on screen · click a line to play from there"
    many = [rows[1]] * (logic.TRANSCRIPT_MAX_ROWS + 1)
    assert logic.transcript_note(many).startswith(f"The first {logic.TRANSCRIPT_MAX_ROWS:,} of ")


def test_formatting_helpers() -> None:
    assert logic.hms(0) == "00:00:00"
    assert logic.hms(3725.9) == "01:02:05"
    assert logic.hms(float("nan")) == "00:00:00"
    assert logic.format_duration(4.4) == "4 s"
    assert logic.format_duration(125) == "2 min 05 s"
    assert logic.format_duration(3780) == "1 h 03 min"
    hit = SearchResult("/v/a.mp4", "My video: take/2", 9.0, "00:00:09.000", 0.5, 8.5, 8.6, None)
    assert logic.download_name(hit, ".jpg") == "My-video-take-2-000009.jpg"
    assert clip_bounds(hit) == (8.5, 9.5)  # the one clip rule: widened around the hit to 1 s
    assert logic.segment_label(hit) == "00:00:08–00:00:08"
    assert logic.video_mime("x.WEBM") == "video/webm" and logic.video_mime("x.avi") == "video/mp4"


def test_local_files_only_for_a_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(logic.LOCAL_FILES_ENV, raising=False)
    assert logic.local_files_allowed("127.0.0.1") and logic.local_files_allowed("localhost")
    assert not logic.local_files_allowed("0.0.0.0") and not logic.local_files_allowed(None)
    monkeypatch.setenv(logic.LOCAL_FILES_ENV, "1")
    assert logic.local_files_allowed("0.0.0.0")


def test_metric_cards_and_timeline_rows() -> None:
    metrics = {
        "download_bytes": 0,
        "download_mb_per_s": None,
        "extraction_frames_per_s": 30.25,
        "encoding_frames_per_s": 20.0,
        "frames_processed": 1234,
        "index_reused": False,
        "search_latency_ms": 3.5,
        "transcription_audio_seconds_per_s": 12.345,
        "ocr_frames_per_s": None,
        "ocr_frames_read": 0,
        "cpu_percent": 150.0,
        "peak_rss_mb": 700.4,
        "wall_seconds": 2.0,
    }
    cards = {c.label: c.value for c in logic.metric_cards(metrics)}
    assert cards == {
        "Download": "—",
        "Extraction": "30.2 frames/s",
        "Encoding FPS": "20.0 frames/s",
        "Frames processed": "1,234",
        "Transcription speed": "12.3×",
        "OCR": "—",
        "Search latency": "3.5 ms",
        "CPU": "150.0 %",
        "Peak memory": "700 MB",
        "Index": "built",
    }
    hit = SearchResult("/v/a.mp4", "a", 1.0, "00:00:01.000", 0.9, 0.0, 2.0, None)
    response = SearchResponse(
        source="a.mp4",
        model="lite",
        query="q",
        results=[hit],
        metrics=metrics,
        timelines=[Timeline("/v/a.mp4", "a", np.array([0.0, 1.0]), np.array([0.1, 0.9]))],
    )
    curve, hits = logic.timeline_rows(response)
    assert curve == [{"video": "a", "time": 0.0, "score": 0.1}, {"video": "a", "time": 1.0, "score": 0.9}]
    assert hits[0]["rank"] == "#1" and hits[0]["timestamp"] == "00:00:01"
    assert logic.player_video(response) == "/v/a.mp4"
    assert logic.jump_points(response, "/v/a.mp4") == [(1, hit)]


def test_cli_app_binds_localhost_and_passes_streamlit_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from frameseek import cli

    calls: list[list[str]] = []

    def fake_call(command: list[str], **options: object) -> int:
        calls.append(command)
        return 0

    monkeypatch.setattr("frameseek.cli.launcher.subprocess.call", fake_call)
    monkeypatch.setenv("FRAMESEEK_MAX_UPLOAD_MB", "64")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["app", "--server.port", "8599"])
    assert exit_info.value.code == 0
    command = calls[0]
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4] == str(APP_SCRIPT)
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.maxUploadSize") + 1] == "64"
    assert command[command.index("--server.port") + 1] == "8599"

    calls.clear()
    with pytest.raises(SystemExit):
        cli.main(["app", "--server.address", "0.0.0.0", "--server.maxUploadSize", "5"])
    command = calls[0]
    assert command.count("--server.address") == 1 and command.count("--server.maxUploadSize") == 1
    assert command[command.index("--server.maxUploadSize") + 1] == "5"


def test_the_player_embeds_the_original_youtube_video() -> None:
    def response(origin: str) -> SearchResponse:
        line = Timeline("/cache/v.mp4", "v", np.zeros(1), np.zeros(1), origin)
        return SearchResponse("s", "lite", "q", [], {}, timelines=[line])

    link = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert logic.embed_link(response(link), "/cache/v.mp4") == link
    assert logic.embed_link(response("https://youtu.be/dQw4w9WgXcQ"), "/cache/v.mp4") is not None
    assert logic.embed_link(response(link), "/other.mp4") is None
    assert logic.embed_link(response("http://example.com/v.mp4"), "/cache/v.mp4") is None  # played locally
    assert logic.embed_link(response("/videos/v.mp4"), "/cache/v.mp4") is None


# ---------------------------------------------------------------------------------------- issue 27: present, jobs


def _hit(time: float, confidence: float, video: str = "/v/a.mp4", title: str = "a") -> SearchResult:
    return SearchResult(video, title, time, "", 0.2, time - 0.5, time + 0.5, None, confidence=confidence)


def test_the_verdict_says_found_or_that_nothing_matches_well() -> None:
    found = SearchResponse("v", "lite", "a dog", [_hit(3, 0.86), _hit(7, 0.3)], {}, found=True)
    assert present.verdict(found, 2.04).text == "Found “a dog”: 1 moment match well · 2.0 s"
    weak = SearchResponse("v", "lite", "an elephant on the moon", [_hit(3, 0.12)], {}, found=False)
    said = present.verdict(weak)
    assert not said.found and said.text.startswith("Nothing matches “an elephant on the moon” well")
    assert "best confidence 12%" in said.text
    several = SearchResponse("v", "lite", "q", [_hit(1, 0.9), _hit(2, 0.7, "/v/b.mp4", "b")], {}, found=True)
    assert present.verdict(several).text == "Found “q”: 2 moments match well in 2 of 2 videos"


def test_confidence_levels_use_the_documented_thresholds() -> None:
    assert [present.level(_hit(0, c)) for c in (0.8, 0.79, 0.5, 0.49, 0.0)] == [
        "high", "medium", "medium", "low", "low"
    ]  # fmt: skip
    assert present.level_label(_hit(0, 0.864)) == "High · 86%"
    assert present.HIGH_AT == 0.8


def test_fewer_moments_than_asked_is_explained() -> None:
    response = SearchResponse("v", "lite", "q", [_hit(1, 0.9), _hit(5, 0.2)], {}, found=True)
    note = present.shortfall(response, 5)
    assert note is not None and note.startswith("2 of the 5 moments asked for")
    assert present.shortfall(response, 2) is None


def test_a_folder_answer_is_grouped_into_one_row_per_video() -> None:
    hits = [_hit(1, 0.9, "/v/b.mp4", "b"), _hit(4, 0.3), _hit(8, 0.6, "/v/b.mp4", "b"), _hit(2, 0.7)]
    rows = present.video_rows(SearchResponse("folder", "lite", "q", hits, {}))
    assert [(r.title, [rank for rank, _ in r.hits]) for r in rows] == [("b", [1, 3]), ("a", [2, 4])]


def test_the_timeline_keeps_a_fixed_confidence_scale() -> None:
    line = Timeline("/v/a.mp4", "a", np.array([0.0, 1.0, 2.0]), np.array([0.1, 0.3, 0.2]))
    response = SearchResponse("v", "lite", "q", [_hit(1, 0.4)], {}, timelines=[line])
    frames, moments = present.timeline_points(response, "/v/a.mp4")
    assert [f["shape"] for f in frames] == pytest.approx([0.0, 1.0, 0.5])
    assert moments == [{"time": 1, "start": 0.5, "end": 1.5, "confidence": 0.4, "level": "low", "rank": "#1",
                        "at": "00:00:01"}]  # fmt: skip
    library = SearchResponse("library:default", "lite", "q", [_hit(4, 0.9)], {})
    assert [f["time"] for f in present.timeline_points(library, "/v/a.mp4")[0]] == [4]  # moments as targets


def test_a_query_that_names_words_said_gets_the_speech_hint() -> None:
    assert present.looks_like_speech("someone says thank you") and present.looks_like_speech('"budget"')
    assert not present.looks_like_speech("a cyclist wearing a helmet")
    assert present.speech_hint("someone says thank you", speech_on=True) is None
    assert "Speech" in (present.speech_hint("someone says thank you", speech_on=False) or "")
    missed = SearchResponse("v", "lite", "budget", [_hit(1, 0.1)], {}, found=False)
    assert present.speech_hint("budget", False) is None  # nothing suggests it before the answer
    assert "Speech" in (present.speech_hint("budget", False, missed) or "")


@pytest.mark.parametrize(
    "text", ["/etc/passwd", "not a link", "file:///etc/passwd", "ftp://x/v.mp4", "~/v.mp4"]
)
def test_the_link_box_accepts_only_web_links(text: str) -> None:
    with pytest.raises(InputError, match="is not a web link"):
        present.check_link(text)
    assert present.check_link(" https://example.com/v.mp4 ") == "https://example.com/v.mp4"


def test_errors_are_worded_for_people() -> None:
    refused = SourceError(
        "could not download http://127.0.0.1:9/nothing.mp4: Unable to download webpage: "
        "HTTPConnection(host='127.0.0.1', port=9): Failed to establish a new connection: [Errno 111] Connection refused"
    )
    assert present.friendly_error(refused) == (
        "could not download http://127.0.0.1:9/nothing.mp4: the server refused the connection (127.0.0.1:9)"
    )
    stored = "/home/x/.frameseek/uploads/" + "ab" * 32 + ".mp4"
    broken = SourceError(f"{stored} is not a readable video: Invalid data found when processing input")
    said = present.friendly_error(broken, given="holiday.mp4", stored=stored)
    assert said.startswith("holiday.mp4 is not a readable video") and "uploads" not in said
    assert present.friendly_error(ValueError("x\ny")).startswith("something went wrong (ValueError: x y)")


def test_progress_line_counts_and_estimates() -> None:
    fraction, text = present.progress_line(
        "Extracting and encoding frames", 4.0, 10.0, 5.5, 2.0, "index", (1, 3)
    )
    assert fraction == pytest.approx(0.4)
    assert text == (
        "Extracting and encoding frames · 00:00:04 of 00:00:10 of video · video 2 of 3 · 40% · ETA 3 s · 5.5 s so far"
    )
    assert present.progress_line("Loading the image model", 0, None, 1.2, 1.2, "model") == (
        None, "Loading the image model · 1.2 s so far"
    )  # fmt: skip


def test_a_cancelled_job_stops_at_its_next_report_and_keeps_no_answer() -> None:
    reached: list[float] = []

    def work(report: Any) -> SearchResponse:
        for step in range(200):
            report("index", float(step), 200.0)
            reached.append(step)
            time.sleep(0.01)
        return SearchResponse("v", "lite", "q", [], {})

    job = jobs.SearchJob("“q”", work).start()
    while not reached:
        time.sleep(0.01)
    job.cancel()
    job.join(5)
    assert job.cancelled and not job.running and job.response is None and job.error is None
    assert len(reached) < 200
    assert job.snapshot().stage == "index"


def test_a_failed_job_keeps_one_friendly_line() -> None:
    def work(report: Any) -> SearchResponse:
        raise SourceError("/srv/uploads/x.mp4 is not a readable video: Invalid data")

    job = jobs.SearchJob("“q”", work, given="my clip.mp4", stored="/srv/uploads/x.mp4").start()
    job.join(5)
    assert job.error == "my clip.mp4 is not a readable video: Invalid data" and not job.running


@pytest.mark.slow
def test_the_query_side_answers_an_indexed_video_without_the_image_model(
    model: DualEncoder, app_home: Path
) -> None:
    """With the query engine exported, a fresh server's text query on an indexed video never loads the image
    model; a video that needs indexing loads it on the index side."""
    Searcher(model).prepare_query_engine()
    engines = jobs.Engines(require_app_model())
    options = logic.QueryOptions(top_k=3, fps=0.75)  # a sampling no other test indexes: built here
    request = jobs.Request("Local file", str(require_bikes()), logic.make_query(QUERY, None), options)
    first = jobs.SearchJob("“q”", lambda report: jobs.search_work(engines, request, first))
    first.start().join(TIMEOUT)
    assert first.response is not None and first.response.results, first.error
    assert first.response.metrics["waited_seconds"] > 0
    assert first.response.metrics["index_reused"] is False and first.response.metrics["frames_processed"] >= 7
    fresh = jobs.Engines(require_app_model())  # a new server: the video is indexed now
    again = jobs.SearchJob("“q”", lambda report: jobs.search_work(fresh, request, again))
    again.start().join(TIMEOUT)
    assert again.response is not None and again.response.metrics["videos_indexed"] == 0
    assert again.response.metrics["image_model_needed"] is False  # answered by the query engine alone
    assert [r.time for r in again.response.results] == [r.time for r in first.response.results]


# ---------------------------------------------------------------------------------------- issues 26/27: the tracks


def _heard(match: str, text: str | None, language: str | None = None) -> SearchResult:
    hit = _hit(4, 0.9)
    return SearchResult(hit.video, hit.title, hit.time, "", 0.2, 3.5, 4.5, None, match=match, text=text,
                        language=language, confidence=0.9)  # fmt: skip


def test_a_moment_heard_gets_a_sound_badge_naming_what_was_heard_instead_of_its_label_as_words() -> None:
    music = _heard("sounds", "[music]")
    assert present.sound_badge(music) == "♪ Music" and present.shown_text(music) is None
    assert present.sound_badge(_heard("sounds+visual", "[singing]")) == "♪ Singing"
    assert present.sound_badge(_heard("sounds", None)) == "♪ Sound"
    said = _heard("speech+sounds", "We bake bread [music] together")  # words said stay words
    assert present.sound_badge(said) == "♪ Music" and present.shown_text(said) == said.text
    assert present.sound_badge(_heard("speech", "[music] plays")) is None  # only the sounds track
    assert [b.label for b in logic.match_badges("sounds+faces")] == ["Sound", "Face"]


def test_words_in_another_language_than_the_query_are_tagged_with_their_language() -> None:
    spanish = _heard("speech", "Hoy hace mucho sol en la playa", "es")
    assert present.language_tag(spanish, "the weather today") == "ES"
    assert present.language_tag(spanish, "el tiempo hoy") is None  # the query's own language
    assert present.language_tag(_heard("speech", "a sunny day", "en"), "a cyclist rides past") is None
    assert present.language_tag(_heard("visual", None, "es"), "the weather today") is None  # no words
    assert present.language_tag(_heard("screen", "Wetter", None), "the weather today") is None


def test_the_people_gallery_adds_up_each_persons_screen_time_and_names_them_or_shows_their_id() -> None:
    rows = [
        {"id": "p2", "name": None, "thumbnail": "/t/p2.jpg", "screen_time": 6.0, "appearances": 1,
         "videos": [{"video": "/v/a.mp4", "title": "a", "appearances": [[0, 6]]}]},
        {"id": "p1", "name": "Alice", "thumbnail": None, "screen_time": 40.0, "appearances": 2,
         "videos": [{"video": "/v/a.mp4", "title": "a", "appearances": [[6, 11], [20, 55]]}]},
        {"id": "p2", "name": None, "thumbnail": "/t/p2.jpg", "screen_time": 61.0, "appearances": 2,
         "videos": [{"video": "/v/b.mp4", "title": "b", "appearances": [[0, 30], [40, 71]]}]},
    ]  # fmt: skip
    cards = present.people_cards(rows)
    assert [(c.id, c.label) for c in cards] == [("p2", "p2"), ("p1", "Alice")]  # most screen time first
    assert (
        cards[0].screen_time == "1 min 07 s on screen · 3 appearances" and cards[0].thumbnail == "/t/p2.jpg"
    )
    assert cards[1].screen_time == "40 s on screen · 2 appearances"
    assert present.person_videos(rows, "p2") == ["/v/a.mp4", "/v/b.mp4"]
    assert present.person_videos(rows, "p9") == [] and present.people_cards([]) == []


def test_a_person_seen_in_no_video_searched_is_one_clear_line() -> None:
    with pytest.raises(InputError, match="p9 is not seen in any video searched"):
        jobs.person_moments("p9", [], 5)
    response = SearchResponse("v", "lite", "q", [_hit(3, 0.9, "/v/b.mp4")], {},
                              timelines=[Timeline("/v/a.mp4", "a", np.zeros(0), np.zeros(0))])  # fmt: skip
    assert jobs.searched_videos(response) == ["/v/a.mp4"]
    assert jobs.searched_videos(SearchResponse("v", "lite", "q", [_hit(3, 0.9, "/v/b.mp4")], {})) == [
        "/v/b.mp4"
    ]
