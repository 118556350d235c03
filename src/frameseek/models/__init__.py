"""Dual-encoder models: presets, backbones, heads, query and image engines, and checkpoint folders.

The exports load lazily: importing a light submodule (``config``, ``registry``, ``preprocess``) does not
import torch and transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from frameseek.models.dual_encoder import DualEncoder
    from frameseek.models.factory import create_model
    from frameseek.models.registry import DEFAULT_MODEL, PRESETS

__all__ = ["DEFAULT_MODEL", "PRESETS", "DualEncoder", "create_model"]


def __getattr__(name: str) -> Any:
    if name == "DualEncoder":
        from frameseek.models.dual_encoder import DualEncoder

        return DualEncoder
    if name == "create_model":
        from frameseek.models.factory import create_model

        return create_model
    if name in ("DEFAULT_MODEL", "PRESETS"):
        from frameseek.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'frameseek.models' has no attribute {name!r}")
