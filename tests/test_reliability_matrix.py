"""The bad-input matrix, through the CLI (real subprocesses), the Python API (Searcher) and the app's logic.

Every bad input must give one line naming the problem (CLI: ``error: ...`` on stderr and the error's exit
code), never a traceback, and leave nothing half-written under FRAMESEEK_HOME (no temporary files or
folders, no index folder, no downloaded file). The edge cases that are *not* errors (a 1-frame video, a
huge frame within ``FRAMESEEK_MAX_PIXELS``, a truncated stream with decodable frames, long, non-English and
emoji queries) must give results.
"""

from __future__ import annotations

import json
import pickle
import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from frameseek.app.logic import QueryOptions, Upload, error_message, make_query, run_query
from frameseek.errors import DecodeError, FrameseekError, InputError, ModelError, SourceError
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import create_model
from frameseek.models.registry import packaged_weights
from frameseek.search import Searcher, SearchResponse
from frameseek.timecode import format_timecode
from frameseek.video.sampling import Sampling

try:  # tests/ is not a package: pytest puts it on sys.path
    from reliability_support import (
        PROXY_VARS,
        CliCall,
        assert_nothing_half_written,
        assert_one_line_error,
        complete_indexes,
        lite_model_ref,
        run_cli,
        run_cli_batch,
        shared_lite_model,
    )
    from test_video_sources import LocalSite
    from videos import make_audio_only, make_video
except ImportError:  # pragma: no cover - if tests/ becomes a package
    from tests.reliability_support import (
        PROXY_VARS,
        CliCall,
        assert_nothing_half_written,
        assert_one_line_error,
        complete_indexes,
        lite_model_ref,
        run_cli,
        run_cli_batch,
        shared_lite_model,
    )
    from tests.test_video_sources import LocalSite
    from tests.videos import make_audio_only, make_video

pytestmark = pytest.mark.slow  # subprocesses (CLI runs, workers): outside the `-m "not slow"` lane

QUERY = "a dog running on the beach"
LONG_QUERY = ("a person riding a bicycle down a long road " * 200).strip()  # ~8600 characters
HUGE_SIZE = (8000, 6000)  # 48 Mpx: within the default FRAMESEEK_MAX_PIXELS (8192 * 8192)
SAMPLING = Sampling(fps=1.0)


# ---------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Inputs:
    """The files and links of the matrix."""

    files: dict[str, Path]
    links: dict[str, str]
    models: dict[str, str]

    def source(self, key: str) -> str:
        return self.links[key] if key in self.links else str(self.files[key])


def _no_decodable_frames(path: Path) -> None:
    """A Matroska file whose MJPEG video packets are all zeros: it opens, but no frame decodes."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=25)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuvj420p"
        for i in range(30):
            packet = av.Packet(bytes(2000))
            packet.stream = stream
            packet.pts = packet.dts = i
            packet.time_base = Fraction(1, 25)
            out.mux(packet)


def _damaged_tail(path: Path) -> None:
    """20 good MJPEG frames (2 s at 10 fps), then 130 packets of zeros: the decoder gives up on the tail."""
    from fractions import Fraction

    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=10)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuvj420p"
        stream.codec_context.time_base = Fraction(1, 10)
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 10, np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            for packet in stream.encode(frame.reformat(format="yuvj420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        for i in range(20, 150):
            packet = av.Packet(bytes(500))
            packet.stream = stream
            packet.pts = packet.dts = i
            packet.time_base = Fraction(1, 10)
            out.mux(packet)


def _huge_frame(path: Path) -> None:
    """A single 8000x6000 frame: ffmpeg's colour source is fast; PyAV builds a 144 MB array first."""
    width, height = HUGE_SIZE
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        make_video(path, times=[0.0], size=HUGE_SIZE)
        return
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=0x3366cc:s={width}x{height}:r=1",
         "-frames:v", "1", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip


