"""Subtitles: SRT / WebVTT / ASS parsing, sidecar files, streams embedded in MP4 / MKV, captions of a link.

Media are made here with ffmpeg from the shared sample video (or lavfi test footage); captions come from a
real HTTP server on 127.0.0.1 through yt-dlp's generic extractor.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from frameseek.errors import InputError, SourceError
from frameseek.text.captions import choose_captions, fetch_captions
from frameseek.text.spans import TextSpan
from frameseek.text.subtitles import (
    embedded_subtitle_streams,
    find_sidecars,
    load_subtitles,
    max_subtitle_bytes,
    normalize_language,
    parse_subtitles,
    read_embedded_subtitles,
)
from videos import BIKES, make_video, require_ffmpeg  # tests/ is on sys.path (like conftest)

SRT = (
    "1\n00:00:01,000 --> 00:00:03,500\n<i>Hello</i> there,\nsecond line\n\n"
    "2\n00:00:05,000 --> 00:00:07,250\n{\\an8}Top text &amp; more\n\n"
)
"""Two cues at 1.0-3.5 s and 5.0-7.25 s (markup to strip, two lines to join)."""
SRT_TEXTS = ["Hello there, second line", "Top text & more"]


def _ffmpeg(*args: str) -> None:
    subprocess.run([require_ffmpeg(), "-v", "error", "-y", *args], check=True, timeout=60)


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s H.264 MP4 without audio: the start of the shared sample video, else lavfi test footage."""
    out = tmp_path_factory.mktemp("footage") / "footage.mp4"
    if BIKES.is_file():
        _ffmpeg("-i", str(BIKES), "-t", "4", "-an", "-c", "copy", str(out))
    else:
        _ffmpeg(
            "-f", "lavfi", "-i", "testsrc=size=160x90:rate=25:duration=4", "-pix_fmt", "yuv420p", str(out)
        )
    return out


def _spans(spans: list[TextSpan]) -> list[tuple[float, float, str]]:
    return [(round(s.start, 3), round(s.end, 3), s.text) for s in spans]


# --- parsing ------------------------------------------------------------------------------------------------


def test_srt_with_bom_crlf_markup_and_two_lines() -> None:
    data = b"\xef\xbb\xbf" + SRT.replace("\n", "\r\n").encode()
    assert _spans(parse_subtitles(data, "talk.srt")) == [(1.0, 3.5, SRT_TEXTS[0]), (5.0, 7.25, SRT_TEXTS[1])]


def test_webvtt_header_notes_styles_identifiers_settings_and_voice_tags() -> None:
    vtt = (
        "WEBVTT - a talk\nKind: captions\n\nSTYLE\n::cue { color: yellow }\n\nNOTE this is -- a note\n\n"
        "intro\n00:01.000 --> 00:02.500 align:start position:10%\n<v Roger>Welcome <b>back</b></v>\n\n"
        "01:00:00.000 --> 01:00:01.000\nan hour<00:00:00.500><c> later</c>\n"
    )
    spans = parse_subtitles(vtt.encode(), "talk.vtt")
    assert _spans(spans) == [(1.0, 2.5, "Welcome back"), (3600.0, 3601.0, "an hour later")]


def test_ass_dialogue_in_the_declared_field_order() -> None:
    ass = (
        "[Script Info]\nScriptType: v4.00+\n\n[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        "Comment: 0,0:00:00.00,0:00:09.00,Default,,0,0,0,,not shown\n"
        "Dialogue: 0,0:00:02.50,0:00:04.00,Default,,0,0,0,,{\\i1}Commas, too,{\\i0}\\Nkept\n"
        "Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,First\n"
    )
    assert _spans(parse_subtitles(ass.encode(), "talk.ass")) == [
        (1.0, 2.0, "First"),
        (2.5, 4.0, "Commas, too, kept"),
    ]


def test_format_is_detected_by_content_not_extension() -> None:
    vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nweb text\n"
    assert parse_subtitles(vtt.encode(), "named.srt")[0].text == "web text"
    assert [s.text for s in parse_subtitles(SRT.encode(), "subs.txt")] == SRT_TEXTS


