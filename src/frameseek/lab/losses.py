"""Contrastive losses for aligning image and text embeddings.

Both losses take an optional ``gather`` for data-parallel training (``frameseek.lab.distributed.RowGather``):
then ``image_emb`` / ``text_emb`` are this process's rows of the global batch, the negatives come from
every process's rows, and each process computes the loss of its own rows only (rows local, columns
global, labels offset by the rows of the ranks before it), as open_clip's ``ClipLoss(local_loss=True,
gather_with_grad=True)`` does. The value is scaled so that the mean over processes is the loss of one
process on the whole batch: world_size × (sum over local rows) / (2 × global rows). The gather's backward
sums, over processes, the gradients that reach each process's rows; DDP then averages the parameter
gradients over processes, so the gradients are those of one process on the global batch (uneven shards
included, since the scale uses the global row count).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F


class Gather(Protocol):
    """Rows from every process of a data-parallel group (``frameseek.lab.distributed.RowGather``)."""

    world_size: int

    def __call__(self, local: torch.Tensor) -> tuple[torch.Tensor, int]:
        """(every process's rows along dim 0 in rank order, the offset of this process's rows there);
        the gradient reaching ``local`` is the sum over processes of the gradients of the gathered rows."""
        ...


def _gather_pairs(
    image_emb: torch.Tensor, text_emb: torch.Tensor, gather: Gather
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Both sides gathered in one collective: (all images, all texts, offset of the local rows)."""
    both, offset = gather(torch.cat([image_emb, text_emb], dim=1))
    width = image_emb.shape[1]
    return both[:, :width], both[:, width:], offset


class SoftTargetLoss(nn.Module):
    """The original frameseek loss: soft targets from within-modality similarity.

    logits = text·imageᵀ / T; targets = softmax((image·imageᵀ + text·textᵀ) / 2 · T);
    loss = mean of the texts→images and images→texts cross-entropies. T is learnable
    (stored as log T so it stays positive).

    Gathered (see the module docstring): a process has its rows of logits, targets and of the similarity,
    which is symmetric, so its rows are also its columns. The images→texts targets are columns of the
    row-normalised targets and need every row's normaliser: each process computes its rows' log-sums and
    gathers them (a second, differentiable collective, as the targets are not detached).
    """

    def __init__(self, temperature: float = 1.0, learnable: bool = True):
        super().__init__()
        log_t = torch.tensor(math.log(temperature))
        self.log_temperature = nn.Parameter(log_t, requires_grad=learnable)

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp()

    def forward(
        self, image_emb: torch.Tensor, text_emb: torch.Tensor, gather: Gather | None = None
    ) -> torch.Tensor:
        t = self.temperature
        if gather is not None:
            return self._gathered(image_emb, text_emb, gather, t)
        logits = text_emb @ image_emb.T / t
        images_similarity = image_emb @ image_emb.T
        texts_similarity = text_emb @ text_emb.T
        targets = F.softmax((images_similarity + texts_similarity) / 2 * t, dim=-1)
        texts_loss = _soft_cross_entropy(logits, targets)
        images_loss = _soft_cross_entropy(logits.T, targets.T)
        return (images_loss + texts_loss).mean() / 2

    def _gathered(
        self, image_emb: torch.Tensor, text_emb: torch.Tensor, gather: Gather, t: torch.Tensor
    ) -> torch.Tensor:
        all_images, all_texts, _ = _gather_pairs(image_emb, text_emb, gather)
        logits = text_emb @ all_images.T / t  # local rows of text·imageᵀ / T
        logits_t = image_emb @ all_texts.T / t  # local rows of its transpose
        similarity = (image_emb @ all_images.T + text_emb @ all_texts.T) / 2 * t  # local rows (= columns)
        texts_loss = _soft_cross_entropy(logits, F.softmax(similarity, dim=-1))
        all_log_norms, _ = gather(torch.logsumexp(similarity, dim=-1)[:, None])
        # targetsᵀ[j, i] = targets[i, j] = exp(similarity[i, j] - log_norm[i]), similarity[i, j] = [j, i]
        images_loss = _soft_cross_entropy(logits_t, torch.exp(similarity - all_log_norms.T))
        return (images_loss + texts_loss).sum() * gather.world_size / (2 * len(all_images))


class InfoNCELoss(nn.Module):
    """Symmetric InfoNCE with a learnable logit scale (CLIP): CE over image·textᵀ × scale, both ways."""

    def __init__(self, init_scale: float = 1 / 0.07, max_scale: float = 100.0, learnable: bool = True):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(init_scale)), requires_grad=learnable)
        self.max_log_scale = math.log(max_scale)

    @property
    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=self.max_log_scale).exp()

    def forward(
        self, image_emb: torch.Tensor, text_emb: torch.Tensor, gather: Gather | None = None
    ) -> torch.Tensor:
        if gather is not None:
            return self._gathered(image_emb, text_emb, gather)
        logits = self.scale * image_emb @ text_emb.T
        labels = torch.arange(logits.shape[0], device=logits.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2

    def _gathered(self, image_emb: torch.Tensor, text_emb: torch.Tensor, gather: Gather) -> torch.Tensor:
        all_images, all_texts, offset = _gather_pairs(image_emb, text_emb, gather)
        scale = self.scale
        labels = torch.arange(offset, offset + len(image_emb), device=image_emb.device)
        image_logits = scale * image_emb @ all_texts.T  # local rows of the global logits
        text_logits = text_emb @ (scale * all_images).T  # local rows of their transpose
        total = F.cross_entropy(image_logits, labels, reduction="sum") + F.cross_entropy(
            text_logits, labels, reduction="sum"
        )
        return total * gather.world_size / (2 * len(all_images))


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
