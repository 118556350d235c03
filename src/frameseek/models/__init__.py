"""Dual-encoder models: presets, backbones, heads, losses and checkpoint folders."""

from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.registry import DEFAULT_MODEL, PRESETS, load_model

__all__ = ["DEFAULT_MODEL", "PRESETS", "DualEncoder", "load_model"]
