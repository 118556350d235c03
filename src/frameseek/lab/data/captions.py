"""Image-caption datasets: Flickr8k, Flickr30k, COCO and generic CSV / JSONL pairs.

One file because every format ends in the same ``CaptionSample`` list through the same split, path and
duplicate checks; each format is one small reader function.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from frameseek.errors import InputError

Split = Literal["train", "dev", "test", "all"]

SPLITS: tuple[str, ...] = ("train", "dev", "test", "all")
DATASETS: tuple[str, ...] = ("flickr8k", "flickr30k", "coco", "csv", "jsonl", "pairs", "tuxpaint")
TUXPAINT_STAMPS = Path("/usr/share/tuxpaint/stamps")  # Debian: apt-get install tuxpaint-stamps-default

_IMAGE_COLUMNS = ("image", "image_path", "filepath", "file_path", "path", "file", "filename", "image_name")
_CAPTION_COLUMNS = ("caption", "text", "sentence", "comment")
_FLICKR30K_LINE = re.compile(r"^\s*(\d+)\s+(.*)$")


@dataclass(frozen=True)
class CaptionSample:
    """One (image, caption) pair; an image with five captions gives five samples."""

    image_path: Path
    caption: str
    image_id: str


# ----------------------------------------------------------------------------------------- helpers


def _read_text(path: Path) -> str:
    """Read a UTF-8 text file (optional BOM), turning failures into one-line InputErrors."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text") from exc


def _read_lines(path: Path) -> list[str]:
    """Read a text file as lines without line endings."""
    return _read_text(path).splitlines()


def _first_existing(candidates: Iterable[Path]) -> Path | None:
    """Return the first path that exists, or None."""
    for path in candidates:
        if path.exists():
            return path
    return None


def _require_dir(root: Path, what: str) -> None:
    """Raise InputError unless root is an existing folder."""
    if not root.is_dir():
        raise InputError(f"{what} folder not found: {root}")


def _unquote_csv_field(text: str) -> str:
    """Undo CSV quoting of a single field ("a, b" -> a, b; "" -> ") when the whole field is quoted."""
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('""', '"')
    return text


def _check_split(split: str) -> Split:
    """Validate a split name (val is accepted as dev)."""
    name = "dev" if split == "val" else split
    if name not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return cast(Split, name)


def _dir_names(folder: Path) -> set[str]:
    """File names in a folder (one listing instead of one stat per image)."""
    return {entry.name for entry in folder.iterdir()}


def _assemble(
    order: Sequence[str],
    captions: dict[str, list[str]],
    images_dir: Path,
    present: set[str],
    listed_in: Path,
) -> list[CaptionSample]:
    """Build samples for the images in order; every listed image must exist on disk."""
    missing = [name for name in order if name not in present]
    if missing:
        raise InputError(
            f"{len(missing)} of {len(order)} images listed in {listed_in.name} are missing from {images_dir} "
            f"(first: {missing[0]})"
        )
    return [
        CaptionSample(image_path=images_dir / name, caption=text, image_id=name)
        for name in order
        for text in captions.get(name, ())
    ]


