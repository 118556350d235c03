"""Merge dual encoders that differ only in their (seed-trained) heads into one head ensemble."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from frameseek.errors import ModelError
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.heads import EnsembleHead, ProjectionHead
from frameseek.models.inference import InferenceSettings


def merge_heads(models: Sequence[DualEncoder], name: str | None = None) -> DualEncoder:
    """One model whose image and text heads are the ensembles of the given models' heads.

    The models must share their architecture and backbone weights (frozen backbones, single projection
    heads); the first model's backbones are reused.
    """
    if len(models) < 2:
        raise ModelError("merging heads needs at least two models")
    first = models[0]
    reference = _identity(first)
    for model in models[1:]:
        if _identity(model) != reference:
            raise ModelError("models to merge must share architecture and backbones (frozen, same config)")
    image_heads: list[ProjectionHead] = []
    text_heads: list[ProjectionHead] = []
    for model in models:
        if not isinstance(model.image_head, ProjectionHead) or not isinstance(
            model.text_head, ProjectionHead
        ):
            raise ModelError("only single projection heads can be merged into an ensemble")
        if model.config.backbone_weight_prefixes or model.config.backbone_weights_included:
            raise ModelError("models with fine-tuned backbone weights cannot share one backbone")
        image_heads.append(copy.deepcopy(model.image_head))
        text_heads.append(copy.deepcopy(model.text_head))
    config = copy.deepcopy(first.config)
    config.head.ensemble = len(models)
    if name is not None:
        config.name = name
    inference = InferenceSettings(first.precision, first.engine, str(first.device))
    merged = DualEncoder(config, first.image_backbone, first.text_backbone, inference=inference)
    merged.image_head = EnsembleHead(image_heads)
    merged.text_head = EnsembleHead(text_heads)
    merged.eval()
    return merged.place()


def _identity(model: DualEncoder) -> tuple[object, ...]:
    c = model.config
    return (
        c.image.backbone,
        c.image.source,
        c.image.image_size,
        c.image.resize,
        c.text.backbone,
        c.text.source,
        c.text.pooling,
        c.text.max_length,
        c.embed_dim,
        c.head.kind,
        c.image_feature_dim,
        c.text_feature_dim,
    )


__all__ = ["merge_heads"]
