"""The options several commands share: their typer declarations, the values built from them (sampling,
text tracks), the checks that need no model, and the one lazy import of ``frameseek.api``.

``frameseek --help`` imports this module but never ``frameseek.api`` (the search stack, editors' exports,
PyAV): a command imports the API in its body, through ``load_api``, once typer has parsed its options.
"""

from __future__ import annotations

import gc
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from frameseek.api import MomentQuery, Sampling, TrackOptions

DEFAULT_MODEL = "auto"
"""``api.DEFAULT_MODEL``, written out so that ``--help`` needs no import of the API (a test keeps the two
equal)."""

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Preset name (see `frameseek models`), checkpoint folder, or auto: a CLIP preset whose weights "
        "are in the local Hugging Face cache, else lite.",
    ),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device",
        help="Where the model runs: auto (default: the first CUDA GPU, else Apple MPS, else the CPU; "
        "or $FRAMESEEK_DEVICE), cpu, cuda, cuda:N or mps.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")]
LibraryNameOpt = Annotated[str, typer.Option("--library-name", help="Which library.")]
MinConfidenceOpt = Annotated[
    float,
    typer.Option(
        "--min-confidence",
        help="Only moments whose confidence (0-1, the estimated probability that the moment matches) "
        "reaches this.",
    ),
]
ThenOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--then",
        help="A next step: moments where QUERY is followed by this (repeat for A, then B, then C).",
    ),
]
WithinOpt = Annotated[
    float | None,
    typer.Option("--within", help="--then: at most N seconds from one step's end to the next step's start."),
]
MinDurationOpt = Annotated[
    float | None, typer.Option("--min-duration", help="Only moments that last at least N seconds.")
]
CountOpt = Annotated[bool, typer.Option("--count", help="How many distinct moments match, and each of them.")]
FirstOpt = Annotated[bool, typer.Option("--first", help="Only the earliest moment that matches.")]
LastOpt = Annotated[bool, typer.Option("--last", help="Only the latest moment that matches.")]
WhileOpt = Annotated[
    str | None,
    typer.Option(
        "--while", help="Only where QUERY and this happen at the same time (seen, said or written)."
    ),
]
FpsOpt = Annotated[float, typer.Option("--fps", help="Frames sampled per second of video.")]
SceneOpt = Annotated[
    bool, typer.Option("--scene", help="Sample at shot changes (+ one frame every --scene-gap s).")
]
SceneGapOpt = Annotated[float, typer.Option(help="Scene mode: at least one frame every N seconds.")]
ExactOpt = Annotated[
    bool,
    typer.Option(
        "--exact-frames",
        help="Keep the very first frame at or after each grid time (default: when sampling sparsely, "
        "non-reference B-frames are not decoded, so a sample may be a few frames later; times are the "
        "frames' exact PTS either way).",
    ),
]
SpeechOpt = Annotated[
    bool,
    typer.Option(
        "--speech",
        help="Also search what is said: offline speech recognition (Whisper) when there are no subtitles.",
    ),
]
OcrOpt = Annotated[
    bool, typer.Option("--ocr", help="Also search text on screen (OCR where the picture changes).")
]
SubLangOpt = Annotated[str, typer.Option("--sub-lang", help="Language of subtitles and captions to use.")]
SubtitlesOpt = Annotated[
    bool,
    typer.Option("--subtitles/--no-subtitles", help="Use subtitles and captions that come with a video."),
]
AsrModelOpt = Annotated[
    str,
    typer.Option(
        "--asr-model",
        help="Speech model: base (packaged, offline), a faster-whisper hub name (e.g. small) or a folder.",
    ),
]
SpeechLanguageOpt = Annotated[
    str | None,
    typer.Option(
        "--speech-language",
        help="Force the speech language (an ISO 639-1 code Whisper knows: en, de, es, fr, zh, ...) "
        "where its detection is wrong; default: detected per video.",
    ),
]


def load_api() -> None:
    """Import ``frameseek.api`` (the search stack; no torch) with the cycle collector paused, then freeze
    what it created, as ``api.heavy_imports`` does around torch: the import took ~300 ms instead of ~350
    (medians of 5 on 2 shared cores). Call it first in a command's body, then ``from frameseek import api``."""
    if "frameseek.api" in sys.modules:
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        importlib.import_module("frameseek.api")
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def moment_query(
    query: str | None,
    then: list[str] | None,
    within: float | None,
    min_duration: float | None,
    count: bool,
    first: bool,
    last: bool,
    while_: str | None,
) -> MomentQuery | None:
    """The order / duration / count / overlap options as one validated ``MomentQuery`` (None when none
    is given): an invalid combination fails here, before any model loads."""
    from frameseek import api

    asked = bool(then) or within is not None or min_duration is not None or count or first or last
    if not asked and while_ is None:
        return None
    if query is None:
        raise api.InputError(
            "--then, --within, --min-duration, --count, --first, --last and --while need a text QUERY"
        )
    return api.MomentQuery.of(
        query,
        then=then or (),
        within=within,
        min_duration=min_duration,
        count=count,
        first=first,
        last=last,
        while_=while_,
        max_chars=api.limits().max_query_chars,
    )


def tracks(
    speech: bool,
    ocr: bool,
    subtitles: bool,
    sub_lang: str,
    asr_model: str,
    speech_language: str | None = None,
) -> TrackOptions:
    """The text-track options as one validated value."""
    from frameseek import api

    return api.TrackOptions(
        subtitles=subtitles,
        speech=speech,
        ocr=ocr,
        sub_lang=sub_lang,
        asr_model=asr_model,
        speech_language=speech_language,
    )


def sampling(
    fps: float,
    scene: bool = False,
    scene_gap: float = 10.0,
    start: float | None = None,
    end: float | None = None,
    max_frames: int | None = None,
    exact_frames: bool = False,
) -> Sampling:
    """The sampling options as one validated value (an impossible one fails before any model loads)."""
    from frameseek import api

    return api.Sampling(
        fps=fps,
        scene=scene,
        scene_max_gap=scene_gap,
        start=start,
        end=end,
        max_frames=max_frames,
        fast_decode=not exact_frames,
    )


def precheck_sources(sources: list[str]) -> None:
    """Fail fast, before the model is loaded, on what needs no model to be refused.

    A link must be http(s) (it is only downloaded later, by the Searcher, which records the download's
    metrics); a path must exist; a single video file must open and hold a decodable first frame. The
    Searcher checks all of this again, so skipping a check here never lets bad input through.
    """
    from frameseek import api

    for source in sources:
        if api.is_link(source):
            api.check_url(source)
            continue
        found = api.resolve(source)
        if len(found) == 1 and Path(source.strip()).expanduser().is_file():
            api.probe(found[0].path)
