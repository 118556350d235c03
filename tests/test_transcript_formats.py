"""SRT / WebVTT / JSON export of timed text: parsed back with simple regexes, times and texts intact."""

from __future__ import annotations

import json
import re

import pytest

from frameseek.errors import InputError
from frameseek.text.formats import to_json, to_srt, to_vtt
from frameseek.text.spans import TextSpan, TextTrack
from frameseek.timecode import parse_timecode

SPANS = [
    TextSpan(6.0, 8.5, "Chapter 4 - Winter pruning", "screen"),
    TextSpan(0.0, 1.5, "Hello & <welcome>", "speech"),
    TextSpan(3725.25, 3727.0, "Line one\n\nline two", "speech"),
    TextSpan(2.0, 2.0, "   ", "speech"),  # nothing to show: left out
    TextSpan(10.0, 9.0, "end before start --> clamped", "speech"),
]
SRT_CUE = re.compile(
    r"(\d+)\n(\d{2}:\d{2}:\d{2},\d{3}) --> (\d{2}:\d{2}:\d{2},\d{3})\n(.+?)(?:\n\n|\n?\Z)", re.S
)
VTT_CUE = re.compile(r"(\d{2}:\d{2}:\d{2}\.\d{3}) --> (\d{2}:\d{2}:\d{2}\.\d{3})\n(.+?)(?:\n\n|\n?\Z)", re.S)


def test_srt_round_trip() -> None:
    text = to_srt(SPANS)
    cues = SRT_CUE.findall(text)
    assert [c[0] for c in cues] == ["1", "2", "3", "4"]  # numbered in time order, the empty span skipped
    times = [
        (parse_timecode(a.replace(",", ".")), parse_timecode(b.replace(",", "."))) for _, a, b, _ in cues
    ]
    assert times == [(0.0, 1.5), (6.0, 8.5), (10.0, 10.0), (3725.25, 3727.0)]
    assert cues[3][1] == "01:02:05,250"
    assert [c[3] for c in cues] == [
        "Hello & <welcome>",
        "Chapter 4 - Winter pruning",
        "end before start -> clamped",  # "-->" would read as a timing line
        "Line one\nline two",  # a blank line would end the cue
    ]
    assert text.endswith("\n") and "\n\n\n" not in text
    assert to_srt([]) == ""


def test_vtt_round_trip() -> None:
    text = to_vtt(SPANS)
    assert text.startswith("WEBVTT\n\n")
    cues = VTT_CUE.findall(text)
    assert [(parse_timecode(a), parse_timecode(b)) for a, b, _ in cues] == [
        (0.0, 1.5),
        (6.0, 8.5),
        (10.0, 10.0),
        (3725.25, 3727.0),
    ]
    assert cues[0][2] == "Hello &amp; &lt;welcome&gt;"  # cue text is markup in WebVTT
    assert cues[3][0] == "01:02:05.250"
    assert to_vtt([]) == "WEBVTT\n"


def test_json_round_trip() -> None:
    speech = TextTrack(
        "speech", tuple(s for s in SPANS if s.kind == "speech"), "subtitles:sidecar a.srt", "en"
    )
    screen = TextTrack("screen", (SPANS[0],), "ocr:rapidocr", None, {"frames_read": 5})
    data = json.loads(to_json([speech, screen]))
    assert [t["kind"] for t in data["tracks"]] == ["speech", "screen"]
    first = data["tracks"][0]
    assert first["origin"] == "subtitles:sidecar a.srt" and first["language"] == "en"
    assert [(s["start"], s["end"]) for s in first["spans"]] == [
        (0.0, 1.5),
        (2.0, 2.0),
        (10.0, 10.0),
        (3725.25, 3727.0),
    ]
    assert first["spans"][-1]["start_timecode"] == "01:02:05.250"
    assert first["spans"][0]["text"] == "Hello & <welcome>"  # JSON keeps text as is
    assert data["tracks"][1]["info"] == {"frames_read": 5}
    assert json.loads(to_json(screen)) == {"tracks": [data["tracks"][1]]}  # a single track is accepted
    assert "Été" in to_json(TextTrack("speech", (TextSpan(0, 1, "Été"),), "asr:test"))


def test_invalid_times_are_input_errors() -> None:
    for bad in (TextSpan(-1.0, 1.0, "x"), TextSpan(0.0, float("nan"), "x")):
        for write in (to_srt, to_vtt):
            with pytest.raises(InputError, match="span 1"):
                write([bad])
        with pytest.raises(InputError):
            to_json(TextTrack("speech", (bad,), "test"))
