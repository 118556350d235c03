"""The dual encoder's configuration, stored as ``config.json`` in a checkpoint folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from frameseek.errors import ModelError

FORMAT = "frameseek-dual-encoder"
IMAGE_BACKBONES = (
    "efficientnet-lite0",
    "efficientnet-lite0-multiscale",
    "hf-resnet",
    "clip-vision",
    "siglip-vision",
)
TEXT_BACKBONES = ("hf-text", "hf-text-concat", "clip-text", "siglip-text")
WEIGHTS_DTYPES = ("float32", "float16", "bfloat16")
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


@dataclass
class ImageSideConfig:
    """Image backbone: kind, where its weights come from, input size and resize mode."""

    backbone: str = "efficientnet-lite0"
    source: str = "package"
    image_size: int = 224
    resize: str = "squash"  # "squash" (resize to a square) or "crop" (shorter side, then centre crop)


@dataclass
class TextSideConfig:
    """Text backbone: kind, where its weights and tokenizer come from, pooling and length."""

    backbone: str = "hf-text"
    source: str = "package:all-MiniLM-L6-v2"
    pooling: str = "mean"  # "mean" (attention-masked) or "cls"
    max_length: int = 64
    # Text-to-text matching (transcripts, on-screen text) uses the first this-many features (0: all): with
    # "hf-text-concat" (sources joined by "+") the first encoder's sentence embedding.
    sentence_dim: int = 0


@dataclass
class HeadConfig:
    """Projection heads: ``projection`` (trainable) or ``none`` (the backbone embeds already)."""

    kind: str = "projection"
    dropout: float = 0.1
    input_dropout: float = 0.0
    ensemble: int = 1  # K > 1: K heads per side whose embeddings are concatenated (see heads.EnsembleHead)
    # A zero-shot class channel fused with the heads (see heads.ClassChannelHead): weight β > 0 turns it on.
    class_weight: float = 0.0
    class_top_k: int = 20
    class_count: int = 1000
    class_feature_dim: int = 1280  # the classifier reads the last this-many image features
    class_text_start: int = 0  # the channel's text space: text features [start, start + dim) (dim 0: all)
    class_text_dim: int = 0
    # > 0: a fixed projection to this many dimensions after the heads (and the class channel), fitted on
    # the model's training embeddings (see heads.ProjectedHead): the stored vectors' size.
    project_dim: int = 0


@dataclass
class DualEncoderConfig:
    """Everything needed to rebuild a dual encoder, except the weights."""

    name: str = "custom"
    embed_dim: int = 512
    image: ImageSideConfig = field(default_factory=ImageSideConfig)
    text: TextSideConfig = field(default_factory=TextSideConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    image_feature_dim: int = 0
    text_feature_dim: int = 0
    # Whether model.safetensors also carries backbone weights (after fine-tuning) or only the heads.
    backbone_weights_included: bool = False
    # Partial fine-tuning: state-dict key prefixes (e.g. "image_backbone.net._blocks.15.") of the backbone
    # tensors model.safetensors carries; every other backbone tensor comes from the backbone's source.
    backbone_weight_prefixes: list[str] = field(default_factory=list)
    # Storage precision of floating-point tensors in model.safetensors ("float16" halves the file);
    # they load into the float32 model either way.
    weights_dtype: str = "float32"
    notes: str = ""

    def class_text_width(self) -> int:
        """Width of the class channel's text space (its slice of the text features)."""
        head = self.head
        return int(head.class_text_dim or int(self.text_feature_dim) - head.class_text_start)

    def fused_dim(self) -> int:
        """Size of the heads' fused output: each head's size × the ensembled heads, plus the class channel."""
        head = self.head
        channel = self.class_text_width() if head.class_weight > 0 else 0
        return channel + self.embed_dim * (head.ensemble if head.kind == "projection" else 1)

    def output_dim(self) -> int:
        """Size of the model's embeddings: the fused size, or the fixed projection's when there is one."""
        return int(self.head.project_dim) or self.fused_dim()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = FORMAT
        data["version"] = 1
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DualEncoderConfig:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelError(
                f"config.json is not a frameseek dual-encoder config (format must be {FORMAT!r})"
            )
        try:
            image = ImageSideConfig(**_known(ImageSideConfig, data.get("image", {})))
            text = TextSideConfig(**_known(TextSideConfig, data.get("text", {})))
            head = HeadConfig(**_known(HeadConfig, data.get("head", {})))
            top = {k: v for k, v in _known(cls, data).items() if k not in {"image", "text", "head"}}
            config = cls(image=image, text=text, head=head, **top)
        except TypeError as exc:
            raise ModelError(f"config.json is malformed: {exc}") from None
        config.validate()
        return config

    def validate(self) -> None:
        if not isinstance(self.head.ensemble, int) or self.head.ensemble < 1:
            raise ModelError(f"head.ensemble must be a positive integer, got {self.head.ensemble!r}")
        if self.image.backbone not in IMAGE_BACKBONES:
            raise ModelError(
                f"unknown image backbone {self.image.backbone!r} (known: {', '.join(IMAGE_BACKBONES)})"
            )
        if self.text.backbone not in TEXT_BACKBONES:
            raise ModelError(
                f"unknown text backbone {self.text.backbone!r} (known: {', '.join(TEXT_BACKBONES)})"
            )
        if self.text.pooling not in ("mean", "cls"):
            raise ModelError(f"unknown text pooling {self.text.pooling!r} (use 'mean' or 'cls')")
        if self.image.resize not in ("squash", "crop"):
            raise ModelError(f"unknown resize mode {self.image.resize!r} (use 'squash' or 'crop')")
        prefixes = self.backbone_weight_prefixes
        if not isinstance(prefixes, list) or not all(
            isinstance(p, str) and p.startswith(("image_backbone.", "text_backbone.")) for p in prefixes
        ):
            raise ModelError(
                "backbone_weight_prefixes must be a list of 'image_backbone.…' / 'text_backbone.…' prefixes"
            )
        if self.weights_dtype not in WEIGHTS_DTYPES:
            raise ModelError(
                f"unknown weights_dtype {self.weights_dtype!r} (use {', '.join(WEIGHTS_DTYPES)})"
            )
        if self.head.class_weight < 0 or self.head.class_top_k < 1 or self.head.class_count < 1:
            raise ModelError("head.class_weight must be >= 0 and class_top_k / class_count positive")
        if not isinstance(self.head.project_dim, int) or self.head.project_dim < 0:
            raise ModelError(
                f"head.project_dim must be a non-negative integer, got {self.head.project_dim!r}"
            )
        if not isinstance(self.embed_dim, int) or self.embed_dim <= 0:
            raise ModelError(f"embed_dim must be a positive integer, got {self.embed_dim!r}")


def _known(kind: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(kind)}
    return {k: v for k, v in data.items() if k in names}


def read_config(folder: Path) -> DualEncoderConfig:
    """Validate the folder's files and parse its config."""
    if not folder.is_dir():
        raise ModelError(f"checkpoint folder not found: {folder}")
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise ModelError(
            f"checkpoint {folder} contains pickle file(s) {', '.join(pickles)}; frameseek loads only "
            "config.json + model.safetensors"
        )
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise ModelError(f"checkpoint {folder} has no {CONFIG_NAME}")
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{config_path} is not valid JSON: {exc}") from None
    return DualEncoderConfig.from_dict(data)
