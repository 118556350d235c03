"""Dual-encoder models: presets, backbones, heads, losses and checkpoint folders."""

from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import create_model
from frameseek.models.registry import DEFAULT_MODEL, PRESETS

__all__ = ["DEFAULT_MODEL", "PRESETS", "DualEncoder", "create_model"]