def test_cues_without_blank_lines_between_them() -> None:
    srt = "1\n00:00:01,000 --> 00:00:02,000\nfirst\n2\n00:00:03,000 --> 00:00:04,000\nsecond\n"
    assert _spans(parse_subtitles(srt.encode(), "tight.srt")) == [(1.0, 2.0, "first"), (3.0, 4.0, "second")]


def test_overlapping_out_of_order_empty_and_zero_length_cues() -> None:
    srt = (
        "1\n00:00:05,000 --> 00:00:06,000\nlater\n\n"
        "2\n00:00:01,000 --> 00:00:04,000\nfirst speaker\n\n"
        "3\n00:00:02,000 --> 00:00:03,000\nsecond speaker\n\n"
        "4\n00:00:07,000 --> 00:00:07,000\nzero length\n\n"
        "5\n00:00:09,000 --> 00:00:08,000\nnegative length\n\n"
        "6\n00:00:10,000 --> 00:00:11,000\n<i></i>\n\n"
    )
    assert _spans(parse_subtitles(srt.encode(), "messy.srt")) == [
        (1.0, 4.0, "first speaker"),
        (2.0, 3.0, "second speaker"),
        (5.0, 6.0, "later"),
    ]


def test_cues_past_the_video_end_are_dropped_and_clamped() -> None:
    srt = SRT + "3\n00:00:09,000 --> 00:00:12,000\nafter the end\n\n"
    spans = parse_subtitles(srt.encode(), "long.srt", duration=6.0)
    assert _spans(spans) == [(1.0, 3.5, SRT_TEXTS[0]), (5.0, 6.0, SRT_TEXTS[1])]


def test_roll_up_captions_keep_only_new_lines() -> None:
    """YouTube's automatic captions repeat the previous line in each cue and add 10 ms filler cues."""
    vtt = (
        "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nhello<00:00:00.500><c> world</c>\n\n"
        "00:00:02.000 --> 00:00:02.010\nhello world\n\n"
        "00:00:02.010 --> 00:00:04.000\nhello world\nthis<00:00:02.500><c> is new</c>\n"
    )
    assert _spans(parse_subtitles(vtt.encode(), "auto.vtt")) == [
        (0.0, 2.01, "hello world"),
        (2.01, 4.0, "this is new"),
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"not": "subtitles"}', "no SRT, WebVTT or ASS cues"),
        (bytes(range(256)) * 8, "binary"),
        (b"1\n00:00:01,000 --> soon\nbroken\n", "none of its 1 cue times"),
    ],
)
def test_garbage_is_an_input_error_naming_the_file(data: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=reason) as caught:
        parse_subtitles(data, "weird.srt")
    assert "weird.srt" in str(caught.value) and "\n" not in str(caught.value)


def test_a_video_renamed_to_srt_is_refused(footage: Path) -> None:
    with pytest.raises(InputError, match=r"fake\.srt is not a subtitle file"):
        parse_subtitles(footage.read_bytes(), "fake.srt")