def _checkpoints(root: Path, lite: str) -> dict[str, str]:
    """A lite checkpoint with a pickle beside its files, and one whose config has the wrong embed_dim."""
    packaged = packaged_weights("lite") if lite == "lite" else Path(lite)
    assert packaged is not None
    with_pickle = root / "ckpt-with-pickle"
    shutil.copytree(packaged, with_pickle)
    (with_pickle / "extra_weights.pt").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    wrong_dims = root / "ckpt-wrong-dims"
    shutil.copytree(packaged, wrong_dims)
    config = json.loads((wrong_dims / "config.json").read_text(encoding="utf-8"))
    config["embed_dim"] = int(config["embed_dim"]) // 2
    (wrong_dims / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return {"lite": lite, "pickle": str(with_pickle), "wrong-dims": str(wrong_dims)}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed when the block ends: nothing listens there


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> str:
    return lite_model_ref(tmp_path_factory)


@pytest.fixture(scope="module")
def secret_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local video (MPEG-TS) that untrusted links and uploads try to make frameseek read."""
    path = tmp_path_factory.mktemp("private") / "secret.ts"
    make_video(path, 2.0)
    return path


def _hls_playlist(segment: str) -> str:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:2.0,\n{segment}\n#EXT-X-ENDLIST\n"
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, secret_video: Path) -> Iterator[LocalSite]:
    """A real HTTP server on 127.0.0.1 (test_video_sources' helper): a page, a video, a redirect to file://,
    and two pages pointing at a local file: an HLS playlist with a file:// segment, a <video src="file://">."""
    root = tmp_path_factory.mktemp("site")
    make_video(root / "video.mp4", 2.0)
    (root / "page.html").write_text("<html><head><title>hi</title></head><body>no video here</body></html>")
    (root / "fake.mp4").write_text("this is text served as video/mp4\n" * 50)
    (root / "local.m3u8").write_text(_hls_playlist(secret_video.as_uri()))
    (root / "file-src.html").write_text(
        f'<html><body><video src="{secret_video.as_uri()}"></video></body></html>'
    )
    server = LocalSite(root)
    yield server
    server.close()


@pytest.fixture(scope="module")
def inputs(
    tmp_path_factory: pytest.TempPathFactory, site: LocalSite, lite: str, secret_video: Path
) -> Inputs:
    root = tmp_path_factory.mktemp("bad-inputs")
    files = {name: root / name for name in (
        "zero-byte.mp4", "text.mp4", "truncated.mp4", "random.mp4", "audio-only.m4a", "no-frames.mkv",
        "one-frame.mp4", "huge.mp4", "clip.mp4", "truncated.ts", "damaged-tail.mkv",
    )}  # fmt: skip
    files["missing.mp4"] = root / "missing.mp4"
    files["playlist.mp4"] = root / "playlist.mp4"  # an HLS playlist of a local file, named like a video
    files["playlist.mp4"].write_text(_hls_playlist(str(secret_video)), encoding="utf-8")
    files["zero-byte.mp4"].write_bytes(b"")
    files["text.mp4"].write_text("hello, I am a text file with a video's name\n" * 40, encoding="utf-8")
    full = root / "full.mp4"
    make_video(full, 2.0)  # PyAV writes the index (moov) at the end: the first half cannot be opened
    files["truncated.mp4"].write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    files["random.mp4"].write_bytes(random.Random(1234).randbytes(200_000))
    make_audio_only(files["audio-only.m4a"])
    _no_decodable_frames(files["no-frames.mkv"])
    make_video(files["one-frame.mp4"], times=[0.0])
    _damaged_tail(files["damaged-tail.mkv"])
    _huge_frame(files["huge.mp4"])
    make_video(files["clip.mp4"], 3.0)
    full_ts = root / "full.ts"
    make_video(full_ts, 4.0)  # MPEG-TS has no index: the part before the cut decodes
    files["truncated.ts"].write_bytes(full_ts.read_bytes()[: full_ts.stat().st_size // 2])
    links = {
        "unreachable-link": f"http://127.0.0.1:{_closed_port()}/video.mp4",
        "html-link": site.url("page.html"),
        "text-as-video-link": site.url("fake.mp4"),
        "redirect-to-file-link": site.url("to-file"),
        "ftp-link": "ftp://127.0.0.1/video.mp4",
        "hls-file-segment-link": site.url("local.m3u8"),
        "video-file-src-link": site.url("file-src.html"),
    }
    return Inputs(files, links, _checkpoints(root, lite))


# ----------------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One row of the matrix: a source, a query and a model, and what must happen."""

    id: str
    source: str = "clip.mp4"
    query: str = QUERY
    model: str = "lite"
    error: type[FrameseekError] | None = None
    needles: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    notice: str | None = None  # expected in the response's notices
    cli: bool = True  # False: the CLI adds nothing to another row's code path (runs through API and app)

    def __str__(self) -> str:
        return self.id


CASES = [
    Case("missing-file", "missing.mp4", error=SourceError, needles=("missing.mp4",)),
    Case("zero-byte-file", "zero-byte.mp4", error=DecodeError, needles=("empty",)),
    Case("text-named-mp4", "text.mp4", error=DecodeError, needles=("not a readable video",)),
    Case("truncated-mp4", "truncated.mp4", error=DecodeError, needles=("not a readable video",)),
    Case("random-bytes", "random.mp4", error=DecodeError, needles=("not a readable video",)),
    Case("audio-only", "audio-only.m4a", error=DecodeError, needles=("no video stream",)),
    Case("no-decodable-frames", "no-frames.mkv", error=DecodeError, needles=("no decodable video frames",)),
    Case("huge-over-pixel-limit", "huge.mp4", error=DecodeError, needles=("too large", "8000x6000"),
         env=(("FRAMESEEK_MAX_PIXELS", "40000000"),)),
    Case("unreachable-link", "unreachable-link", error=SourceError, needles=("could not download",)),
    Case("link-not-a-video", "html-link", error=SourceError, needles=("is not a video",)),
    Case("text-served-as-video", "text-as-video-link", error=SourceError, needles=("is not a video",), cli=False),
    Case("redirect-to-file-scheme", "redirect-to-file-link", error=SourceError, needles=("non-http",)),
    Case("ftp-link", "ftp-link", error=SourceError, needles=("only http:// and https://",)),
    # untrusted links and files that point at a local file: yt-dlp and FFmpeg must not read it
    Case("hls-link-with-file-segment", "hls-file-segment-link", error=SourceError, needles=("could not download",),
         cli=False),
    Case("page-with-file-video-src", "video-file-src-link", error=SourceError, needles=("only http(s)",),
         cli=False),
    Case("hls-playlist-named-mp4", "playlist.mp4", error=DecodeError, needles=("not a readable video",),
         cli=False),
    Case("empty-query", query="", error=InputError, needles=("query is empty",)),
    Case("whitespace-query", query=" \t\n  ", error=InputError, needles=("query is empty",)),
    Case("checkpoint-with-pickle", model="pickle", error=ModelError, needles=("pickle", "extra_weights.pt")),
    Case("checkpoint-wrong-dims", model="wrong-dims", error=ModelError, needles=("wrong dimensions",)),
    Case("one-frame-video", "one-frame.mp4"),
    Case("huge-within-pixel-limit", "huge.mp4"),
    Case("truncated-ts-keeps-decodable-part", "truncated.ts"),
    Case("damaged-tail-keeps-decodable-part", "damaged-tail.mkv"),  # the CLI adds a note: test_cli_edge_cases
    Case("very-long-query", query=LONG_QUERY, notice="query truncated to its first 500 characters"),
    Case("spanish-query", query="un perro en la playa"),
    Case("japanese-query", query="自転車に乗った人"),
    Case("emoji-query", query="🚴‍♀️ on a 🏖️ with a 🐕"),
    Case("mixed-scripts-query", query="un perro en la playa · 自転車に乗った人 🚴‍♀️"),
]  # fmt: skip
ERRORS = [c for c in CASES if c.error is not None]
# A CLI run that gets past the cheap checks costs seconds (torch import, model load). Every error row gets its
# own run; the rows that must succeed share one run over a folder holding their videos, with one query that
# is long (truncated, with a notice) and mixes scripts and emoji. The other success rows, and the error rows
# marked ``cli=False``, take the same CLI code path as a row that has a CLI run: API and app only.
CLI_ERRORS = [c for c in ERRORS if c.cli]
EDGE_VIDEOS = ("one-frame.mp4", "huge.mp4", "damaged-tail.mkv")
EDGE_QUERY = "un perro en la playa · 自転車に乗った人 🚴‍♀️ " + LONG_QUERY
EDGE_RUN = "edge-cases-in-one-run"


def _cli_args(case: Case, inputs: Inputs) -> tuple[str, ...]:
    model = inputs.models[case.model]
    return ("search", inputs.source(case.source), case.query, "--fps", "1", "--model", model, "--json")


# ------------------------------------------------------------------------------------------- CLI

CliResults = dict[str, tuple[subprocess.CompletedProcess[str], Path]]


@pytest.fixture(scope="module")
def cli_results(
    request: pytest.FixtureRequest, inputs: Inputs, tmp_path_factory: pytest.TempPathFactory
) -> CliResults:
    """Run the selected CLI rows a few at a time (each a fresh interpreter with its own cache folder)."""
    selected: set[str] = set()
    for item in request.session.items:
        if isinstance(item, pytest.Function) and item.module is request.module:
            if item.originalname == "test_cli_error" and hasattr(item, "callspec"):
                selected.add(item.callspec.params["case"].id)
            elif item.originalname == "test_cli_edge_cases":
                selected.add(EDGE_RUN)
    calls: dict[str, CliCall] = {}
    for case in CLI_ERRORS:
        if case.id in selected:
            calls[case.id] = CliCall(
                _cli_args(case, inputs), tmp_path_factory.mktemp(f"cli-{case.id}"), case.env
            )
    if EDGE_RUN in selected:
        folder = tmp_path_factory.mktemp("edge-videos")
        for name in EDGE_VIDEOS:
            shutil.copy(inputs.files[name], folder / name)
        args = ("search", str(folder), EDGE_QUERY, "--fps", "1", "--min-gap", "0", "--top-k", "10",
                "--model", inputs.models["lite"], "--json")  # fmt: skip
        calls[EDGE_RUN] = CliCall(args, tmp_path_factory.mktemp("cli-edge"))
    results = run_cli_batch(calls)
    return {name: (proc, calls[name].home) for name, proc in results.items()}


@pytest.mark.parametrize("case", CLI_ERRORS, ids=str)
def test_cli_error(case: Case, cli_results: CliResults) -> None:
    proc, home = cli_results[case.id]
    assert_one_line_error(proc, *case.needles)
    assert case.error is not None and proc.returncode == case.error.exit_code, proc.stderr
    assert proc.stdout == ""
    assert_nothing_half_written(home, allow_index=False)


def test_cli_edge_cases(cli_results: CliResults) -> None:
    """A 1-frame video, an 8000x6000 frame and a video with a damaged tail give results; the long query
    with Spanish, Japanese and emoji is truncated with a notice; the decoder's warning is one note line."""
    proc, home = cli_results[EDGE_RUN]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    [note] = proc.stderr.splitlines()
    assert (
        note.startswith("note: ")
        and "damaged-tail.mkv" in note
        and "giving up after 101 decode errors" in note
    )
    data = json.loads(proc.stdout)
    assert data["query"] == " ".join(EDGE_QUERY.split())[:500]
    assert data["query"].startswith("un perro en la playa · 自転車に乗った人 🚴‍♀️ a person")
    assert data["notices"] == ["query truncated to its first 500 characters"]
    by_video: dict[str, list[dict[str, Any]]] = {}
    for hit in data["results"]:
        assert hit["timecode"] == format_timecode(hit["time"])
        assert hit["start"] <= hit["time"] <= max(hit["end"], hit["time"])
        assert hit["thumbnail"] and Path(hit["thumbnail"]).is_file()
        by_video.setdefault(Path(hit["video"]).name, []).append(hit)
    frames = {
        "one-frame.mp4": [0.0],
        "huge.mp4": [0.0],
        "damaged-tail.mkv": [0.0, 1.0],  # the 2 s of good frames, sampled at 1 fps
    }
    assert set(by_video) == set(frames)
    for name, hits in by_video.items():  # moments at sampled frames, inside the video's good part
        assert hits and {h["time"] for h in hits} <= set(frames[name]), (name, hits)
        assert all(0.0 <= h["start"] <= h["end"] <= frames[name][-1] + 1.0 for h in hits), (name, hits)
    assert_nothing_half_written(home, allow_index=True)
    assert len(complete_indexes(home)) == len(EDGE_VIDEOS)


@pytest.mark.parametrize(
    ("source", "needle", "code"),
    [
        ("missing.mp4", "missing.mp4", 3),
        ("text.mp4", "not a readable video", 4),
        ("ftp-link", "only http", 3),
    ],
)
def test_cli_index_command_refuses_bad_sources(
    inputs: Inputs, tmp_path: Path, source: str, needle: str, code: int
) -> None:
    """`frameseek index` checks every source before loading the model; a bad one stops the run."""
    home = tmp_path / "home"
    proc = run_cli(["index", str(inputs.files["clip.mp4"]), inputs.source(source), "--json"], home)
    assert_one_line_error(proc, needle)
    assert proc.returncode == code
    assert_nothing_half_written(home, allow_index=False)
    assert not (home / "libraries").exists()


# ------------------------------------------------------------------------------------ Python API


@pytest.fixture(scope="module")
def lite_model(tmp_path_factory: pytest.TempPathFactory) -> DualEncoder:
    return shared_lite_model(tmp_path_factory)


@pytest.fixture
def api_env(fs_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    return fs_home


def _api_call(case: Case, inputs: Inputs, model: DualEncoder) -> SearchResponse:
    encoder = model if case.model == "lite" else create_model(inputs.models[case.model])
    return Searcher(encoder, sampling=SAMPLING).search(inputs.source(case.source), case.query)


def _app_call(case: Case, inputs: Inputs, model: DualEncoder) -> SearchResponse:
    """The app's path: an upload (bytes + the browser's file name) or a link; the model by name if not lite."""
    name = case.source
    source: str | Upload
    if name in inputs.files and inputs.files[name].is_file():
        source = Upload(inputs.files[name].read_bytes(), name)
    else:
        source = inputs.source(name)
    query = make_query(case.query, None)  # as the page does: the query is checked before any model loads
    searcher = Searcher(model if case.model == "lite" else inputs.models[case.model])
    return run_query(searcher, source, query, QueryOptions(fps=1.0), library=None)


def _check_response(case: Case, response: SearchResponse) -> None:
    assert response.results
    assert response.query == " ".join(case.query.split())[:500]
    if case.notice is not None:
        assert response.notices == [case.notice]
    else:
        assert response.notices == []


@pytest.mark.parametrize("surface", ["api", "app"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_api_and_app(
    case: Case,
    surface: str,
    inputs: Inputs,
    lite_model: DualEncoder,
    api_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in case.env:
        monkeypatch.setenv(name, value)
    call = _api_call if surface == "api" else _app_call
    if case.error is None:
        _check_response(case, call(case, inputs, lite_model))
        assert_nothing_half_written(api_env, allow_index=True)
        assert len(complete_indexes(api_env)) == 1
        return
    with pytest.raises(FrameseekError) as caught:
        call(case, inputs, lite_model)
    assert isinstance(caught.value, case.error) or (
        # an upload is stored before it is decoded: an empty one is refused as a source, not a decode error
        surface == "app" and case.id == "zero-byte-file" and isinstance(caught.value, SourceError)
    ), repr(caught.value)
    message = str(caught.value)
    assert message == error_message(caught.value)
    assert "\n" not in message and message.strip() == message
    for needle in case.needles:
        assert needle.lower() in message.lower(), message
    assert_nothing_half_written(api_env, allow_index=False)


def test_one_frame_video_result(inputs: Inputs, lite_model: DualEncoder, api_env: Path) -> None:
    """A 1-frame video: one moment at 0.000 whose segment is that frame."""
    response = Searcher(lite_model, sampling=SAMPLING).search(inputs.source("one-frame.mp4"), QUERY)
    [hit] = response.results
    assert hit.time == 0.0 and hit.timecode == "00:00:00.000"
    assert hit.start == 0.0 and 0.0 <= hit.end <= 0.1
    assert hit.thumbnail is not None and Path(hit.thumbnail).is_file()


def test_huge_frame_is_downscaled_before_encoding(
    inputs: Inputs, lite_model: DualEncoder, api_env: Path
) -> None:
    """8000x6000 decodes (within the pixel limit) into a 640-pixel-wide picture; the thumbnail is small."""
    from PIL import Image

    response = Searcher(lite_model, sampling=SAMPLING).search(inputs.source("huge.mp4"), QUERY)
    [hit] = response.results
    assert hit.thumbnail is not None
    with Image.open(hit.thumbnail) as thumb:
        assert thumb.width <= 320
    [folder] = complete_indexes(api_env)
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    assert (meta["extra"]["width"], meta["extra"]["height"]) == HUGE_SIZE


def test_truncated_stream_indexes_only_what_was_written(
    inputs: Inputs, lite_model: DualEncoder, api_env: Path
) -> None:
    response = Searcher(lite_model, sampling=SAMPLING).search(inputs.source("truncated.ts"), QUERY, top_k=10)
    times = sorted(hit.time for hit in response.results)
    assert times and times[-1] < 4.0


# ------------------------------------------------------------------------------- bad configuration


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FRAMESEEK_MAX_PIXELS", "lots"),
        ("FRAMESEEK_MAX_PIXELS", "0"),
        ("FRAMESEEK_MAX_FRAMES", "-5"),
        ("FRAMESEEK_MAX_QUERY_CHARS", "1.5"),
        ("FRAMESEEK_MAX_DOWNLOAD_MB", "-1"),
        ("FRAMESEEK_MAX_UPLOAD_MB", "1e3"),
        ("FRAMESEEK_CONNECT_TIMEOUT", "0"),
        ("FRAMESEEK_DOWNLOAD_TIMEOUT", "nan"),
        ("FRAMESEEK_DOWNLOAD_TIMEOUT", "inf"),
    ],
)
def test_a_bad_limit_setting_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """A typo in a limit must not silently become the default (or a limit that refuses everything)."""
    from frameseek import settings

    monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=name):
        settings.limits()


def test_limit_settings_accept_blanks_spaces_and_zero_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    from frameseek import settings

    monkeypatch.setenv("FRAMESEEK_MAX_PIXELS", " 1000 ")
    monkeypatch.setenv("FRAMESEEK_MAX_FRAMES", "")
    monkeypatch.setenv("FRAMESEEK_MAX_DOWNLOAD_MB", "0")  # 0 MB: every download is refused, on purpose
    monkeypatch.setenv("FRAMESEEK_DOWNLOAD_TIMEOUT", "2.5")
    limits = settings.limits()
    assert limits.max_pixels == 1000 and limits.max_frames == 200_000
    assert limits.max_download_bytes == 0 and limits.download_timeout_s == 2.5


def test_cli_bad_limit_setting(inputs: Inputs, tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = run_cli(
        ["search", str(inputs.files["clip.mp4"]), QUERY, "--json"], home, {"FRAMESEEK_MAX_PIXELS": "8k"}
    )
    assert_one_line_error(proc, "FRAMESEEK_MAX_PIXELS", "'8k'")
    assert proc.returncode == InputError.exit_code
    assert_nothing_half_written(home, allow_index=False)
