"""Speech recognition: the packaged Whisper base model, model names, and transcripts of real narration.

Narration is synthesised with espeak-ng and muxed with ffmpeg at known offsets (adelay / -itsoffset), so
each sentence's start is known to within espeak's ~13 ms of leading silence.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from frameseek.errors import InputError, ModelError
from frameseek.text import speech
from frameseek.text.speech import (
    NoAudioError,
    has_audio,
    packaged_whisper_dir,
    resolve_asr_model,
    transcribe,
)
from videos import BIKES, require_ffmpeg  # tests/ is on sys.path (like conftest)

SENTENCES = (
    (1.0, "The red bicycle is parked beside the river.", ("river", "parked")),
    (5.5, "Seven purple elephants are dancing in the kitchen.", ("kitchen", "purple")),
)
"""(offset in seconds, sentence, keywords of which one must be heard) of the narrated clip."""

MODEL_BYTES = 145_217_532


def _ffmpeg(*args: str) -> None:
    subprocess.run([require_ffmpeg(), "-v", "error", "-y", *args], check=True, timeout=60)


def _espeak(text: str, out: Path) -> Path:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed")
    subprocess.run([espeak, "-w", str(out), text], check=True, timeout=60)
    return out


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``narrated`` (10 s, SENTENCES), ``late`` (audio starts 2 s after the video), ``silent``, ``mute``."""
    root = tmp_path_factory.mktemp("speech-media")
    footage = root / "footage.mp4"
    if BIKES.is_file():
        _ffmpeg("-i", str(BIKES), "-an", "-c", "copy", str(footage))
    else:
        _ffmpeg(
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x90:rate=25:duration=10",
            "-pix_fmt",
            "yuv420p",
            str(footage),
        )
    waves = [_espeak(text, root / f"s{i}.wav") for i, (_, text, _) in enumerate(SENTENCES)]
    delays = ";".join(
        f"[{i + 1}]adelay={round(t * 1000)}:all=1[a{i}]" for i, (t, _, _) in enumerate(SENTENCES)
    )
    mix = "".join(f"[a{i}]" for i in range(len(SENTENCES)))
    graph = f"{delays};{mix}amix=inputs={len(SENTENCES)}:duration=longest:normalize=0,apad[out]"
    out = {"narrated": root / "narrated.mp4", "late": root / "late.mkv", "silent": root / "silent.mp4"}
    inputs = [arg for w in waves for arg in ("-i", str(w))]
    _ffmpeg("-i", str(footage), *inputs, "-filter_complex", graph, "-map", "0:v", "-map", "[out]",
            "-c:v", "copy", "-c:a", "aac", "-shortest", str(out["narrated"]))  # fmt: skip
    _ffmpeg("-t", "4", "-i", str(footage), "-itsoffset", "2.0", "-i", str(waves[0]),
            "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(out["late"]))  # fmt: skip
    _ffmpeg("-t", "3", "-i", str(footage), "-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-map", "0:v",
            "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(out["silent"]))  # fmt: skip
    out["mute"] = footage
    return out


@pytest.fixture(scope="module")
def whisper_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One FRAMESEEK_HOME for the recognition tests, so the 145 MB model is joined (and loaded) once."""
    home = tmp_path_factory.mktemp("whisper-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESEEK_HOME", str(home))
        packaged_whisper_dir()
        yield home


# --- the packaged model -------------------------------------------------------------------------------------


def _leftovers(models: Path) -> list[str]:
    known = ("whisper-base", "whisper-base.lock", "all-mpnet-base-v2")  # the last: linked in by fs_home
    return sorted(p.name for p in models.iterdir() if p.name not in known)


@pytest.mark.slow
def test_packaged_model_is_joined_once_and_reused(fs_home: Path) -> None:
    folder = packaged_whisper_dir()
    assert folder == fs_home / "models" / "whisper-base"
    assert (folder / "model.bin").stat().st_size == MODEL_BYTES
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert packaged_whisper_dir() == folder and (folder / "model.bin").stat().st_mtime_ns == stamp
    # a damaged copy (cut short) and a killed writer's temporary folder are replaced / removed
    with open(folder / "model.bin", "r+b") as handle:
        handle.truncate(1000)
    (folder.parent / ".whisper-base.abcd1234.tmp").mkdir()
    assert (packaged_whisper_dir() / "model.bin").stat().st_size == MODEL_BYTES
    assert _leftovers(folder.parent) == []


@pytest.mark.slow
def test_two_processes_racing_to_join_the_model(fs_home: Path) -> None:
    code = "from frameseek.text.speech import packaged_whisper_dir as p; print(p())"
    env = {**os.environ, "FRAMESEEK_HOME": str(fs_home)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120)[0].strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    assert outputs == [str(fs_home / "models" / "whisper-base")] * 2
    assert (fs_home / "models" / "whisper-base" / "model.bin").stat().st_size == MODEL_BYTES
    assert _leftovers(fs_home / "models") == []


def test_model_names(whisper_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packaged = str(whisper_home / "models" / "whisper-base")
    assert resolve_asr_model("base") == resolve_asr_model(" whisper-base ") == packaged
    assert resolve_asr_model(packaged) == packaged  # a local folder is used as is
    with pytest.raises(ModelError, match=r"no model\.bin"):
        resolve_asr_model(str(tmp_path))
    with pytest.raises(ModelError, match="folder not found"):
        resolve_asr_model("./no/such/folder")
    with pytest.raises(ModelError, match="unknown speech model 'gigantic'"):
        resolve_asr_model("gigantic")
    import huggingface_hub.constants  # read at import: set as HF_HUB_OFFLINE=1 and an empty HF cache would

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    for name in ("small", "Systran/faster-whisper-small"):
        with pytest.raises(ModelError, match=r"not in the local cache .*'base' works offline") as caught:
            resolve_asr_model(name)
        assert "\n" not in str(caught.value)


# --- recognition --------------------------------------------------------------------------------------------


def test_no_audio_stream(media: dict[str, Path]) -> None:
    assert has_audio(media["narrated"]) and not has_audio(media["mute"])
    with pytest.raises(
        NoAudioError, match=r"footage\.mp4 has no audio stream; speech search skipped"
    ) as caught:
        transcribe(media["mute"], model="no-such-model-is-loaded-first")
    assert isinstance(caught.value, InputError)


@pytest.mark.slow
@pytest.mark.usefixtures("whisper_home")
def test_narrated_sentences_are_heard_at_their_times(media: dict[str, Path]) -> None:
    calls: list[tuple[float, float | None]] = []
    track = transcribe(media["narrated"], threads=2, progress=lambda done, total: calls.append((done, total)))
    assert track.kind == "speech" and track.origin == "asr:whisper-base" and track.language == "en"
    assert set(track.info) == {"model", "audio_seconds", "seconds", "language_probability", "language_forced"}
    assert track.info["model"] == "base" and track.info["audio_seconds"] == pytest.approx(10.0, abs=0.3)
    for offset, sentence, keywords in SENTENCES:
        heard = [s for s in track.spans if any(k in s.text.lower() for k in keywords)]
        assert len(heard) == 1, (sentence, track.spans)
        span = heard[0]
        assert abs(span.start - offset) <= 1.0, (sentence, span)  # measured: 0.35 s early / 0.15 s early
        assert span.start < span.end <= offset + 3.5, (sentence, span)  # espeak speaks each in ~2.5 s
    total = pytest.approx(track.info["audio_seconds"], abs=0.001)
    assert calls[0] == (0.0, total) and calls[-1] == (total, total)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


@pytest.mark.slow
@pytest.mark.usefixtures("whisper_home")
def test_audio_starting_after_the_video_is_shifted(media: dict[str, Path]) -> None:
    """The MKV's audio starts at 1.954 s (2.0 s less AAC priming) while its video starts at 0."""
    track = transcribe(media["late"], threads=2, language="en")
    heard = [s for s in track.spans if "river" in s.text.lower() or "parked" in s.text.lower()]
    assert len(heard) == 1 and abs(heard[0].start - 2.0) <= 1.0, track.spans
    assert track.language == "en"


@pytest.mark.slow
def test_silence_gives_no_spans_and_the_model_is_loaded_once(
    media: dict[str, Path], whisper_home: Path
) -> None:
    track = transcribe(media["silent"], threads=2)
    assert track.spans == () and track.language is None and track.info["language_probability"] is None
    assert track.info["audio_seconds"] == pytest.approx(3.0, abs=0.1)
    transcribe(media["silent"], threads=2)
    # other test files may have loaded the model from their own home: count only this home's copies
    ours = [key for key in speech._models if key[1] == 2 and key[0].startswith(str(whisper_home))]
    assert len(ours) == 1, list(speech._models)
    with pytest.raises(InputError, match="unknown speech language 'klingon'"):
        transcribe(media["silent"], threads=2, language="klingon")
