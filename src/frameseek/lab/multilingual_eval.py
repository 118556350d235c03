"""Evaluate a model's multilingual tower (``frameseek.models.multilingual``).

Evaluation (``frameseek eval --dataset multi30k``): Flickr8k DEV photos that Multi30k covers, one
caption per photo per language, text→image Recall@K with the model's images (as the standard protocol),
each caption routed as a query is (English: the model's own path; other languages: the tower). English
through the tower is reported too, so the routing choice is a measured one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from frameseek.errors import InputError
from frameseek.lab import evaluation
from frameseek.lab.data.captions import load_flickr8k
from frameseek.lab.data.multi30k import LANGUAGES, for_photos, read_multi30k
from frameseek.lab.multilingual import encode_inputs
from frameseek.lab.sentence_cache import cached
from frameseek.models import multilingual
from frameseek.models.dual_encoder import DualEncoder


def multi30k_dev(
    flickr8k: Path, multi30k: Path, split: str = "dev"
) -> tuple[list[Path], dict[str, list[str]]]:
    """(Flickr8k photos of ``split`` that Multi30k covers in all four languages, captions per language)."""
    if split not in ("dev", "val", "train"):
        raise InputError(f"Multi30k evaluation takes --split dev (or train), not {split!r}")
    samples = load_flickr8k(flickr8k, "dev" if split in ("dev", "val") else "train")
    photos: dict[str, Path] = {}
    for s in samples:
        photos.setdefault(s.image_path.name, s.image_path)
    rows = for_photos(read_multi30k(multi30k), list(photos), languages=LANGUAGES)
    if not rows:
        raise InputError(f"no Flickr8k {split} photo has Multi30k captions in {multi30k}")
    images = [photos[name] for name, _ in rows]
    return images, {lang: [captions[lang] for _, captions in rows] for lang in LANGUAGES}


@torch.inference_mode()
def evaluate_multi30k(
    model: DualEncoder, flickr8k: Path, multi30k: Path, split: str = "dev", flip_tta: bool = True
) -> dict[str, Any]:
    """Text→image Recall@K per language on Flickr8k photos with Multi30k captions (one per photo)."""
    from frameseek.lab.retrieval_eval import embed_split

    tower = multilingual.MultilingualTower.load(model.source_folder)
    images, captions = multi30k_dev(flickr8k, multi30k, split)
    image_emb, _ = embed_split(model, images, captions["en"][:1], flip_tta=flip_tta)
    c2i = np.arange(len(images))
    report: dict[str, Any] = {
        "dataset": "multi30k",
        "split": split,
        "model": model.name,
        "images": len(images),
        "captions_per_language": len(images),
        "multilingual_tower": tower is not None,
        "text_to_image": {},
    }
    for lang, texts in captions.items():
        emb, routed = _routed_embeddings(model, tower, texts)
        result = evaluation.text_to_image(emb, image_emb, c2i).as_dict()
        report["text_to_image"][lang] = {**result, "through_tower": routed}
    if tower is not None:
        emb = multilingual.head_forward(tower.weights, encode_inputs(captions["en"], tower.inputs_from))
        report["text_to_image"]["en-tower"] = {
            **evaluation.text_to_image(emb, image_emb, c2i).as_dict(),
            "through_tower": len(images),
        }
    base = report["text_to_image"]["en"]["R@1"]
    for row in report["text_to_image"].values():
        row["of_english_R@1"] = round(row["R@1"] / base, 3) if base else None
    return report


def _routed_embeddings(
    model: DualEncoder, tower: multilingual.MultilingualTower | None, texts: list[str]
) -> tuple[np.ndarray, int]:
    """What ``MultilingualTower.route`` gives for ``texts`` (English: the model; others: e5 + the head),
    with both encoders' outputs cached under ``$FRAMESEEK_HOME/lab/``; and how many took the tower."""
    english = [t for t in texts if tower is None or tower.is_english(t)]
    other = [t for t in texts if tower is not None and not tower.is_english(t)]
    rows: dict[str, np.ndarray] = {}
    if english:
        found = cached(f"text-{model.fingerprint[:12]}", english, lambda t: model.encode_texts(t))
        rows.update(zip(english, found, strict=True))
    if other and tower is not None:
        found = multilingual.head_forward(tower.weights, encode_inputs(other, tower.inputs_from))
        rows.update(zip(other, found, strict=True))
    return np.stack([rows[t] for t in texts]), len(other)
