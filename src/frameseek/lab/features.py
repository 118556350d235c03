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
from frameseek.errors import InputError
from frameseek.models.dual_encoder import DualEncoder
from frameseek.system.atomic import atomic_path


def load_image(path: Path) -> Image.Image:
    """Open an image as RGB, or raise a one-line InputError."""
    try:
        with Image.open(path) as image:
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                # transparent pixels (clip art, icons) on white, not on whatever colour they happen to hold
                rgba = image.convert("RGBA")
                canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return Image.alpha_composite(canvas, rgba).convert("RGB")
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
        pixels = model.backbone_input(model.preprocess(images, flip=flip))
        with model.autocast():
            feats = model.image_features(pixels)
        out.append(feats.float().cpu())
    return torch.cat(out) if out else torch.zeros(0, model.config.image_feature_dim)


@torch.inference_mode()
def text_features(model: DualEncoder, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """Backbone features (n, F) for texts (fp32: text is cheap and precision-sensitive)."""
    model.eval()
    out = [
        model.text_features(texts[start : start + batch_size]).float().cpu()
        for start in tqdm(range(0, len(texts), batch_size), desc="captions", unit="batch", leave=False)
    ]
    return torch.cat(out) if out else torch.zeros(0, model.config.text_feature_dim)


def _cache_key(model: DualEncoder, kind: str, items: Sequence[str], extra: str) -> str:
    side = model.config.image if kind == "image" else model.config.text
    payload = json.dumps(
        {"side": vars(side), "kind": kind, "extra": extra, "precision": model.compute_precision},
        sort_keys=True,
    )
    digest = hashlib.sha256(payload.encode())
    for item in items:
        digest.update(item.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def _partial_digest(model: DualEncoder, side: str, within: Sequence[str] | None = None) -> str:
    """A hash of the partially fine-tuned backbone tensors of one side ("image_backbone."/"text_backbone.").

    ``within`` (prefixes relative to the backbone) limits it to the tensors a cached quantity depends on
    (a trunk); "" when none of those was fine-tuned, so caches of package weights stay shared.
    """
    prefixes = tuple(p for p in model.config.backbone_weight_prefixes if p.startswith(side))
    scope: tuple[str, ...] = ()
    if within is not None:
        scope = tuple(side + w for w in within)
        prefixes = tuple(p for p in prefixes if any(p.startswith(s) or s.startswith(p) for s in scope))
    if not prefixes:
        return ""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        if key.startswith(prefixes) and (not scope or key.startswith(scope)):
            digest.update(key.encode())
            digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def cached_image_features(model: DualEncoder, paths: Sequence[Path], flip: bool = False) -> torch.Tensor:
    """``image_features`` cached under ``$FRAMESEEK_HOME/features`` (keyed by backbone, files, flip).

    A partially fine-tuned backbone adds a hash of its fine-tuned tensors to the key.
    """
    if model.config.backbone_weights_included:
        return image_features(model, paths, flip=flip)  # fine-tuned weights: no shared cache
    items = [f"{p}:{p.stat().st_size}" for p in paths]
    extra = f"flip={flip}"
    partial = _partial_digest(model, "image_backbone.")
    if partial:
        extra += f";partial={partial}"
    key = _cache_key(model, "image", items, extra)
    return _cached(
        key, lambda: image_features(model, paths, flip=flip, desc="images (flipped)" if flip else "images")
    )


def cached_text_features(model: DualEncoder, texts: Sequence[str]) -> torch.Tensor:
    """``text_features`` cached under ``$FRAMESEEK_HOME/features`` (plus a partial-fine-tuning hash)."""
    if model.config.backbone_weights_included:
        return text_features(model, texts)
    partial = _partial_digest(model, "text_backbone.")
    extra = f"partial={partial}" if partial else ""
    return _cached(_cache_key(model, "text", texts, extra), lambda: text_features(model, texts))


# ---- trunk outputs for partial fine-tuning ------------------------------------------------------------
def _storage_dtype(model: DualEncoder) -> torch.dtype:
    return torch.bfloat16 if model.precision == "bf16" else torch.float16


@torch.inference_mode()
def image_trunk_maps(
    model: DualEncoder,
    paths: Sequence[Path],
    splits: Sequence[int],
    flip: bool = False,
    batch_size: int = 64,
    desc: str = "image trunk",
) -> list[torch.Tensor]:
    """The image backbone's trunk outputs (n, C, h, w) at each split, in one pass (16-bit storage)."""
    backbone = model.image_backbone
    if not hasattr(backbone, "trunk"):
        raise InputError(f"image backbone {model.config.image.backbone!r} cannot be split into a trunk")
    model.eval()
    order = sorted(set(splits))
    out: dict[int, list[torch.Tensor]] = {s: [] for s in order}
    dtype = _storage_dtype(model)
    for start in tqdm(range(0, len(paths), batch_size), desc=desc, unit="batch", leave=False):
        pixels = model.preprocess([load_image(p) for p in paths[start : start + batch_size]], flip=flip)
        with model.autocast():
            x, done = model.backbone_input(pixels), 0
            for split in order:
                x = backbone.trunk(x, split, start=done)  # type: ignore[operator]
                done = split
                out[split].append(x.to(dtype).contiguous().cpu())
    return [torch.cat(out[s]) for s in splits]


def cached_image_trunk(
    model: DualEncoder, paths: Sequence[Path], split: int, flip: bool = False, also: Sequence[int] = ()
) -> torch.Tensor:
    """``image_trunk_maps`` at ``split``, cached; ``also`` computes (and caches) other splits in the same pass."""
    items = [f"{p}:{p.stat().st_size}" for p in paths]
    backbone = model.image_backbone

    def key_for(s: int) -> str:
        extra = f"flip={flip};trunk={s}"
        partial = _partial_digest(model, "image_backbone.", backbone.trunk_prefixes(s))  # type: ignore[operator]
        if partial:
            extra += f";partial={partial}"
        return _cache_key(model, "image-trunk", items, extra)

    wanted = [split, *[s for s in also if s != split]]
    paths_by_split = {s: settings.home() / "features" / f"{key_for(s)}.safetensors" for s in wanted}
    if paths_by_split[split].is_file():
        return load_file(str(paths_by_split[split]))["features"]
    missing = [s for s in wanted if not paths_by_split[s].is_file()]
    label = "image trunk (flipped)" if flip else "image trunk"
    maps = image_trunk_maps(model, paths, missing, flip=flip, desc=label)
    for s, tensor in zip(missing, maps, strict=True):
        with atomic_path(paths_by_split[s]) as tmp:
            save_file({"features": tensor}, str(tmp))
    return maps[missing.index(split)]


@torch.inference_mode()
def text_trunk_states(
    model: DualEncoder, texts: Sequence[str], split: int, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """The text backbone's hidden states entering layer ``split``, packed: (tokens, H) fp16 + lengths (n,)."""
    backbone = model.text_backbone
    if not hasattr(backbone, "trunk"):
        raise InputError(f"text backbone {model.config.text.backbone!r} cannot be split into a trunk")
    model.eval()
    states, lengths = [], []
    for start in tqdm(range(0, len(texts), batch_size), desc="text trunk", unit="batch", leave=False):
        hidden, mask = backbone.trunk(texts[start : start + batch_size], split)  # type: ignore[operator]
        for row, row_mask in zip(hidden, mask, strict=True):
            n = int(row_mask.sum())  # right padding: real tokens come first
            states.append(row[:n].to(torch.float16).cpu())
            lengths.append(n)
    return torch.cat(states), torch.tensor(lengths, dtype=torch.int64)


def cached_text_trunk(
    model: DualEncoder, texts: Sequence[str], split: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``text_trunk_states`` cached under ``$FRAMESEEK_HOME/features``."""
    extra = f"trunk={split}"
    partial = _partial_digest(model, "text_backbone.", model.text_backbone.trunk_prefixes(split))  # type: ignore[operator]
    if partial:
        extra += f";partial={partial}"
    path = settings.home() / "features" / f"{_cache_key(model, 'text-trunk', texts, extra)}.safetensors"
    if path.is_file():
        data = load_file(str(path))
        return data["states"], data["lengths"]
    states, lengths = text_trunk_states(model, texts, split)
    with atomic_path(path) as tmp:
        save_file({"states": states.contiguous(), "lengths": lengths}, str(tmp))
    return states, lengths


def _cached(key: str, compute: object) -> torch.Tensor:
    path = settings.home() / "features" / f"{key}.safetensors"
    if path.is_file():
        return load_file(str(path))["features"]
    features: torch.Tensor = compute()  # type: ignore[operator]
    with atomic_path(path) as tmp:
        save_file({"features": features.contiguous()}, str(tmp))
    return features
