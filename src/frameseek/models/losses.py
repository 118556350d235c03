"""Contrastive losses for aligning image and text embeddings."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class SoftTargetLoss(nn.Module):
    """The original frameseek loss: soft targets from within-modality similarity.

    logits = text·imageᵀ / T; targets = softmax((image·imageᵀ + text·textᵀ) / 2 · T);
    loss = mean of the texts→images and images→texts cross-entropies. T is learnable
    (stored as log T so it stays positive).
    """

    def __init__(self, temperature: float = 1.0, learnable: bool = True):
        super().__init__()
        log_t = torch.tensor(math.log(temperature))
        self.log_temperature = nn.Parameter(log_t, requires_grad=learnable)

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp()

    def forward(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        logits = text_emb @ image_emb.T / t
        images_similarity = image_emb @ image_emb.T
        texts_similarity = text_emb @ text_emb.T
        targets = F.softmax((images_similarity + texts_similarity) / 2 * t, dim=-1)
        texts_loss = _soft_cross_entropy(logits, targets)
        images_loss = _soft_cross_entropy(logits.T, targets.T)
        return (images_loss + texts_loss).mean() / 2


class InfoNCELoss(nn.Module):
    """Symmetric InfoNCE with a learnable logit scale (CLIP): CE over image·textᵀ × scale, both ways."""

    def __init__(self, init_scale: float = 1 / 0.07, max_scale: float = 100.0, learnable: bool = True):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(init_scale)), requires_grad=learnable)
        self.max_log_scale = math.log(max_scale)

    @property
    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=self.max_log_scale).exp()

    def forward(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        logits = self.scale * image_emb @ text_emb.T
        labels = torch.arange(logits.shape[0], device=logits.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-row cross-entropy against a probability distribution (no reduction)."""
    return (-targets * F.log_softmax(logits, dim=-1)).sum(dim=-1)


def build_loss(name: str, temperature: float | None = None) -> nn.Module:
    """Build a loss by name: ``infonce`` (default) or ``soft`` (the original)."""
    if name == "infonce":
        return InfoNCELoss() if temperature is None else InfoNCELoss(init_scale=1 / temperature)
    if name == "soft":
        return SoftTargetLoss(temperature=1.0 if temperature is None else temperature)
    raise ValueError(f"unknown loss {name!r} (use 'infonce' or 'soft')")
