"""The fuzzing harness: generated values thrown at every input of every door (property-based, Hypothesis).

- CLI options of ``frameseek search`` / ``index`` / ``transcript`` (numbers at the float limits, NaN/Inf,
  huge, negative; strings with control characters, lone surrogates, right-to-left text), in process through
  ``frameseek.cli.main``, on a small real indexed video;
- the service's JSON bodies (every field of /search, /index and /edits, with every JSON type), against one
  real server on 127.0.0.1 started once for the module;
- media: containers made with ffmpeg from real footage (bikes.mp4 cut to 2 s, with an SRT or ASS subtitle
  stream and an audio stream), byte-mutated, then searched with subtitles on;
- query images in six formats (PNG, JPEG, WebP, GIF, BMP, TIFF), byte-mutated, through
  ``frameseek.api.load_query_image`` and the service's image query.

The properties: exit code 0 or a documented one (2-6) with no traceback and no "unexpected" error; never a
500, every 4xx carries ``{"error": "..."}``, and the server still answers /health on the same connection;
nothing half-written left in FRAMESEEK_HOME.

The bounded run (part of the suite) is derandomised: the same cases every run. A longer, random run:
``FRAMESEEK_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_fuzz_doors.py`` (docs/RELIABILITY.md).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from frameseek.api import FrameseekError, load_query_image
from frameseek.cli import main
from service_support import TOKEN, Server, start_server
from videos import require_bikes, require_ffmpeg

LONG_RUN = int(os.environ.get("FRAMESEEK_FUZZ_EXAMPLES", "0") or 0)
"""Examples per property for a long run (random); 0: the bounded run (derandomised, the counts below)."""

DOCUMENTED_EXIT_CODES = {0, 2, 3, 4, 5, 6}


def tally(outcome: str) -> None:
    """Tally an outcome for ``--hypothesis-show-statistics`` (inside a generated case only)."""
    if currently_in_test_context():
        event(outcome)


def fuzz_settings(bounded: int) -> settings:
    """``bounded`` examples in the suite's run, ``FRAMESEEK_FUZZ_EXAMPLES`` in a long one."""
    return settings(
        max_examples=LONG_RUN or bounded,
        deadline=None,
        derandomize=not LONG_RUN,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# --- values ------------------------------------------------------------------------------------------

EDGE_NUMBERS = [
    "nan", "NaN", "inf", "-inf", "Infinity", "1e308", "1.7976931348623157e308", "1e309", "-1e309", "5e-324",
    "-0", "0", "-1", "1e15", "1e305", "9" * 400, "0x10", "1_000", "", " ", "1,5", "½", "٣",
]  # fmt: skip
"""Spelled numbers the parsers see at their limits (float overflow, denormals, other scripts' digits)."""

EDGE_TEXT = [
    "\u202eevil\u202c", "مرحبا بالعالم", "שלום", "\u200f\u200e", "a\x00b", "\x1b[31mred", "\r\n", "\t",
    "\ud800", "a\udfffb", "\ufeff", "🚲🚲", "e\u0301" * 50, "%s%n", "../../etc/passwd", "'; DROP TABLE", " ",
]  # fmt: skip
"""Control characters, lone surrogates, bidi overrides, right-to-left scripts, combining marks."""


def numbers() -> st.SearchStrategy[str]:
    """A number as the command line gets it: a float (NaN, ±Inf, huge, tiny, negative), an int, or text."""
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(min_value=-(10**40), max_value=10**40).map(str),
        st.floats(min_value=0, max_value=200, allow_nan=False).map(lambda x: f"{x:.3g}"),
        st.sampled_from(EDGE_NUMBERS),
    )


def texts() -> st.SearchStrategy[str]:
    """Any Unicode (lone surrogates included), or one of the edge strings."""
    return st.one_of(
        st.text(st.characters(exclude_categories=()), min_size=0, max_size=40),
        st.sampled_from(EDGE_TEXT),
    )


