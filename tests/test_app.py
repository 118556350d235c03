"""The Streamlit app: AppTest flows (upload → query → results; errors as messages) and its pure logic."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from frameseek import settings
from frameseek.app import APP_SCRIPT, logic
from frameseek.errors import InputError, SourceError
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.registry import load_model, packaged_weights
from frameseek.search import SearchResponse, SearchResult, Timeline
from videos import BIKES  # tests/ is not a package: pytest puts it on sys.path

QUERY = "a cyclist wearing a helmet"
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
    return load_model(require_app_model())


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
    assert at.status[0].label.startswith(f"Found {len(headers)} moments")
    assert metric(at, "Index") == "built"
    assert int(metric(at, "Frames processed")) >= 9
    assert "frames/s" in metric(at, "Encoding FPS")
    assert metric(at, "Search latency").endswith("ms")
    assert len(at.get("download_button")) == 2 * len(headers)  # a frame and a clip per hit
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
    assert [s.label for s in at.status] == ["Search failed"]


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
        ("Link", "link", "ftp://example.com/v.mp4", "only http:// and https:// links"),
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
    assert at.title[0].value.endswith("frameseek")
    assert list(at.radio(key="source_kind").options) == list(logic.SOURCE_KINDS)
    monkeypatch.delenv(logic.LOCAL_FILES_ENV)
    assert "Local file" not in new_app().radio(key="source_kind").options  # no address = all interfaces
    assert not at.error and not at.metric
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
        model, upload, QUERY, options, progress=lambda s, d, t: seen.append((s, d, t)), library=None
    )
    assert len(response.results) == 3
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


def test_run_query_refuses_empty_queries_and_uploads() -> None:
    with pytest.raises(InputError, match="query is empty"):
        logic.run_query("no-model-needed", "x.mp4", "  \n", logic.QueryOptions())
    with pytest.raises(SourceError, match="empty"):
        logic.to_source(logic.Upload(b"", "a.mp4"))


def test_upload_size_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FRAMESEEK_HOME", str(tmp_path))
    monkeypatch.setenv("FRAMESEEK_MAX_UPLOAD_MB", "1")
    with pytest.raises(SourceError, match="too large"):
        logic.to_source(logic.Upload(b"\0" * (1024 * 1024 + 1), "big.mp4"))


def test_check_query_and_source() -> None:
    assert logic.check_query("  a   dog ", has_image=False) == "a dog"
    assert logic.check_query("", has_image=True) is None
    with pytest.raises(InputError):
        logic.check_query(None, has_image=False)
    assert logic.check_source(" clip.mp4 ", "Local file") == "clip.mp4"
    with pytest.raises(InputError, match="paste a YouTube or web link"):
        logic.check_source("", "Link")
    with pytest.raises(InputError, match="upload a video"):
        logic.check_source(None, "Upload")


def test_query_image() -> None:
    buffer = io.BytesIO()
    Image.new("L", (8, 6), 128).save(buffer, format="PNG")
    image = logic.load_query_image(buffer.getvalue())
    assert image.mode == "RGB" and image.size == (8, 6)
    with pytest.raises(InputError, match="cannot read the query image"):
        logic.load_query_image(b"not an image")


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


def test_formatting_helpers() -> None:
    assert logic.hms(0) == "00:00:00"
    assert logic.hms(3725.9) == "01:02:05"
    assert logic.hms(float("nan")) == "00:00:00"
    assert logic.format_duration(4.4) == "4 s"
    assert logic.format_duration(125) == "2 min 05 s"
    assert logic.format_duration(3780) == "1 h 03 min"
    hit = SearchResult("/v/a.mp4", "My video: take/2", 9.0, "00:00:09.000", 0.5, 8.5, 8.6, None)
    assert logic.download_name(hit, ".jpg") == "My-video-take-2-000009.jpg"
    assert logic.clip_window(hit) == (8.5, 9.5)
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

    def fake_call(command: list[str]) -> int:
        calls.append(command)
        return 0

    monkeypatch.setattr(cli.subprocess, "call", fake_call)
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
