"""Projection heads that map backbone features into the shared embedding space."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ProjectionHead(nn.Module):
    """Linear → GELU → Linear → Dropout → residual add → LayerNorm (the original design)."""

    def __init__(self, in_dim: int, out_dim: int = 512, dropout: float = 0.1, input_dropout: float = 0.0):
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.input_dropout = nn.Dropout(input_dropout)
        self.projection = nn.Linear(in_dim, out_dim)
        self.fc = nn.Linear(out_dim, out_dim)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(out_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        projected = self.projection(self.input_dropout(features))
        hidden = self.dropout(self.fc(F.gelu(projected)))
        return self.layer_norm(hidden + projected)


class IdentityHead(nn.Module):
    """No projection: for backbones that already embed into the shared space (CLIP)."""

    def __init__(self, dim: int):
        super().__init__()
        self.in_dim = dim
        self.out_dim = dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class EnsembleHead(nn.Module):
    """K projection heads trained apart (different seeds) on the same features: their unit outputs are
    concatenated and scaled by 1/√K, so a dot product of two such embeddings is the mean of the K heads'
    cosine similarities. The backbone runs once; the heads are small, so inference cost barely changes."""

    def __init__(self, heads: list[ProjectionHead]):
        super().__init__()
        if len(heads) < 2:
            raise ValueError("an ensemble needs at least two heads")
        self.heads = nn.ModuleList(heads)
        self.in_dim = heads[0].in_dim
        self.out_dim = sum(h.out_dim for h in heads)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        parts = [F.normalize(head(features), dim=-1) for head in self.heads]
        return torch.cat(parts, dim=-1) / len(parts) ** 0.5


class ClassChannelHead(nn.Module):
    """A head plus a fixed zero-shot channel (ConSE: Norouzi et al., 2014), fused into one unit vector.

    Image side: the image backbone's ImageNet classifier (``classifier_weight`` · the last
    ``classifier_weight.shape[1]`` features + bias) gives class probabilities; the ``top_k`` most likely
    classes, renormalised, weight the unit text-backbone embeddings of their names (``class_text``, e.g. of
    "a photo of a goldfish.") into one semantic vector. Text side: the text backbone's own (unit) features.
    (With a concatenating text backbone, ``text_start`` / ``text_dim`` pick one encoder's features.)
    Both sides output ``[head, √β · channel] / √(1 + β)``, so the dot product of an image and a text is
    ``(head score + β · channel score) / (1 + β)``: the heads' score (trained on the caption data) plus what
    the backbones already know about 1,000 object classes, which the heads never saw. Nothing in it trains.
    """

    classifier_weight: torch.Tensor
    classifier_bias: torch.Tensor
    class_text: torch.Tensor

    def __init__(
        self,
        inner: nn.Module,
        side: str,
        weight: float,
        top_k: int,
        classes: int,
        class_feature_dim: int,
        text_dim: int,
        text_start: int = 0,
    ):
        super().__init__()
        if side not in ("image", "text"):
            raise ValueError(f"side must be 'image' or 'text', got {side!r}")
        self.inner = inner
        self.side = side
        self.weight = float(weight)
        self.top_k = int(top_k)
        self.text_slice = slice(int(text_start), int(text_start) + int(text_dim))  # text features it reads
        self.in_dim = int(getattr(inner, "in_dim", 0))
        self.out_dim = int(getattr(inner, "out_dim", 0)) + text_dim
        if side == "image":
            self.register_buffer("classifier_weight", torch.zeros(classes, class_feature_dim))
            self.register_buffer("classifier_bias", torch.zeros(classes))
            self.register_buffer("class_text", torch.zeros(classes, text_dim))

    def channel(self, features: torch.Tensor) -> torch.Tensor:
        if self.side == "text":
            return F.normalize(features[:, self.text_slice], dim=-1)
        weight, bias = self.classifier_weight, self.classifier_bias
        logits = features[:, -weight.shape[1] :] @ weight.T + bias
        top, index = torch.softmax(logits, dim=-1).topk(min(self.top_k, weight.shape[0]), dim=-1)
        top = top / top.sum(dim=-1, keepdim=True)
        return F.normalize((top.unsqueeze(-1) * self.class_text[index]).sum(dim=1), dim=-1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        head = F.normalize(self.inner(features), dim=-1)
        fused = torch.cat([head, self.weight**0.5 * self.channel(features.float())], dim=-1)
        return fused / (1.0 + self.weight) ** 0.5


class ProjectedHead(nn.Module):
    """A head followed by a fixed linear map to fewer dimensions, re-normalised (a compact embedding).

    ``projection`` (in_dim × out_dim, orthonormal columns) holds the top singular directions of the model's
    own training embeddings, images and captions together (``frameseek.lab.projection``). Both sides go
    through the same map, so scores stay cosine similarities in the smaller space. Nothing in it trains.
    """

    projection: torch.Tensor

    def __init__(self, inner: nn.Module, in_dim: int, out_dim: int):
        super().__init__()
        self.inner = inner
        self.in_dim = int(getattr(inner, "in_dim", 0))
        self.out_dim = int(out_dim)
        self.register_buffer("projection", torch.zeros(int(in_dim), int(out_dim)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(F.normalize(self.inner(features), dim=-1) @ self.projection, dim=-1)


def build_head(
    kind: str, in_dim: int, out_dim: int, dropout: float, input_dropout: float, ensemble: int = 1
) -> nn.Module:
    """Build a head by kind: ``projection`` (trainable; ``ensemble`` > 1 makes K of them) or ``none``."""
    if kind == "projection" and ensemble > 1:
        return EnsembleHead(
            [ProjectionHead(in_dim, out_dim, dropout, input_dropout) for _ in range(ensemble)]
        )
    if kind == "projection":
        return ProjectionHead(in_dim, out_dim, dropout=dropout, input_dropout=input_dropout)
    if kind == "none":
        if in_dim != out_dim:
            raise ValueError(f"head 'none' needs feature size == embedding size, got {in_dim} != {out_dim}")
        return IdentityHead(in_dim)
    raise ValueError(f"unknown head kind {kind!r} (use 'projection' or 'none')")