def _group_captions(rows: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Group (image name, caption) rows by image, keeping file order; blank captions are dropped."""
    grouped: dict[str, list[str]] = {}
    for name, caption in rows:
        text = caption.strip()
        if name and text:
            grouped.setdefault(name, []).append(text)
    return grouped


def _from_rows(
    rows: Iterable[tuple[str, str]], split_names: list[str] | None, images_dir: Path, listed_in: Path | None
) -> list[CaptionSample]:
    """Samples for one split (official list order) or, without a list, every row whose image exists."""
    grouped = _group_captions(rows)
    present = _dir_names(images_dir)
    if split_names is None or listed_in is None:
        return [
            CaptionSample(image_path=images_dir / name, caption=text, image_id=name)
            for name, texts in grouped.items()
            if name in present
            for text in texts
        ]
    return _assemble(split_names, grouped, images_dir, present, listed_in)


def _read_split_list(path: Path) -> list[str]:
    """Read an official split list (one image file name a line), dropping blanks and duplicates."""
    names = (line.strip() for line in _read_lines(path))
    return list(dict.fromkeys(name for name in names if name))


# ----------------------------------------------------------------------------------------- Flickr8k


def _flickr8k_csv_rows(path: Path) -> Iterator[tuple[str, str]]:
    """Rows of captions.txt: split on the first comma; a fully quoted caption is CSV-unquoted."""
    lines = _read_lines(path)
    if lines and lines[0].split(",", 1)[0].strip().lower() in ("image", "image_name", "filename"):
        lines = lines[1:]
    for line in lines:
        if line.startswith('"'):  # a quoted image name: let the csv module parse the whole line
            fields = next(csv.reader([line]), [])
            if len(fields) >= 2:
                yield fields[0].strip(), ",".join(fields[1:])
        elif "," in line:
            name, caption = line.split(",", 1)
            yield name.strip(), _unquote_csv_field(caption.strip())


def _token_rows(path: Path) -> Iterator[tuple[str, str]]:
    """Rows of a Flickr token file: `<image>#<n><TAB><caption>`."""
    for line in _read_lines(path):
        if "\t" not in line:
            continue
        key, caption = line.split("\t", 1)
        yield key.rsplit("#", 1)[0].strip(), caption


def load_flickr8k(root: Path, split: Split) -> list[CaptionSample]:
    """Load Flickr8k (captions.txt or Flickr8k.token.txt) for an official split, in split-list order."""
    root = Path(root)
    part = _check_split(split)
    _require_dir(root, "Flickr8k")
    text_dirs = [root, root / "Flickr8k_text"]
    captions_csv = _first_existing(d / "captions.txt" for d in text_dirs)
    token = _first_existing(d / "Flickr8k.token.txt" for d in text_dirs)
    if captions_csv is not None:
        rows: Iterable[tuple[str, str]] = _flickr8k_csv_rows(captions_csv)
    elif token is not None:
        rows = _token_rows(token)
    else:
        raise InputError(f"no Flickr8k captions in {root}: expected captions.txt or Flickr8k.token.txt")
    images_dir = _first_existing(root / d for d in ("images", "Flicker8k_Dataset", "Flickr8k_Dataset"))
    if images_dir is None:
        raise InputError(f"no Flickr8k image folder in {root}: expected images/ or Flicker8k_Dataset/")
    if part == "all":
        return _from_rows(rows, None, images_dir, None)
    list_name = f"Flickr_8k.{part}Images.txt"
    split_file = _first_existing(d / list_name for d in text_dirs)
    if split_file is None:
        raise InputError(f"Flickr8k {part} split list not found: {root / list_name}")
    return _from_rows(rows, _read_split_list(split_file), images_dir, split_file)


def group_by_image(samples: Sequence[CaptionSample]) -> tuple[list[Path], list[str], list[int]]:
    """Split samples into unique images (first-seen order), all captions and each caption's image index."""
    index: dict[Path, int] = {}
    captions: list[str] = []
    caption_to_image: list[int] = []
    for sample in samples:
        position = index.setdefault(sample.image_path, len(index))
        captions.append(sample.caption)
        caption_to_image.append(position)
    return list(index), captions, caption_to_image


# ----------------------------------------------------------------------------------------- Flickr30k


def _flickr30k_results_rows(path: Path) -> Iterator[tuple[str, str]]:
    """Rows of Kaggle's results.csv (`image_name| comment_number| comment`), tolerating a missing pipe."""
    lines = _read_lines(path)
    if lines and lines[0].split("|", 1)[0].strip().lower() == "image_name":
        lines = lines[1:]
    for line in lines:
        parts = line.split("|", 2)
        if len(parts) == 3:
            yield parts[0].strip(), parts[2]
        elif len(parts) == 2:  # a known broken row: "name| 4 A dog runs ..."
            match = _FLICKR30K_LINE.match(parts[1])
            if match:
                yield parts[0].strip(), match.group(2)


def _load_json(path: Path) -> Any:
    """Parse a JSON file, turning failures into one-line InputErrors."""
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from exc


def _karpathy_split(name: str) -> str:
    """Map a Karpathy split name onto ours (val -> dev, restval -> train)."""
    return {"val": "dev", "restval": "train"}.get(name, name)


def load_flickr30k(root: Path, split: Split) -> list[CaptionSample]:
    """Load Flickr30k (results.csv / results_20130124.token / Karpathy JSON captions) with Karpathy splits."""
    root = Path(root)
    part = _check_split(split)
    _require_dir(root, "Flickr30k")
    text_dirs = [root, root / "flickr30k_images", root / "karpathy"]
    results = _first_existing(d / "results.csv" for d in text_dirs)
    token = _first_existing(
        d / name for d in text_dirs for name in ("results_20130124.token", "results.token")
    )
    karpathy_path = _first_existing(d / "dataset_flickr30k.json" for d in text_dirs)
    karpathy = _load_json(karpathy_path) if karpathy_path is not None else None
    if results is not None:
        rows: Iterable[tuple[str, str]] = _flickr30k_results_rows(results)
    elif token is not None:
        rows = _token_rows(token)
    elif karpathy is not None:
        rows = [
            (str(image["filename"]), str(sentence.get("raw", "")))
            for image in karpathy.get("images", [])
            for sentence in image.get("sentences", [])
        ]
    else:
        raise InputError(
            f"no Flickr30k captions in {root}: expected results.csv, results_20130124.token "
            "or dataset_flickr30k.json"
        )
    images_dir = _first_existing(
        root / d
        for d in ("images", "flickr30k_images/flickr30k_images", "flickr30k_images", "flickr30k-images")
    )
    if images_dir is None or not images_dir.is_dir():
        raise InputError(f"no Flickr30k image folder in {root}: expected images/ or flickr30k_images/")
    if part == "all":
        return _from_rows(rows, None, images_dir, None)
    if karpathy is None or karpathy_path is None:
        raise InputError(f"Flickr30k split file not found: {root / 'dataset_flickr30k.json'}")
    names = [
        str(image["filename"])
        for image in karpathy.get("images", [])
        if _karpathy_split(str(image.get("split", ""))) == part
    ]
    return _from_rows(rows, names, images_dir, karpathy_path)


# ----------------------------------------------------------------------------------------- COCO


def load_coco(captions_json: Path, images_dir: Path) -> list[CaptionSample]:
    """Load a COCO captions_*.json; images missing from images_dir are skipped (at least one must exist)."""
    captions_json, images_dir = Path(captions_json), Path(images_dir)
    _require_dir(images_dir, "COCO image")
    data = _load_json(captions_json)
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise InputError(f"{captions_json} is not a COCO captions file (needs 'images' and 'annotations')")
    grouped: dict[str, list[str]] = {}
    for annotation in data["annotations"]:
        text = str(annotation.get("caption", "")).strip()
        if text:
            grouped.setdefault(str(annotation["image_id"]), []).append(text)
    present = _dir_names(images_dir)
    samples = [
        CaptionSample(
            image_path=images_dir / str(image["file_name"]), caption=text, image_id=str(image["id"])
        )
        for image in data["images"]
        if str(image["file_name"]) in present
        for text in grouped.get(str(image["id"]), ())
    ]
    if not samples:
        raise InputError(f"none of the images in {captions_json.name} were found in {images_dir}")
    return samples


def _coco_from_folder(root: Path, split: str) -> list[CaptionSample]:
    """Find annotations/captions_{train,val}{2017,2014}.json and the matching image folder under root."""
    if split not in ("train", "dev"):
        raise InputError(f"COCO split {split!r} has no public captions; use train or dev (val)")
    part = "val" if split == "dev" else "train"
    for year in ("2017", "2014"):
        annotations = _first_existing(d / f"captions_{part}{year}.json" for d in (root / "annotations", root))
        if annotations is not None:
            images_dir = _first_existing(
                root / d for d in (f"{part}{year}", f"images/{part}{year}", "images")
            )
            if images_dir is None:
                raise InputError(f"COCO image folder not found: {root / (part + year)}")
            return load_coco(annotations, images_dir)
    raise InputError(f"COCO captions file not found: {root / 'annotations' / f'captions_{part}2017.json'}")


# ----------------------------------------------------------------------------------------- CSV / JSONL


def _pick_column(keys: Iterable[str], wanted: Sequence[str]) -> str | None:
    """Return the first key whose lower-cased, stripped name is in wanted (in wanted's order)."""
    by_name = {key.strip().lower(): key for key in keys}
    return next((by_name[name] for name in wanted if name in by_name), None)


def _pair_sample(base: Path, image: str, caption: str) -> CaptionSample | None:
    """One pair, with a relative image path resolved against base; blank entries give None."""
    image, caption = image.strip(), caption.strip()
    if not image or not caption:
        return None
    path = Path(image).expanduser()
    return CaptionSample(
        image_path=path if path.is_absolute() else base / path, caption=caption, image_id=image
    )


def _csv_pairs(path: Path) -> list[CaptionSample]:
    """Pairs from a CSV / TSV file with a header naming an image and a caption column."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = list(csv.reader(io.StringIO(_read_text(path), newline=""), delimiter=delimiter))
    header = [name.strip() for name in rows[0]] if rows else []
    image_col, caption_col = _pick_column(header, _IMAGE_COLUMNS), _pick_column(header, _CAPTION_COLUMNS)
    if image_col is None or caption_col is None:
        raise InputError(
            f"{path.name} needs a header with an image column ({', '.join(_IMAGE_COLUMNS[:3])}) "
            f"and a caption column ({', '.join(_CAPTION_COLUMNS[:2])}); found: {', '.join(header) or 'none'}"
        )
    image_at, caption_at = header.index(image_col), header.index(caption_col)
    samples = []
    for row in rows[1:]:
        if len(row) <= max(image_at, caption_at):
            continue
        caption = row[caption_at]
        # unquoted delimiters inside a caption that is the last column
        if len(row) > len(header) and caption_at == len(header) - 1:
            caption = delimiter.join(row[caption_at:])
        sample = _pair_sample(path.parent, row[image_at], caption)
        if sample is not None:
            samples.append(sample)
    return samples


def _jsonl_pairs(path: Path) -> list[CaptionSample]:
    """Pairs from a JSON Lines file of {"image": ..., "caption": ...} objects."""
    samples = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path.name} line {number} is not valid JSON: {exc.msg}") from exc
        if not isinstance(record, dict):
            raise InputError(f"{path.name} line {number} is not a JSON object")
        image_key, caption_key = _pick_column(record, _IMAGE_COLUMNS), _pick_column(record, _CAPTION_COLUMNS)
        if image_key is None or caption_key is None:
            raise InputError(f"{path.name} line {number} needs 'image' and 'caption' keys")
        sample = _pair_sample(path.parent, str(record[image_key]), str(record[caption_key]))
        if sample is not None:
            samples.append(sample)
    return samples


def load_pairs(path: Path) -> list[CaptionSample]:
    """Load (image, caption) pairs from a CSV/TSV with a header or JSONL; relative paths use its folder."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"pairs file not found: {path}")
    suffix = path.suffix.lower()
    samples = _jsonl_pairs(path) if suffix in (".jsonl", ".ndjson") else _csv_pairs(path)
    if not samples:
        raise InputError(f"no (image, caption) pairs in {path}")
    return samples


# ----------------------------------------------------------------------------------------- Tux Paint


def _stamp_description(path: Path) -> str:
    """The English description of a Tux Paint stamp: the first non-blank line of its ``.txt`` file (the
    other lines are translations, ``<locale>.utf8=<text>``)."""
    for line in _read_lines(path):
        text = line.strip()
        if text and not re.match(r"^[A-Za-z_@]+\.utf8\s*=", text):
            return text
    return ""


def load_tuxpaint(root: Path, split: str = "all") -> list[CaptionSample]:
    """Tux Paint's stamps as an out-of-domain caption set: clip art (PNG with transparency) of animals,
    food, vehicles, buildings, symbols …, each with a one-sentence English description.

    Layout (Debian ``tuxpaint-stamps-default``, ``/usr/share/tuxpaint/stamps``): ``<category>/…/<name>.png``
    beside ``<name>.txt`` (its description first, then translations); ``.ogg`` / ``.dat`` / ``.svg`` files
    are ignored, as is a PNG without a description (``*_mirror.png``). Images are taken in sorted path
    order; when several stamps share one description (e.g. two frogs, "A frog.") only the first is kept, so
    every caption has exactly one right image. One split, ``all`` (``test`` names it too: never train on it).
    """
    root = Path(root)
    if split not in ("all", "test"):
        raise InputError(f"tuxpaint is a test set with one split, 'all' (or 'test'); got {split!r}")
    _require_dir(root, "Tux Paint stamps (apt-get install tuxpaint-stamps-default)")
    samples: list[CaptionSample] = []
    seen: set[str] = set()
    for image in sorted(root.rglob("*.png")):
        text_file = image.with_suffix(".txt")
        if not text_file.is_file():
            continue
        caption = _stamp_description(text_file)
        key = " ".join(caption.lower().split())
        if not caption or key in seen:
            continue
        seen.add(key)
        samples.append(CaptionSample(image, caption, image.relative_to(root).as_posix()))
    if not samples:
        raise InputError(f"no Tux Paint stamps (a .png beside a .txt description) under {root}")
    return samples


# ----------------------------------------------------------------------------------------- dispatch


def load_dataset(name: str, data: Path, split: str = "all") -> list[CaptionSample]:
    """Load a named dataset: flickr8k / flickr30k (folder), coco (json or folder), csv / jsonl, tuxpaint."""
    key = name.strip().lower()
    data = Path(data)
    if key == "flickr8k":
        return load_flickr8k(data, _check_split(split))
    if key == "flickr30k":
        return load_flickr30k(data, _check_split(split))
    if key == "coco":
        if data.is_dir():
            return _coco_from_folder(data, _check_split(split))
        match = re.search(r"captions_([a-z]+\d*)\.json$", data.name)
        candidates = [data.parent.parent / match.group(1), data.parent / match.group(1)] if match else []
        images_dir = _first_existing([*candidates, data.parent / "images"])
        if images_dir is None:
            raise InputError(
                f"no COCO image folder next to {data}; expected {data.parent.parent / 'val2017'}"
            )
        return load_coco(data, images_dir)
    if key in ("csv", "jsonl", "pairs"):
        return load_pairs(data)
    if key == "tuxpaint":
        return load_tuxpaint(data, split)
    raise InputError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
