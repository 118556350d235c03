"""Run a model over a caption dataset split and report Recall@K under both protocols."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from frameseek.errors import InputError
from frameseek.lab import evaluation
from frameseek.lab.data.captions import CaptionSample, group_by_image
from frameseek.lab.features import cached_image_features, cached_text_features
from frameseek.models.dual_encoder import DualEncoder


@torch.inference_mode()
def embed_split(
    model: DualEncoder, images: Sequence[Path], captions: Sequence[str], flip_tta: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (images, captions) for a split; ``flip_tta`` averages each image with its mirror."""
    model.eval()
    device = model.device  # the caches hold CPU tensors; the heads may be on a GPU
    image_emb = model.project_images(cached_image_features(model, images).to(device))
    if flip_tta:
        flipped = model.project_images(cached_image_features(model, images, flip=True).to(device))
        image_emb = F.normalize(image_emb + flipped, dim=-1)
    text_emb = model.project_texts(cached_text_features(model, captions).to(device)).cpu().numpy()
    return image_emb.cpu().numpy(), route_captions(model, captions, text_emb)


def route_captions(model: DualEncoder, captions: Sequence[str], english: np.ndarray) -> np.ndarray:
    """Caption embeddings as queries get them: ``english`` (the model's own path) for English captions,
    the model's multilingual tower (``frameseek.models.multilingual``), where it has one, for the rest."""
    from frameseek.models.multilingual import MultilingualTower

    tower = MultilingualTower.load(model.source_folder)
    if tower is None:
        return english
    other = [i for i, caption in enumerate(captions) if not tower.is_english(caption)]
    if other:
        english = english.copy()
        english[other] = tower.encode([captions[i] for i in other])
    return english


def recall_report(
    image_emb: np.ndarray, text_emb: np.ndarray, captions: Sequence[str], caption_to_image: Sequence[int]
) -> dict[str, Any]:
    """The standard (all-vs-all) and original (batches of 64) protocol numbers for one split."""
    c2i = np.asarray(caption_to_image)
    # The original protocol needs one full batch of 64 images; smaller splits report None for it.
    original = (
        evaluation.original_protocol(text_emb, image_emb, c2i, list(captions))
        if len(image_emb) >= 64
        else None
    )
    return {
        "standard": {
            "text_to_image": evaluation.text_to_image(text_emb, image_emb, c2i).as_dict(),
            "image_to_text": evaluation.image_to_text(image_emb, text_emb, c2i).as_dict(),
        },
        "original_protocol": {"text_to_image": original},
    }


def evaluate_samples(
    model: DualEncoder,
    samples: Sequence[CaptionSample],
    dataset: str,
    split: str,
    flip_tta: bool = True,
) -> dict[str, Any]:
    """Evaluate a model on caption samples; the result has the JSON shape of ``frameseek eval``."""
    if not samples:
        raise InputError(f"{dataset} {split} split is empty")
    images, captions, c2i = group_by_image(samples)
    image_emb, text_emb = embed_split(model, images, captions, flip_tta=flip_tta)
    report: dict[str, Any] = {
        "dataset": dataset,
        "split": split,
        "model": model.name,
        "images": len(images),
        "captions": len(captions),
    }
    report.update(recall_report(image_emb, text_emb, captions, c2i))
    return report
