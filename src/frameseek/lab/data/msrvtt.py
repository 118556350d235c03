"""MSR-VTT video-caption annotations: the official videodatainfo JSON and the 1k-A JSFUSION CSV."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frameseek.errors import InputError

MSRVTT_SPLITS: tuple[str, ...] = ("train", "validate", "test", "all")
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".webm", ".mkv", ".avi", ".mov")
_SPLIT_ALIASES = {"val": "validate", "dev": "validate", "valid": "validate", "validation": "validate"}
_JSFUSION_COLUMNS = ("key", "vid_key", "video_id", "sentence")


@dataclass(frozen=True)
class VideoCaptions:
    """One clip and its human captions."""

    video_id: str
    path: Path
    captions: list[str]
    split: str


def _video_files(videos_dir: Path) -> dict[str, Path]:
    """Map each video file's stem to its path (first matching suffix in VIDEO_SUFFIXES order wins)."""
    if not videos_dir.is_dir():
        raise InputError(f"MSR-VTT video folder not found: {videos_dir}")
    priority = {suffix: rank for rank, suffix in enumerate(VIDEO_SUFFIXES)}
    entries = sorted(
        (entry for entry in videos_dir.iterdir() if entry.suffix.lower() in priority),
        key=lambda entry: (entry.stem, priority[entry.suffix.lower()]),
    )
    files: dict[str, Path] = {}
    for entry in entries:
        files.setdefault(entry.stem, entry)
    return files


def _normalise_split(split: str | None) -> str:
    """Validate an MSR-VTT split name; None means all, and val/dev mean validate."""
    if split is None:
        return "all"
    name = _SPLIT_ALIASES.get(split.strip().lower(), split.strip().lower())
    if name not in MSRVTT_SPLITS:
        raise InputError(f"unknown MSR-VTT split {split!r}; expected one of {', '.join(MSRVTT_SPLITS)}")
    return name


def _load_json(path: Path) -> Any:
    """Parse a JSON file, turning failures into one-line InputErrors."""
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise InputError(f"cannot read MSR-VTT annotations {path}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from exc


def load_msrvtt(annotations: Path, videos_dir: Path, split: str | None = None) -> list[VideoCaptions]:
    """Load clips of one split (train / validate / test / all) whose video file exists, in annotation order."""
    annotations, videos_dir = Path(annotations), Path(videos_dir)
    wanted = _normalise_split(split)
    data = _load_json(annotations)
    if not isinstance(data, dict) or "videos" not in data or "sentences" not in data:
        raise InputError(
            f"{annotations.name} is not an MSR-VTT annotation file (needs 'videos' and 'sentences')"
        )
    captions: dict[str, list[str]] = {}
    for sentence in data["sentences"]:
        text = " ".join(str(sentence.get("caption", "")).split())
        if text:
            captions.setdefault(str(sentence["video_id"]), []).append(text)
    in_split = [v for v in data["videos"] if wanted == "all" or str(v.get("split", "")) == wanted]
    if not in_split:
        raise InputError(f"no clips with split {wanted!r} in {annotations.name}")
    files = _video_files(videos_dir)
    clips = [
        VideoCaptions(
            video_id=str(video["video_id"]),
            path=files[str(video["video_id"])],
            captions=captions.get(str(video["video_id"]), []),
            split=str(video.get("split", "")),
        )
        for video in in_split
        if str(video["video_id"]) in files
    ]
    if not clips:
        raise InputError(
            f"none of the {len(in_split)} {wanted} clips in {annotations.name} are in {videos_dir}"
        )
    return [clip for clip in clips if clip.captions]


def load_msrvtt_jsfusion(csv_path: Path, videos_dir: Path) -> list[VideoCaptions]:
    """Load the 1k-A test set (MSRVTT_JSFUSION_test.csv: key,vid_key,video_id,sentence); missing clips skipped."""
    csv_path, videos_dir = Path(csv_path), Path(videos_dir)
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {csv_path}: {exc.strerror or exc}") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = [name.strip() for name in reader.fieldnames or []]
    if "video_id" not in fields or "sentence" not in fields:
        raise InputError(
            f"{csv_path.name} is not a JSFUSION file: expected columns {','.join(_JSFUSION_COLUMNS)}"
        )
    reader.fieldnames = fields
    files = _video_files(videos_dir)
    rows = [(str(row["video_id"]).strip(), " ".join(str(row["sentence"] or "").split())) for row in reader]
    clips = [
        VideoCaptions(video_id=video_id, path=files[video_id], captions=[sentence], split="test")
        for video_id, sentence in rows
        if video_id in files and sentence
    ]
    if not clips:
        raise InputError(f"none of the {len(rows)} clips in {csv_path.name} are in {videos_dir}")
    return clips


def discover_msrvtt(data: Path, split: str = "test") -> list[VideoCaptions]:
    """MSR-VTT clips from a folder or file: an annotation JSON (``*videodatainfo*.json``) or a 1k-A CSV,
    with the clips in ``videos/`` beside it (or in the same folder). ``split="all"`` takes every clip."""
    data = Path(data)
    folder = data if data.is_dir() else data.parent
    videos = folder / "videos" if (folder / "videos").is_dir() else folder
    if data.suffix == ".csv":
        return load_msrvtt_jsfusion(data, videos)
    annotations = data if data.is_file() else folder / "train_val_videodatainfo.json"
    if not annotations.is_file():
        candidates = sorted(folder.glob("*videodatainfo*.json"))
        if not candidates:
            raise InputError(f"no MSR-VTT annotation JSON in {folder}")
        annotations = candidates[0]
    return load_msrvtt(annotations, videos, None if split == "all" else split)
