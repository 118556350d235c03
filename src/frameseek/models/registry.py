"""Named model presets and the one entry point that loads a preset or a checkpoint folder."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from frameseek.errors import ModelError
from frameseek.models.checkpoint import load_weights_into, read_config, read_weights
from frameseek.models.config import DualEncoderConfig, HeadConfig, ImageSideConfig, TextSideConfig
from frameseek.models.dual_encoder import DualEncoder

DEFAULT_MODEL = "lite"


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
            text=TextSideConfig(backbone="hf-text", source="package:all-MiniLM-L6-v2", pooling="mean"),
            head=HeadConfig(kind="projection", dropout=0.1),
        ),
        description="EfficientNet-Lite0 (multi-scale) + all-MiniLM-L6-v2, heads trained on Flickr8k (offline)",
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
}


def packaged_weights(name: str) -> Path | None:
    """The packaged checkpoint folder for a preset, if it ships with frameseek."""
    spec = PRESETS.get(name)
    if spec is None or spec.weights_folder is None:
        return None
    folder = Path(str(resources.files("frameseek") / "weights" / spec.weights_folder))
    return folder if (folder / "model.safetensors").is_file() else None


def build_preset(name: str, seed: int = 0) -> DualEncoder:
    """A preset's architecture with backbones loaded from their sources and fresh (seeded) heads."""
    if name not in PRESETS:
        raise ModelError(
            f"unknown model {name!r} (presets: {', '.join(PRESETS)}; or give a checkpoint folder)"
        )
    torch.manual_seed(seed)
    return DualEncoder.from_config(copy.deepcopy(PRESETS[name].config))


def load_checkpoint(folder: Path) -> DualEncoder:
    """Load a checkpoint folder: rebuild backbones from the config's sources, then load its weights."""
    config = read_config(folder)
    weights = read_weights(folder)
    model = DualEncoder.from_config(config)
    load_weights_into(model, weights, str(folder))
    model.eval()
    return model


def load_model(name_or_path: str = DEFAULT_MODEL) -> DualEncoder:
    """Load a preset by name or a checkpoint folder (``config.json`` + ``model.safetensors``)."""
    if name_or_path in PRESETS:
        folder = packaged_weights(name_or_path)
        if folder is not None:
            return load_checkpoint(folder)
        if PRESETS[name_or_path].config.head.kind == "projection" and PRESETS[name_or_path].weights_folder:
            raise ModelError(f"model {name_or_path!r} has no trained heads installed; run `frameseek train`")
        model = build_preset(name_or_path)
        model.eval()
        return model
    path = Path(name_or_path).expanduser()
    if path.exists():
        return load_checkpoint(path)
    raise ModelError(
        f"unknown model {name_or_path!r}: not a preset ({', '.join(PRESETS)}) and no such checkpoint folder"
    )
