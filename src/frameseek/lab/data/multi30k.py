"""Multi30k task 1 (English, German, French, Czech captions of Flickr30k photos) joined to Flickr8k by id.

Multi30k (github.com/multi30k/dataset, ``data/task1``) gives one English caption per Flickr30k photo and
its human translations, as parallel line files: ``<split>.<lang>`` (or ``<split>.<lang>.gz``, as in
``data/task1/raw/``) beside ``<split>.txt`` or ``<split>.images`` (the photo of each line, as in
``data/task1/image_splits/``). A Flickr8k photo is named ``<flickr id>_<secret>.jpg``; a Flickr30k photo
``<flickr id>.jpg``, so the number before ``_`` joins the two.

Flickr30k holds nearly every Flickr8k TEST photo, so this module hands out sentences only for the Flickr8k
photos a caller names (a split list): the DEV photos for evaluation, the TRAIN photos for fitting. A
sentence about any other photo — possibly a TEST one — is never returned.

The repository carries no licence of its own (the data are for research use), so frameseek ships none of
it: point ``--data`` at a clone (or at ``data/task1`` of one, or a folder holding its files).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from frameseek.errors import InputError

LANGUAGES = ("en", "de", "fr", "cs")
SPLITS = ("train", "val", "test_2016_flickr")  # the task-1 splits with Czech; all Flickr30k photos


@dataclass(frozen=True)
class Multi30kCaption:
    """One Multi30k line: the Flickr id of its photo and the caption in each language it has."""

    flickr_id: str
    captions: dict[str, str]


def flickr_id(name: str) -> str:
    """``1000268201_693b08cb0e.jpg`` or ``1000268201.jpg`` → ``1000268201``."""
    stem = Path(name.strip()).name.split(".")[0]
    return stem.split("_")[0]


def _folders(root: Path) -> list[Path]:
    """Where a split's files may be: the folder itself, or a clone's task-1 raw / image_splits folders."""
    task = root / "data" / "task1" if (root / "data" / "task1").is_dir() else root
    return [root, task, task / "raw", task / "image_splits"]


def _find(root: Path, names: Iterable[str]) -> Path | None:
    for folder in _folders(root):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _lines(path: Path) -> list[str]:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                return handle.read().splitlines()
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputError(f"cannot read Multi30k file {path}: {exc}") from None


def read_multi30k(root: Path, splits: Sequence[str] = SPLITS) -> list[Multi30kCaption]:
    """Every line of the named splits found under ``root`` (a split with no image list is an error; a
    language file that is missing is left out of that split's captions)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"Multi30k folder not found: {root}")
    out: list[Multi30kCaption] = []
    found_any = False
    for split in splits:
        images = _find(root, (f"{split}.txt", f"{split}.images"))
        texts = {
            lang: path
            for lang in LANGUAGES
            if (path := _find(root, (f"{split}.{lang}", f"{split}.{lang}.gz"))) is not None
        }
        if not texts:
            continue
        if images is None:
            raise InputError(f"Multi30k split {split}: captions found but no image list ({split}.txt)")
        found_any = True
        ids = [flickr_id(line) for line in _lines(images) if line.strip()]
        columns = {lang: _lines(path) for lang, path in texts.items()}
        for lang, lines in columns.items():
            if len(lines) < len(ids):
                raise InputError(f"Multi30k {split}.{lang} has {len(lines)} lines for {len(ids)} photos")
        for i, photo in enumerate(ids):
            captions = {lang: lines[i].strip() for lang, lines in columns.items() if lines[i].strip()}
            out.append(Multi30kCaption(photo, captions))
    if not found_any:
        raise InputError(
            f"no Multi30k task-1 files under {root} (expected e.g. val.de or data/task1/raw/val.de.gz)"
        )
    return out


def for_photos(
    captions: Sequence[Multi30kCaption], photos: Iterable[str], languages: Sequence[str] = LANGUAGES
) -> list[tuple[str, dict[str, str]]]:
    """(Flickr8k file name, {language: caption}) for each named photo that Multi30k covers in every one
    of ``languages``, in the order of ``photos``; the first Multi30k line of a photo wins."""
    by_id: dict[str, dict[str, str]] = {}
    for item in captions:
        if item.flickr_id not in by_id and all(lang in item.captions for lang in languages):
            by_id[item.flickr_id] = {lang: item.captions[lang] for lang in languages}
    out = []
    for name in photos:
        found = by_id.get(flickr_id(name))
        if found is not None:
            out.append((name.strip(), found))
    return out
