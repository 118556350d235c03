"""The sentences a multilingual head is fitted on (``frameseek.lab.multilingual``), and the rule that keeps
every Flickr8k DEV and TEST photo out of them.

A ``Pair`` is one sentence, the English sentence whose embedding it should land on, and the Flickr8k TRAIN
photo it describes. ``training_pairs`` gathers them from Flickr8k TRAIN captions, MSR-VTT captions and
Multi30k (task 1: English, German, French and Czech lines of Flickr30k photos). A Multi30k line is taken
for a Flickr8k TRAIN photo, or — only when Flickr8k's TEST list is given (``read_held_out_photos``), since
Flickr30k holds nearly every TEST photo — for a photo on none of the TRAIN, DEV and TEST lists.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from frameseek.errors import InputError
from frameseek.lab.data.captions import load_flickr8k
from frameseek.lab.data.msrvtt import discover_msrvtt
from frameseek.lab.data.multi30k import LANGUAGES, flickr_id, for_photos, read_multi30k


@dataclass(frozen=True)
class Pair:
    """One training sentence, the English sentence whose embedding it should land on (None: it is aligned
    with its photo alone), and the Flickr8k TRAIN photo it describes, when there is one."""

    text: str
    target: str | None
    source: str  # "flickr8k", "msrvtt", "multi30k-de", "multi30k-outside-de", …
    photo: Path | None = None


def read_held_out_photos(path: Path, flickr8k: Path) -> frozenset[str]:
    """Flickr ids of the photos named in ``path``: Flickr8k's TEST list (``Flickr_8k.testImages.txt`` of
    the Flickr8k distribution; ``../shared`` leaves it out). A list that is short or names a TRAIN or DEV
    photo is not that list: an InputError."""
    try:
        names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the Flickr8k TEST list {path}: {exc}") from None
    ids = frozenset(flickr_id(name) for name in names)
    known = {
        flickr_id(s.image_path.name) for split in ("train", "dev") for s in load_flickr8k(flickr8k, split)
    }
    if len(ids) < 900 or ids & known:
        raise InputError(
            f"{path} is not Flickr8k's TEST list (Flickr_8k.testImages.txt: 1,000 photos, none in TRAIN or DEV)"
        )
    return ids


def training_pairs(
    flickr8k: Path,
    multi30k: Path | None,
    msrvtt: Path | None,
    held_out: frozenset[str] | None = None,
    limit: int | None = None,
    outside_photos: int | None = None,
    caption_targets: bool = False,
) -> list[Pair]:
    """Every training sentence (see the module docstring) in a fixed order.

    First the Flickr8k TRAIN part: each Multi30k photo's group (its English caption and translations, which
    share one target) followed by one English caption, then the remaining English captions, so that any
    prefix (``limit``) mixes both kinds and costs few English-side encodings per sentence. Then, when
    ``held_out`` (the Flickr ids of Flickr8k's TEST photos) is given, the groups of Multi30k photos
    outside Flickr8k — neither TRAIN, DEV nor TEST — shuffled, the first ``outside_photos`` of them (all
    when None).

    A Flickr8k caption is aligned with its photo; with ``caption_targets`` it is also distilled onto the
    model's embedding of itself (which costs the model's text side on every caption). A Multi30k line of
    a TRAIN photo is both distilled and aligned with the photo; one of an outside photo only distilled."""
    train = load_flickr8k(flickr8k, "train")
    english = [
        Pair(s.caption.strip(), s.caption.strip() if caption_targets else None, "flickr8k", s.image_path)
        for s in train
    ]
    if msrvtt is not None:
        for clip in discover_msrvtt(msrvtt, "all"):
            english += [Pair(c.strip(), c.strip(), "msrvtt") for c in clip.captions if c.strip()]
    random.Random(0).shuffle(english)
    groups: list[list[Pair]] = []
    outside: list[list[Pair]] = []
    if multi30k is not None:
        paths = {s.image_path.name: s.image_path for s in train}
        photos = sorted(paths)
        lines = read_multi30k(multi30k)
        by_id: dict[str, dict[str, str]] = {}
        for item in lines:
            by_id.setdefault(item.flickr_id, item.captions)
        for name, _ in for_photos(lines, photos, languages=("en",)):
            groups.append(_group(by_id[flickr_id(name)], "multi30k", paths[name]))
        random.Random(0).shuffle(groups)
        if held_out is not None:
            flickr8k_ids = {flickr_id(s.image_path.name) for s in load_flickr8k(flickr8k, "dev")}
            flickr8k_ids |= {flickr_id(name) for name in photos} | held_out
            seen: set[str] = set()
            for item in read_multi30k(multi30k, ("train", "val")):
                if item.flickr_id in flickr8k_ids or item.flickr_id in seen or "en" not in item.captions:
                    continue
                seen.add(item.flickr_id)
                outside.append(_group(item.captions, "multi30k-outside"))
            random.Random(1).shuffle(outside)
    pairs: list[Pair] = []
    for i, group in enumerate(groups):
        pairs += group
        if i < len(english):
            pairs.append(english[i])
    pairs += english[len(groups) :]
    if limit is not None:
        pairs = pairs[:limit]
    for group in outside[:outside_photos]:
        pairs += group
    return pairs


def _group(captions: dict[str, str], source: str, photo: Path | None = None) -> list[Pair]:
    """A photo's English caption and its translations, all aiming at the English one (and the photo)."""
    return [
        Pair(captions[lang], captions["en"], f"{source}-{lang}", photo)
        for lang in LANGUAGES
        if lang in captions
    ]
