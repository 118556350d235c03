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
