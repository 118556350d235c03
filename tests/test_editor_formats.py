"""Markers that editors open: Final Cut Pro X ``.fcpxml`` and Final Cut 7 XML ``.xml`` (Premiere Pro, DaVinci
Resolve) beside the EDL and ``.otio``, written through OpenTimelineIO's adapter plugins and read back by them.

Real hits: one real ``frameseek search --export --markers fcpxml`` of the shared street video (the command
line door), whose hits are then written in every format. Real media for the rates: ffmpeg encodes an NTSC
(29.97 fps) video with sound and a 15 fps one; the files are probed by the real decoder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import opentimelineio as otio
import pytest

from frameseek import api
from frameseek.app import logic
from frameseek.editing.markers import cuts, frame_number
from frameseek.editing.timelines import editor_timelines
from frameseek.service.schemas import EditRequest
from service_support import start_server
from videos import require_bikes, require_ffmpeg

QUERY = "a cyclist wearing a helmet"
PAD_BEFORE, PAD_AFTER = 0.5, 0.25
RESULT_KEYS = ("video", "title", "time", "timecode", "score", "start", "end", "thumbnail", "match", "text")
EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


@dataclass
class Search:
    video: Path
    hits: list[api.SearchResult]
    answer: dict[str, Any]
    """``frameseek search --json --export``'s answer."""


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory, _joined_mpnet: Path | None) -> Search:
    video = require_bikes()
    export = tmp_path_factory.mktemp("export")
    command = [sys.executable, "-m", "frameseek", "search", str(video), QUERY, "--json", "--fps", "2",
               "--top-k", "3", "--export", str(export), "--markers", "fcpxml",
               "--pad-before", str(PAD_BEFORE), "--pad-after", str(PAD_AFTER)]  # fmt: skip
    done = subprocess.run(command, env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    hits = [api.SearchResult(**{key: row[key] for key in RESULT_KEYS}) for row in answer["results"]]
    assert len(hits) == 3
    return Search(video, hits, answer)


def expected_cut(search: Search) -> list[tuple[int, int, int]]:
    """(in frame, out frame, hit frame) of each hit at 25 fps: the supercut's rule with the handles."""
    pieces = cuts(api.edit_moments(search.hits), pad_before=PAD_BEFORE, pad_after=PAD_AFTER)
    rate = Fraction(25)
    return [
        (frame_number(p.first, rate), frame_number(p.last, rate), frame_number(p.hit.time, rate))
        for p in pieces
    ]


def seconds(value: str) -> Fraction:
    """An FCPXML time (``101/25s``, ``8s``) as exact seconds."""
    return Fraction(value.removesuffix("s"))


def video_clips(timeline: Any) -> list[Any]:
    return [c for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video for c in t.find_clips()]


# ------------------------------------------------------------------------------------------ FCPXML


def test_the_command_line_writes_fcpxml_that_the_adapter_reads_back(search: Search) -> None:
    path = Path(search.answer["markers"])
    assert path.name == "markers.fcpxml" and path.is_file()
    text = path.read_text(encoding="utf-8")
    back = api.read_editor_text(text, "fcpxml")
    rough, marked = back
    assert rough.name == f"frameseek: {QUERY} - rough cut" and marked.name == f"frameseek: {QUERY} - markers"
    url = search.video.resolve().as_uri()
    expected = expected_cut(search)
    clips = video_clips(rough)
    assert [c.media_reference.target_url for c in clips] == [url] * 3
    # the adapter reads times back by truncating float seconds, so a frame can come back one short
    for (first, last, at), clip, rank in zip(expected, clips, (1, 2, 3), strict=True):
        assert clip.source_range.start_time.value == pytest.approx(first, abs=1)
        assert clip.source_range.duration.value == pytest.approx(last - first, abs=1)
        (marker,) = clip.markers
        assert marker.name == f"#{rank} {QUERY}"
        assert marker.marked_range.start_time.value == pytest.approx(at, abs=1)
    # ... so the written times are checked exactly in the XML: seconds on the 1/25 s grid
    spine = ElementTree.fromstring(text).find(".//project/sequence/spine")
    assert spine is not None
    written = [
        (
            seconds(c.get("start", "0s")),
            seconds(c.get("duration", "0s")),
            seconds(next(c.iter("marker")).get("start", "")),
        )
        for c in spine.findall("clip")
    ]
    assert written == [(Fraction(f, 25), Fraction(e - f, 25), Fraction(a, 25)) for f, e, a in expected]
    # the source, whole, with a marker over each hit's segment
    (source,) = video_clips(marked)
    assert source.media_reference.target_url == url
    assert source.source_range.duration.value == 250  # 10 s at 25 fps
    assert [m.name for m in source.markers] == [f"#{rank} {QUERY}" for rank in (1, 2, 3)]


# ------------------------------------------------------------------------------------------ FCP7 XML


def test_fcp7_xml_round_trips_the_rough_cut_and_the_source_markers(search: Search, tmp_path: Path) -> None:
    written = api.export_for_editing(
        search.hits, tmp_path, markers="fcp7", pad_before=PAD_BEFORE, pad_after=PAD_AFTER, query=QUERY
    )
    path = Path(written["markers"])
    assert path.name == "markers.xml" and ElementTree.parse(path).getroot().tag == "xmeml"
    back = api.read_editor_text(path.read_text(encoding="utf-8"), "fcp7")
    rough, marked = back
    url = search.video.resolve().as_uri()
    expected = expected_cut(search)
    clips = video_clips(rough)
    assert [(c.source_range.start_time.value, c.source_range.end_time_exclusive().value) for c in clips] == [
        (float(f), float(e)) for f, e, _ in expected
    ]
    assert [c.media_reference.target_url for c in clips] == [url] * 3
    record = 0
    for (first, last, at), clip, rank, hit in zip(expected, clips, (1, 2, 3), search.hits, strict=True):
        (marker,) = clip.markers
        assert marker.name == f"#{rank} {QUERY}" and marker.marked_range.start_time.value == at
        comment = marker.metadata["fcp_xml"]["comment"]
        assert f"frameseek #{rank}" in comment and f"score {hit.score:.4f}" in comment and QUERY in comment
        # the same marker on the sequence's ruler, at its record time
        ruler = rough.tracks.markers[rank - 1]
        assert ruler.name == marker.name and ruler.marked_range.start_time.value == record + at - first
        record += last - first
    (source,) = video_clips(marked)
    assert source.media_reference.target_url == url
    assert (source.source_range.start_time.value, source.source_range.duration.value) == (0, 250)
    segments = [(frame_number(m.start, Fraction(25)), m.end) for m in api.edit_moments(search.hits)]
    assert [m.marked_range.start_time.value for m in source.markers] == [float(f) for f, _ in segments]
    assert all(m.marked_range.duration.value >= 1 for m in source.markers)


def test_every_format_names_the_same_cut(search: Search) -> None:
    texts = {kind: api.edit_markers(search.hits, kind, query=QUERY, pad_before=PAD_BEFORE,
                                    pad_after=PAD_AFTER) for kind in api.MARKER_FORMATS}  # fmt: skip
    assert set(texts) == {"edl", "otio", "fcpxml", "fcp7"}
    edl = [
        tuple(int(n) for n in re.findall(r"\d+", source))
        for source in re.findall(r"^\d{3} .* C +(\S+ \S+)", texts["edl"], re.M)
    ]
    as_frames = [(((h * 60 + m) * 60 + s) * 25 + f) for h, m, s, f, *_ in edl]
    timeline = otio.adapters.read_from_string(texts["otio"], "otio_json")
    fcp7 = api.read_editor_text(texts["fcp7"], "fcp7")[0]
    starts = [c.source_range.start_time.value for c in video_clips(fcp7)]
    assert as_frames == [c.source_range.start_time.value for c in video_clips(timeline)] == starts
    assert [first for first, _, _ in expected_cut(search)] == starts


# ------------------------------------------------------------------------------------------ rates and sound


@pytest.fixture(scope="module")
def rated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 29.97 fps video with sound and a 15 fps silent one, encoded by ffmpeg (names with a quote, a space)."""
    ffmpeg = require_ffmpeg()
    folder = tmp_path_factory.mktemp("rated")
    made = {"ntsc": folder / "ntsc sound.mp4", "fifteen": folder / "it's 15.mp4", "pal": folder / "pal.mp4"}
    sources = {
        "ntsc": [
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x90:rate=30000/1001",
            "-f",
            "lavfi",
            "-i",
            "sine=f=440",
        ],
        "fifteen": ["-f", "lavfi", "-i", "testsrc=size=160x90:rate=15"],
        "pal": ["-f", "lavfi", "-i", "testsrc=size=160x90:rate=25", "-f", "lavfi", "-i", "sine=f=440"],
    }
    for key, inputs in sources.items():
        command = [ffmpeg, "-loglevel", "error", "-y", *inputs, "-t", "4", "-c:v", "libx264", "-pix_fmt",
                   "yuv420p", "-c:a", "aac", "-shortest", str(made[key])]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    return made


def on_grid(value: str, frame: Fraction) -> bool:
    return (seconds(value) / frame).denominator == 1


def test_fcpxml_at_ntsc_keeps_every_time_on_the_1001_30000_grid(rated: dict[str, Path]) -> None:
    hits = [(rated["ntsc"], 1.0, 0.5, 1.5), (rated["fifteen"], 2.0, 1.8, 2.6), (rated["ntsc"], 3.0, 2.5, 3.5)]
    text = api.edit_markers(hits, "fcpxml", query="it's a test", pad_before=0.3)
    root = ElementTree.fromstring(text)
    assert [f.get("frameDuration") for f in root.iter("format")] == ["1001/30000s"]
    frame = Fraction(1001, 30000)
    for element in root.iter():
        for name in ("offset", "start", "duration"):
            if element.tag != "asset" and element.get(name):
                assert on_grid(element.get(name, ""), frame), (element.tag, name, element.get(name))
    back = api.read_editor_text(text, "fcpxml")
    names = [c.name for c in video_clips(back[0])]
    assert names[1].startswith("#2 it’s 15")  # a quote in a clip name would break the adapter's lookups
    sources = {c.media_reference.target_url for c in video_clips(back[1])}
    assert sources == {rated["ntsc"].resolve().as_uri(), rated["fifteen"].resolve().as_uri()}


def test_fcpxml_at_25_fps_carries_the_sound_as_a_connected_lane(rated: dict[str, Path]) -> None:
    text = api.edit_markers([(rated["pal"], 1.0, 0.5, 1.5)], "fcpxml", query="a tone")
    root = ElementTree.fromstring(text)
    lanes = [c for c in root.iter("clip") if c.get("lane") == "-1"]
    assert len(lanes) == 2  # the rough cut's clip and the whole source, each with its sound beneath
    assert all(lane.find("./gap/audio") is not None for lane in lanes)
    frame = Fraction(1, 25)
    assert all(on_grid(lane.get("offset", "0s"), frame) for lane in lanes)


def test_fcp7_xml_puts_a_15_fps_clip_on_30_fps_and_keeps_ntsc(rated: dict[str, Path]) -> None:
    hits = [(rated["fifteen"], 2.0, 1.8, 2.6), (rated["ntsc"], 1.0, 0.5, 1.5)]
    collection = editor_timelines(api_timeline(hits), "fcp7")
    rough = next(iter(collection))
    rates = [c.source_range.start_time.rate for c in video_clips(rough)]
    assert rates == [30.0, pytest.approx(30000 / 1001)]
    text = api.edit_markers(hits, "fcp7", query="rates")
    timebases = {
        (r.findtext("timebase"), r.findtext("ntsc")) for r in ElementTree.fromstring(text).iter("rate")
    }
    assert timebases == {("30", "FALSE"), ("30", "TRUE")}
    back = api.read_editor_text(text, "fcp7")[0]
    first = video_clips(back)[0]
    assert first.source_range.start_time.value == 46  # 1.5 s: frame 22.5 → 23 at 15 fps, 46 at 30
    assert first.markers[0].marked_range.start_time.value == 60  # the hit at 2.0 s


def api_timeline(hits: list[tuple[Path, float, float, float]]) -> Any:
    from frameseek.editing.markers import otio_timeline

    return otio_timeline(api.edit_moments(hits), query="rates")


# ------------------------------------------------------------------------------------------ doors and errors


def test_the_service_and_the_app_offer_every_format() -> None:
    for kind in api.MARKER_FORMATS:
        assert EditRequest(clips=["x"], format=kind).format == kind
        assert kind in logic.MARKER_CHOICES.values()
        assert logic.markers_download(kind)[0] == api.MARKER_SUFFIXES[kind]
    assert logic.markers_download("fcp7") == (".xml", "application/xml")


def test_the_service_sends_each_editor_format_for_the_hits_of_its_own_search(search: Search) -> None:
    # the session's home, where the command line indexed the video: the server loads the model, no more
    server = start_server(
        Path(os.environ["FRAMESEEK_HOME"]),
        media=[search.video.parent],
        extra=["--rate-limit", "1000", "--rate-burst", "1000"],
    )
    try:
        with server.client() as client:
            body = {"source": search.video.name, "query": QUERY, "fps": 2, "top_k": 3}
            found = client.post("/search", json=body)
            assert found.status_code == 200, found.text
            clips = [hit["clip_id"] for hit in found.json()["results"]]
            for kind in ("fcpxml", "fcp7"):
                asked = {"clips": clips, "format": kind, "query": QUERY, "pad_before": PAD_BEFORE,
                         "pad_after": PAD_AFTER}  # fmt: skip
                made = client.post("/edits", json=asked)
                assert made.status_code == 200, made.text
                assert f'filename="markers{api.MARKER_SUFFIXES[kind]}"' in made.headers["content-disposition"]
                assert made.headers["content-type"].startswith("application/xml")
                same = api.edit_markers(
                    search.hits, kind, query=QUERY, pad_before=PAD_BEFORE, pad_after=PAD_AFTER
                )
                assert made.text == same  # the same hits give the same file at every door
                rough, _ = api.read_editor_text(made.text, kind)
                assert [c.media_reference.target_url for c in video_clips(rough)] == [
                    search.video.as_uri()
                ] * 3
            refused = client.post("/edits", json={"clips": clips, "format": "avid"})
            assert refused.status_code == 422 and "Traceback" not in refused.text
    finally:
        server.stop()


def test_an_unknown_format_is_one_clear_error(search: Search) -> None:
    with pytest.raises(api.InputError, match=r"^markers must be one of edl, otio, fcpxml, fcp7, got 'avid'$"):
        api.edit_markers(search.hits, "avid")
    with pytest.raises(api.InputError, match=r"one of edl, otio, fcpxml, fcp7"):
        api.export_for_editing(search.hits, Path("/nonexistent-never-made"), markers="prproj")
    with pytest.raises(api.InputError, match="one of mp4, edl, otio, fcpxml, fcp7"):
        api.edit_file(search.hits, "aaf")
    done = subprocess.run(
        [sys.executable, "-m", "frameseek", "search", str(search.video), QUERY, "--markers", "avid"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error:") and "--markers" in line and "Traceback" not in done.stderr


def test_an_unwritable_folder_is_one_clear_error_and_leaves_no_file(search: Search, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(api.InputError, match=r"^cannot write into the folder .*a-file/markers"):
        api.export_for_editing(search.hits, blocker / "markers", markers="fcpxml", query=QUERY)
    with pytest.raises(api.InputError, match=r"^cannot write into the folder"):
        api.export_hits(search.hits, blocker / "hits")
    assert blocker.read_text() == "not a folder" and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_file_the_adapter_cannot_read_is_one_clear_error() -> None:
    with pytest.raises(api.InputError, match=r"^not a readable fcp7 file"):
        api.read_editor_text("<xmeml><project/></xmeml>", "fcp7")
    with pytest.raises(api.InputError, match=r"^not a readable fcpxml file"):
        api.read_editor_text("this is not xml", "fcpxml")
    with pytest.raises(api.InputError, match=r"^the editor format must be one of fcpxml, fcp7"):
        api.read_editor_text("<xmeml/>", "edl")


# ------------------------------------------------------------------------------------------ docs/examples


def test_the_examples_in_docs_are_read_back_and_name_no_machine_path() -> None:
    texts = {kind: (EXAMPLES / f"markers{api.MARKER_SUFFIXES[kind]}").read_text(encoding="utf-8")
             for kind in api.MARKER_FORMATS}  # fmt: skip
    for kind, text in texts.items():
        assert "/work/" not in text and "/tmp/" not in text and "/path/to/bikes.mp4" in text, kind
    for kind in ("fcpxml", "fcp7"):
        rough, marked = api.read_editor_text(texts[kind], kind)
        assert len(video_clips(rough)) == 3 and len(video_clips(marked)) == 1
        assert all(c.media_reference.target_url == "file:///path/to/bikes.mp4" for c in video_clips(rough))
    timeline = otio.adapters.read_from_string(texts["otio"], "otio_json")
    assert len(video_clips(timeline)) == 3
    assert texts["edl"].startswith("TITLE: frameseek - a cyclist wearing a helmet\nFCM: NON-DROP FRAME")
    assert len(re.findall(r"^\d{3}  AX ", texts["edl"], re.M)) == 3
