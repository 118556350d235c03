"""Named model presets: architecture as data, and where each preset's weights come from (no model code;
``frameseek.models.factory.create_model`` builds them)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from frameseek.models.config import DualEncoderConfig, HeadConfig, ImageSideConfig, TextSideConfig

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
