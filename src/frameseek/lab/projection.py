"""Install a fixed compact projection (``heads.ProjectedHead``) into a trained dual encoder.

An ensemble of heads plus the class channel embeds into thousands of dimensions (``lite``: 3,328, 13 KB a
frame in float32). Most of that width repeats itself: the heads were trained on the same pairs. The top
singular directions of the model's own training embeddings — image and caption embeddings together,
uncentred, since scores are dot products of unit vectors — keep the scores' geometry in far fewer
dimensions. Both sides are projected and re-normalised, so a score is still a cosine similarity.

The sample must be training data only (never what the model is evaluated on): ``Trainer`` passes the
embeddings of its own training split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from frameseek.errors import ModelError
from frameseek.lab.subspace import fit_projection
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.heads import ProjectedHead


def install(model: DualEncoder, sample: NDArray[np.floating[Any]], dim: int) -> DualEncoder:
    """Project ``model``'s embeddings to ``dim`` dimensions (in place; returns it), fitted on ``sample``:
    rows of the model's own (unprojected) training embeddings."""
    head = model.config.head
    if head.project_dim:
        raise ModelError(f"the model already projects to {head.project_dim} dimensions")
    full = model.config.fused_dim()
    if dim <= 0 or dim >= full:
        raise ModelError(f"the projection must have 1..{full - 1} dimensions (the model's {full}), got {dim}")
    rows = np.asarray(sample, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] != full or len(rows) < dim:
        raise ModelError(f"the sample must be at least {dim} rows of {full}-d embeddings, got {rows.shape}")
    matrix = torch.from_numpy(fit_projection(rows, dim))
    head.project_dim = int(dim)
    model.add_projection()
    for side in (model.image_head, model.text_head):
        assert isinstance(side, ProjectedHead)
        side.projection.copy_(matrix.to(side.projection.device))
    model.invalidate_fingerprint()
    return model