def test_size_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert max_subtitle_bytes() == 20 * 1024 * 1024
    monkeypatch.setenv("FRAMESEEK_MAX_SUBTITLE_MB", "1")
    big = (SRT * (1024 * 1024 // len(SRT) + 10)).encode()
    with pytest.raises(InputError, match=r"big\.srt is larger than 1 MB; skipped"):
        parse_subtitles(big, "big.srt")
    monkeypatch.setenv("FRAMESEEK_MAX_SUBTITLE_MB", "lots")
    with pytest.raises(InputError, match="FRAMESEEK_MAX_SUBTITLE_MB"):
        max_subtitle_bytes()


def test_language_codes() -> None:
    assert [normalize_language(t) for t in ("en", "en-US", "EN_gb", "eng", "fre", "fra", "und", None)] == [
        "en", "en", "en", "en", "fr", "fr", None, None,
    ]  # fmt: skip


# --- sidecar files ------------------------------------------------------------------------------------------


def test_sidecars_preferred_language_then_plain_then_others(tmp_path: Path) -> None:
    video = tmp_path / "talk.mp4"
    video.write_bytes(b"")
    names = [
        "talk.fr.srt", "talk.srt", "talk.en-US.vtt", "talk.en.srt", "talk.en.forced.srt", "talk.eng.ass",
        "talk.vtt", "talk.part2.srt", "other.en.srt", "talk.en.txt", "talk.de.vtt",
    ]  # fmt: skip
    for name in names:
        (tmp_path / name).write_text(SRT)
    found = [p.name for p in find_sidecars(video)]
    assert found == [
        "talk.en.srt", "talk.en-US.vtt", "talk.eng.ass", "talk.en.forced.srt", "talk.srt", "talk.vtt",
        "talk.de.vtt", "talk.fr.srt",
    ]  # fmt: skip
    assert [p.name for p in find_sidecars(video, "fr")][:3] == ["talk.fr.srt", "talk.srt", "talk.vtt"]


def test_load_sidecar_cp1252_with_notice(tmp_path: Path, footage: Path) -> None:
    video = tmp_path / "clip.mp4"
    shutil.copy(footage, video)
    text = "1\r\n00:00:01,000 --> 00:00:02,000\r\nCafé – naïve “quotes”\r\n\r\n"
    (tmp_path / "clip.en.srt").write_bytes(text.encode("cp1252"))
    track, notices = load_subtitles(video, duration=4.0)
    assert track is not None
    assert (
        track.origin == "subtitles:sidecar clip.en.srt" and track.language == "en" and track.kind == "speech"
    )
    assert _spans(list(track.spans)) == [(1.0, 2.0, "Café – naïve “quotes”")]
    assert notices == ["clip.en.srt is not UTF-8; read as cp1252"]


def test_unusable_sidecars_become_notices_and_the_next_one_is_used(
    tmp_path: Path, footage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAMESEEK_MAX_SUBTITLE_MB", "1")
    video = tmp_path / "clip.mp4"
    shutil.copy(footage, video)
    (tmp_path / "clip.en.srt").write_bytes(b"x" * (1024 * 1024 + 1))
    (tmp_path / "clip.en.vtt").write_bytes(b"\x00\x01garbage")
    (tmp_path / "clip.srt").write_text("")
    (tmp_path / "clip.fr.vtt").write_text("WEBVTT\n\n00:01.000 --> 00:02.000\nBonjour\n")
    track, notices = load_subtitles(video, duration=4.0)
    assert track is not None and track.origin == "subtitles:sidecar clip.fr.vtt" and track.language == "fr"
    assert notices == [
        "clip.en.srt is larger than 1 MB; skipped (FRAMESEEK_MAX_SUBTITLE_MB raises the limit)",
        "clip.en.vtt is not a subtitle file (it holds binary data)",
        "clip.srt has no cues; skipped",
    ]


# --- embedded streams ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def subtitled(footage: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The footage with SRT_TEXTS embedded: mov_text in MP4, subrip (fre + eng) and ASS in MKV."""
    root = tmp_path_factory.mktemp("subtitled")
    srt, srt_fr = root / "s.srt", root / "s.fr.srt"
    srt.write_text(SRT)
    srt_fr.write_text("1\n00:00:01,000 --> 00:00:02,000\nBonjour\n\n")
    out = {"mp4": root / "mov_text.mp4", "mkv": root / "subrip.mkv", "ass": root / "ass.mkv"}
    _ffmpeg("-i", str(footage), "-i", str(srt), "-map", "0", "-map", "1", "-c", "copy", "-c:s", "mov_text",
            "-metadata:s:s:0", "language=eng", str(out["mp4"]))  # fmt: skip
    _ffmpeg("-i", str(footage), "-i", str(srt_fr), "-i", str(srt), "-map", "0", "-map", "1", "-map", "2",
            "-c", "copy", "-c:s", "srt", "-metadata:s:s:0", "language=fre", "-metadata:s:s:1", "language=eng",
            str(out["mkv"]))  # fmt: skip
    _ffmpeg("-i", str(footage), "-i", str(srt), "-map", "0", "-map", "1", "-c", "copy", "-c:s", "ass",
            str(out["ass"]))  # fmt: skip
    return out


def test_embedded_mov_text(subtitled: dict[str, Path]) -> None:
    streams = embedded_subtitle_streams(subtitled["mp4"])
    assert [(s.index, s.codec, s.language) for s in streams] == [(1, "mov_text", "eng")]
    found = read_embedded_subtitles(subtitled["mp4"])
    assert found is not None
    spans, origin = found
    assert origin == "subtitles:embedded stream 1 (mov_text, eng)"
    assert _spans(spans) == [(1.0, 3.5, SRT_TEXTS[0]), (5.0, 7.25, SRT_TEXTS[1])]


def test_embedded_subrip_in_mkv_prefers_the_language_and_uses_the_video_clock(
    subtitled: dict[str, Path],
) -> None:
    """MKV from ffmpeg starts H.264 at 0.046 s (decode delay); cues are timed from the video stream's start,
    like frames, so the cue written for 1.0 s reads 1.0 s."""
    found = read_embedded_subtitles(subtitled["mkv"], "en", duration=4.0)
    assert found is not None
    spans, origin = found
    assert origin.startswith("subtitles:embedded stream 2 (") and origin.endswith(", eng)")
    assert _spans(spans) == [(1.0, 3.5, SRT_TEXTS[0])]  # the 5 s cue is past the 4 s video
    french = read_embedded_subtitles(subtitled["mkv"], "fr")
    assert french is not None and french[1].endswith(", fre)") and french[0][0].text == "Bonjour"


def test_embedded_ass_and_load_order(subtitled: dict[str, Path], tmp_path: Path) -> None:
    track, notices = load_subtitles(subtitled["ass"], duration=10.0)
    assert track is not None and notices == []
    assert track.origin.startswith("subtitles:embedded stream 1 (") and track.language is None
    assert [s.text for s in track.spans] == SRT_TEXTS
    video = tmp_path / "both.mp4"  # a sidecar wins over the embedded stream
    shutil.copy(subtitled["mp4"], video)
    (tmp_path / "both.srt").write_text("1\n00:00:00,500 --> 00:00:01,000\nfrom the sidecar\n")
    track, _ = load_subtitles(video)
    assert track is not None and track.origin == "subtitles:sidecar both.srt" and track.language is None


def test_an_embedded_stream_muxed_by_pyav_is_read_without_the_ffmpeg_command(tmp_path: Path) -> None:
    """The embedded reader on an MKV whose SRT stream is copied in by PyAV (runs where ffmpeg is absent)."""
    video, srt, both = tmp_path / "video.mkv", tmp_path / "cues.srt", tmp_path / "both.mkv"
    make_video(video, seconds=8.0, fps=5)
    srt.write_text(SRT, encoding="utf-8")
    with av.open(str(video)) as vin, av.open(str(srt)) as sin, av.open(str(both), "w") as out:
        pairs = [
            (vin, vin.streams.video[0], out.add_stream_from_template(vin.streams.video[0])),
            (sin, sin.streams.subtitles[0], out.add_stream_from_template(sin.streams.subtitles[0])),
        ]
        pairs[1][2].metadata["language"] = "eng"
        for container, source, target in pairs:
            for packet in container.demux(source):
                if packet.dts is not None:
                    packet.stream = target
                    out.mux(packet)
    found = read_embedded_subtitles(both, "en", duration=8.0)
    assert found is not None
    spans, origin = found
    assert origin == "subtitles:embedded stream 1 (srt, eng)"
    assert [s.text for s in spans] == SRT_TEXTS
    assert [round(s.end - s.start, 3) for s in spans] == [2.5, 2.25]  # each cue's own duration


def test_no_subtitles_at_all(footage: Path) -> None:
    assert embedded_subtitle_streams(footage) == []
    assert read_embedded_subtitles(footage) is None
    assert load_subtitles(footage) == (None, [])


# --- captions of a link -------------------------------------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # yt-dlp closes the connection after reading the head of a video


@pytest.fixture(scope="module")
def site(footage: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A page with an HTML5 <video> and <track> captions (en, fr), served from 127.0.0.1."""
    root = tmp_path_factory.mktemp("site")
    shutil.copy(footage, root / "v.mp4")
    (root / "v.en.vtt").write_text("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHello from the page\n")
    (root / "v.fr.vtt").write_text("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nBonjour\n")
    (root / "big.vtt").write_text("WEBVTT\n\n" + "00:00:01.000 --> 00:00:03.000\nfiller words\n\n" * 30_000)
    tracks = (
        '<track kind="captions" srclang="en" src="v.en.vtt">'
        '<track kind="subtitles" srclang="fr" src="v.fr.vtt">'
    )
    (root / "page.html").write_text(
        f'<html><head><title>Talk</title></head><body><video src="v.mp4">{tracks}</video></body></html>'
    )
    big = '<track kind="captions" srclang="en" src="big.vtt">'
    (root / "big.html").write_text(f'<html><body><video src="v.mp4">{big}</video></body></html>')
    server = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.mark.usefixtures("no_proxy")
def test_fetch_captions_from_an_html5_track(site: str, fs_home: Path) -> None:
    dest = fs_home / "captions"
    got = fetch_captions(site + "page.html", dest)
    assert got == dest / "captions.en.vtt"
    assert [s.text for s in parse_subtitles(got.read_bytes(), got.name)] == ["Hello from the page"]
    french = fetch_captions(site + "page.html", dest, "fr")
    assert french is not None and french.name == "captions.fr.vtt"
    assert fetch_captions(site + "page.html", dest, "de") is None
    assert sorted(p.name for p in dest.iterdir()) == ["captions.en.vtt", "captions.fr.vtt"]  # no leftovers


@pytest.mark.usefixtures("no_proxy")
def test_fetch_captions_refusals(site: str, fs_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SourceError, match="only http:// and https://"):
        fetch_captions("file:///etc/passwd", fs_home)
    with pytest.raises(InputError, match="not a language code"):
        fetch_captions(site + "page.html", fs_home, "en/../../x")
    with pytest.raises(SourceError, match="404"):
        fetch_captions(site + "missing.html", fs_home)
    monkeypatch.setenv("FRAMESEEK_MAX_SUBTITLE_MB", "1")
    with pytest.raises(InputError, match="larger than 1 MB; skipped"):
        fetch_captions(site + "big.html", fs_home / "big")
    assert list((fs_home / "big").iterdir()) == []


def test_choose_captions_manual_first_exact_language_first_readable_formats_only() -> None:
    def fmt(ext: str, url: str = "https://example.com/c") -> dict[str, str]:
        return {"ext": ext, "url": f"{url}.{ext}"}

    info = {
        "subtitles": {"en-GB": [fmt("vtt")], "fr": [fmt("vtt")]},
        "automatic_captions": {"en": [fmt("json3"), fmt("srt"), fmt("vtt")], "en-orig": [fmt("vtt")]},
    }
    assert choose_captions(info, "en") == ("en-GB", fmt("vtt"))
    info["subtitles"]["en"] = [fmt("json3"), fmt("srt")]
    assert choose_captions(info, "en") == ("en", fmt("srt"))
    info["subtitles"] = {"en": [fmt("ttml"), fmt("vtt", "file:///etc/passwd")]}
    assert choose_captions(info, "en") == ("en", fmt("vtt"))  # unreadable manual ones: the automatic track
    assert choose_captions({"automatic_captions": {"en": [fmt("vtt", "ftp://x/c")]}}, "en") is None
    assert choose_captions({}, "en") is None
