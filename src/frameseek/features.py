"""Backbone features for caption datasets, computed once and cached (safetensors) for frozen training."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from frameseek import settings
from frameseek.atomic import atomic_path
from frameseek.errors import InputError
from frameseek.models.dual_encoder import DualEncoder


def load_image(path: Path) -> Image.Image:
    """Open an image as RGB, or raise a one-line InputError."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read image {path}: {exc}") from None


@torch.inference_mode()
def image_features(
    model: DualEncoder, paths: Sequence[Path], flip: bool = False, batch_size: int = 64, desc: str = "images"
) -> torch.Tensor:
    """Backbone features (n, F) for image files, in the model's inference precision."""
    model.eval()
    out = []
    for start in tqdm(range(0, len(paths), batch_size), desc=desc, unit="batch", leave=False):
        images = [load_image(p) for p in paths[start : start + batch_size]]
        pixels = model.preprocess(images, flip=flip)
        if model.precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                feats = model.image_features(pixels.contiguous(memory_format=torch.channels_last))
        else:
            feats = model.image_features(pixels)
        out.append(feats.float())
    return torch.cat(out) if out else torch.zeros(0, model.config.image_feature_dim)


@torch.inference_mode()
def text_features(model: DualEncoder, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """Backbone features (n, F) for texts (fp32: text is cheap and precision-sensitive)."""
    model.eval()
    out = [
        model.text_features(texts[start : start + batch_size]).float()
        for start in tqdm(range(0, len(texts), batch_size), desc="captions", unit="batch", leave=False)
    ]
    return torch.cat(out) if out else torch.zeros(0, model.config.text_feature_dim)


def _cache_key(model: DualEncoder, kind: str, items: Sequence[str], extra: str) -> str:
    side = model.config.image if kind == "image" else model.config.text
    payload = json.dumps(
        {"side": vars(side), "kind": kind, "extra": extra, "precision": model.precision}, sort_keys=True
    )
    digest = hashlib.sha256(payload.encode())
    for item in items:
        digest.update(item.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def cached_image_features(model: DualEncoder, paths: Sequence[Path], flip: bool = False) -> torch.Tensor:
    """``image_features`` cached under ``$FRAMESEEK_HOME/features`` (keyed by backbone, files, flip)."""
    if model.config.backbone_weights_included:
        return image_features(model, paths, flip=flip)  # fine-tuned weights: no shared cache
    items = [f"{p}:{p.stat().st_size}" for p in paths]
    key = _cache_key(model, "image", items, f"flip={flip}")
    return _cached(
        key, lambda: image_features(model, paths, flip=flip, desc="images (flipped)" if flip else "images")
    )


def cached_text_features(model: DualEncoder, texts: Sequence[str]) -> torch.Tensor:
    """``text_features`` cached under ``$FRAMESEEK_HOME/features``."""
    if model.config.backbone_weights_included:
        return text_features(model, texts)
    return _cached(_cache_key(model, "text", texts, ""), lambda: text_features(model, texts))


def _cached(key: str, compute: object) -> torch.Tensor:
    path = settings.home() / "features" / f"{key}.safetensors"
    if path.is_file():
        return load_file(str(path))["features"]
    features: torch.Tensor = compute()  # type: ignore[operator]
    with atomic_path(path) as tmp:
        save_file({"features": features.contiguous()}, str(tmp))
    return features