def json_values() -> st.SearchStrategy[Any]:
    """Every JSON type, nested a little; floats include NaN and ±Infinity (Python's JSON writes them)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        texts(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
        ),
        max_leaves=6,
    )


# --- the real inputs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_home(tmp_path_factory: pytest.TempPathFactory, _joined_mpnet: Path | None) -> Iterator[Path]:
    """One FRAMESEEK_HOME for the module (the model and the clip's index load once)."""
    home = tmp_path_factory.mktemp("fuzz-home")
    if _joined_mpnet is not None:
        (home / "models").mkdir()
        (home / "models" / _joined_mpnet.name).symlink_to(_joined_mpnet, target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESEEK_HOME", str(home))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.delenv("FRAMESEEK_DEBUG", raising=False)
        yield home


def _ffmpeg(*args: str) -> None:
    subprocess.run([require_ffmpeg(), "-v", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bikes.mp4 cut to 2 s (320 px), as MP4, and as MKVs with an audio stream and an SRT or ASS stream."""
    bikes = require_bikes()
    folder = tmp_path_factory.mktemp("fuzz-media")
    clip = folder / "clip.mp4"
    _ffmpeg("-t", "2", "-i", str(bikes), "-vf", "scale=320:-2", "-c:v", "libx264", "-preset", "veryfast",
            "-g", "10", "-an", str(clip))  # fmt: skip
    (folder / "subs.srt").write_text(
        "1\n00:00:00,200 --> 00:00:01,000\na person rides a bike\n\n"
        "2\n00:00:01,000 --> 00:00:01,900\nمرحبا \u202ebidi\u202c\n\n",
        encoding="utf-8",
    )
    (folder / "subs.ass").write_text(
        "[Script Info]\nScriptType: v4.00+\nPlayResX: 320\nPlayResY: 180\n\n[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
        "Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
        "Alignment, MarginL, MarginR, MarginV, Encoding\n"
        "Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,"
        "10,10,10,1\n\n[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        "Dialogue: 0,0:00:00.20,0:00:01.00,Default,,0,0,0,,a person rides a bike\n"
        "Dialogue: 0,0:00:01.00,0:00:01.90,Default,,0,0,0,,{\\i1}two wheels{\\i0}\n",
        encoding="utf-8",
    )
    tone = ["-f", "lavfi", "-t", "2", "-i", "sine=frequency=440:sample_rate=16000"]
    for name, subs, codec in (("srt.mkv", "subs.srt", "srt"), ("ass.mkv", "subs.ass", "ass")):
        _ffmpeg("-i", str(clip), *tone, "-i", str(folder / subs), "-map", "0:v", "-map", "1:a", "-map", "2",
                "-c:v", "copy", "-c:a", "aac", "-c:s", codec, str(folder / name))  # fmt: skip
    _ffmpeg("-i", str(clip), *tone, "-i", str(folder / "subs.srt"), "-map", "0:v", "-map", "1:a", "-map", "2",
            "-c:v", "copy", "-c:a", "aac", "-c:s", "mov_text", str(folder / "text.mp4"))  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def indexed_clip(media: Path, fuzz_home: Path) -> Path:
    """The 2 s clip, indexed once with the default settings (most generated searches reuse it)."""
    clip = media / "clip.mp4"
    code, _, err = run_cli(["index", str(clip)])
    assert code == 0, err
    return clip


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``frameseek.cli.main(argv)`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out.getvalue(), err.getvalue()


def half_written(home: Path) -> list[str]:
    """Temporary files and folders left in FRAMESEEK_HOME (``.<name>.<random>.tmp``, ``.thumbs-…``)."""
    left = [p for p in home.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".thumbs-")]
    return sorted(str(p.relative_to(home)) for p in left if not p.is_symlink())


def check_cli(argv: list[str], home: Path) -> None:
    code, _, err = run_cli(argv)
    tally(f"exit {code}")  # --hypothesis-show-statistics: how the cases ended
    assert code in DOCUMENTED_EXIT_CODES, (argv, code, err)
    assert "Traceback" not in err and "unexpected" not in err, (argv, err)
    if code != 0:  # one `error:` line, also for an option click cannot parse (no usage panel)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)
    assert half_written(home) == [], argv


# --- CLI -----------------------------------------------------------------------------------------------

SEARCH_NUMBERS = ["--top-k", "--fps", "--scene-gap", "--start", "--end", "--max-frames", "--min-gap",
                  "--min-confidence", "--within", "--min-duration", "--text-weight"]  # fmt: skip
SEARCH_TEXTS = ["--then", "--while", "--sub-lang", "--device"]
INDEX_NUMBERS = ["--fps", "--scene-gap", "--start", "--end", "--max-frames"]
INDEX_TEXTS = ["--sub-lang", "--library", "--device"]
TRANSCRIPT_TEXTS = ["--format", "--sub-lang"]


def options(names_numbers: list[str], names_texts: list[str]) -> st.SearchStrategy[list[str]]:
    """One to three options, each with a generated value."""
    one = st.one_of(
        st.tuples(st.sampled_from(names_numbers), numbers()) if names_numbers else st.nothing(),
        st.tuples(st.sampled_from(names_texts), texts()),
    )
    return st.lists(one, min_size=1, max_size=3).map(lambda pairs: [x for pair in pairs for x in pair])


def test_a_query_with_an_undecodable_byte_is_searched(indexed_clip: Path, fuzz_home: Path) -> None:
    """Found by this harness: ``frameseek search v.mp4 $'a \\xff bike'`` gives Python a lone surrogate
    (``\\udcff``), which the tokenizer refused with "unexpected TypeError", exit 1."""
    code, out, err = run_cli(["search", str(indexed_clip), "a \udcff bike", "--json"])
    assert code == 0, err
    assert json.loads(out)["query"] == "a \ufffd bike"


@fuzz_settings(100)
@given(query=texts(), opts=options(SEARCH_NUMBERS, SEARCH_TEXTS))
def test_search_options_give_a_result_or_a_documented_error(
    indexed_clip: Path, fuzz_home: Path, query: str, opts: list[str]
) -> None:
    check_cli(["search", str(indexed_clip), query, *opts], fuzz_home)


@fuzz_settings(40)
@given(opts=options(INDEX_NUMBERS, INDEX_TEXTS))
def test_index_options_give_a_result_or_a_documented_error(
    indexed_clip: Path, fuzz_home: Path, opts: list[str]
) -> None:
    check_cli(["index", str(indexed_clip), *opts], fuzz_home)


@fuzz_settings(30)
@given(opts=options([], TRANSCRIPT_TEXTS))
def test_transcript_options_give_a_result_or_a_documented_error(
    media: Path, fuzz_home: Path, opts: list[str]
) -> None:
    check_cli(["transcript", str(media / "srt.mkv"), *opts], fuzz_home)


# --- media ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("container", ["srt.mkv", "ass.mkv", "text.mp4"])
def test_the_unmutated_containers_are_searched_and_transcribed(
    media: Path, fuzz_home: Path, container: str
) -> None:
    """The baseline the mutations start from: each container's subtitles are read and searched."""
    code, out, err = run_cli(["transcript", str(media / container)])
    assert code == 0, err
    assert "a person rides a bike" in out
    check_cli(["search", str(media / container), "a person rides a bike"], fuzz_home)


def mutate(data: bytes, seed: int, count: int) -> bytes:
    """``count`` seeded mutations: flipped bits, zeroed or shuffled runs, a duplicated chunk, a cut."""
    rng = random.Random(seed)
    buf = bytearray(data)
    for _ in range(count):
        kind = rng.randrange(5)
        at = rng.randrange(len(buf)) if buf else 0
        if kind == 0:
            for _ in range(rng.randint(1, 16)):
                i = rng.randrange(len(buf))
                buf[i] ^= 1 << rng.randrange(8)
        elif kind == 1:
            buf[at : at + rng.randint(1, 256)] = bytes(min(len(buf) - at, rng.randint(1, 256)))
        elif kind == 2:
            run = buf[at : at + rng.randint(2, 64)]
            buf[at : at + len(run)] = bytes(rng.sample(list(run), len(run)))
        elif kind == 3:
            buf[at:at] = buf[at : at + rng.randint(1, 512)]
        else:
            del buf[max(64, at) :]
    return bytes(buf)


CONTAINERS = ["srt.mkv", "ass.mkv", "text.mp4", "clip.mp4"]


@fuzz_settings(40)
@given(container=st.sampled_from(CONTAINERS), seed=st.integers(0, 2**32 - 1), count=st.integers(1, 4))
def test_mutated_containers_give_a_result_or_a_documented_error(
    media: Path,
    fuzz_home: Path,
    tmp_path_factory: pytest.TempPathFactory,
    container: str,
    seed: int,
    count: int,
) -> None:
    source = media / container
    mutated = tmp_path_factory.mktemp("mutated") / f"m{seed}-{count}{source.suffix}"
    mutated.write_bytes(mutate(source.read_bytes(), seed, count))
    check_cli(["search", str(mutated), "a person on a bike", "--subtitles"], fuzz_home)


# --- images --------------------------------------------------------------------------------------------

IMAGE_FORMATS = ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"]


@pytest.fixture(scope="module")
def images(media: Path) -> dict[str, bytes]:
    """A frame of the clip in every format (RGBA where the format keeps transparency)."""
    import av

    with av.open(str(media / "clip.mp4")) as container:
        frame = next(container.decode(video=0)).to_image().resize((96, 54))
    encoded: dict[str, bytes] = {}
    for fmt in IMAGE_FORMATS:
        picture = frame.convert("RGBA") if fmt in {"PNG", "WEBP", "TIFF"} else frame
        buf = io.BytesIO()
        picture.save(buf, format=fmt)
        encoded[fmt] = buf.getvalue()
    return encoded


@fuzz_settings(300)
@given(fmt=st.sampled_from(IMAGE_FORMATS), seed=st.integers(0, 2**32 - 1), count=st.integers(0, 4))
def test_mutated_images_load_or_give_one_input_error(
    images: dict[str, bytes], fmt: str, seed: int, count: int
) -> None:
    data = mutate(images[fmt], seed, count) if count else images[fmt]
    try:
        picture = load_query_image(data, max_pixels=4096 * 4096)
    except FrameseekError as exc:
        tally("InputError")
        assert exc.exit_code == 2 and "\n" not in str(exc)
    else:
        tally("loaded")
        assert picture.mode == "RGB" and picture.width * picture.height > 0
    if count == 0:
        assert isinstance(load_query_image(data), Image.Image)


# --- the service ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(media: Path, fuzz_home: Path) -> Iterator[Server]:
    home = fuzz_home / "service"
    (home / "models").mkdir(parents=True)
    joined = fuzz_home / "models"
    for model in joined.iterdir() if joined.is_dir() else ():  # the packaged mpnet, already joined
        (home / "models" / model.name).symlink_to(model.resolve(), target_is_directory=True)
    # no rate limit here: the harness sends hundreds of requests a second on purpose
    running = start_server(home, media=[media], extra=["--rate-limit", "100000", "--rate-burst", "100000"])
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    """One keep-alive connection for every request of the module."""
    with server.client(TOKEN) as c:
        yield c


SEARCH_FIELDS = [
    "source", "library", "query", "image", "text_weight", "top_k", "min_gap", "min_confidence", "start",
    "end", "max_frames", "refine", "then", "within", "min_duration", "count", "first", "last", "while",
    "fps", "scene", "scene_gap", "exact_frames", "speech", "ocr", "subtitles", "sub_lang", "unknown_field",
]  # fmt: skip
INDEX_FIELDS = ["sources", "library", "fps", "scene", "scene_gap", "exact_frames", "subtitles", "sub_lang",
                "speech", "ocr", "unknown_field"]  # fmt: skip
EDIT_FIELDS = ["clips", "format", "pad_before", "pad_after", "query", "unknown_field"]


def overrides(fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """One to three fields of a valid body replaced (or removed: ``...``) by generated JSON values."""
    return st.dictionaries(
        st.sampled_from(fields), st.one_of(json_values(), st.just(...)), min_size=1, max_size=3
    )


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST ``body`` as JSON (NaN and Infinity written as Python's JSON writes them)."""
    content = json.dumps({k: v for k, v in body.items() if v is not ...}, allow_nan=True)
    return client.post(path, content=content, headers={"Content-Type": "application/json"})


def check_answer(client: httpx.Client, response: httpx.Response, body: dict[str, Any]) -> None:
    tally(f"status {response.status_code}")  # --hypothesis-show-statistics: how the requests ended
    assert response.status_code < 500, (body, response.status_code, response.text[:500])
    if response.status_code >= 400:
        error = response.json().get("error")
        assert isinstance(error, str) and error.strip(), (body, response.text[:500])
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["ready"], body


@fuzz_settings(100)
@given(changes=overrides(SEARCH_FIELDS))
def test_search_bodies_never_get_a_500(client: httpx.Client, media: Path, changes: dict[str, Any]) -> None:
    body: dict[str, Any] = {"source": str(media / "clip.mp4"), "query": "a bike", **changes}
    check_answer(client, post(client, "/search", body), body)


@fuzz_settings(40)
@given(changes=overrides(INDEX_FIELDS))
def test_index_bodies_never_get_a_500(client: httpx.Client, media: Path, changes: dict[str, Any]) -> None:
    body: dict[str, Any] = {"sources": [str(media / "clip.mp4")], "library": "fuzz", **changes}
    response = post(client, "/index", body)
    check_answer(client, response, body)
    if response.status_code == 202:  # the job ends (done or failed), never "internal error"
        job_id = response.json()["id"]
        client.post(f"/jobs/{job_id}/cancel")


@fuzz_settings(40)
@given(changes=overrides(EDIT_FIELDS))
def test_edit_bodies_never_get_a_500(client: httpx.Client, changes: dict[str, Any]) -> None:
    body: dict[str, Any] = {"clips": ["not-a-clip-id"], "format": "edl", **changes}
    check_answer(client, post(client, "/edits", body), body)


@fuzz_settings(30)
@given(fmt=st.sampled_from(IMAGE_FORMATS), seed=st.integers(0, 2**32 - 1), count=st.integers(0, 3))
def test_mutated_query_images_never_get_a_500(
    client: httpx.Client, media: Path, images: dict[str, bytes], fmt: str, seed: int, count: int
) -> None:
    data = mutate(images[fmt], seed, count) if count else images[fmt]
    body = {"source": str(media / "clip.mp4"), "image": base64.b64encode(data).decode()}
    response = post(client, "/search", body)
    check_answer(client, response, {"format": fmt, "seed": seed, "count": count})
    if count == 0:
        assert response.status_code == 200, response.text[:500]
