"""Checkpoint folders: ``config.json`` + ``model.safetensors``. Nothing is ever unpickled."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from frameseek.errors import ModelError
from frameseek.models.config import CONFIG_NAME, WEIGHTS_NAME, DualEncoderConfig
from frameseek.system.atomic import atomic_dir

HEAD_PREFIXES = ("image_head.", "text_head.")


def save_checkpoint(model: torch.nn.Module, folder: Path, include_backbones: bool | None = None) -> Path:
    """Write the folder atomically: a half-written checkpoint never appears under ``folder``."""
    config: DualEncoderConfig = model.config  # type: ignore[assignment]
    if include_backbones is None:
        include_backbones = config.backbone_weights_included
    partial = tuple(config.backbone_weight_prefixes)
    state = {
        key: tensor.detach().cpu().contiguous()
        for key, tensor in model.state_dict().items()
        if include_backbones or key.startswith(HEAD_PREFIXES) or (partial and key.startswith(partial))
    }
    config.backbone_weights_included = bool(include_backbones)
    dtype = getattr(torch, config.weights_dtype)
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    with atomic_dir(folder) as tmp:
        (tmp / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
        save_file(_dedupe_shared(state), str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
    return folder


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    path = folder / WEIGHTS_NAME
    if not path.is_file():
        raise ModelError(f"checkpoint {folder} has no {WEIGHTS_NAME}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path} is not a valid safetensors file: {exc}") from None


def load_weights_into(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    """Copy weights in; every head tensor (and partial-backbone tensor the config lists) must be present.

    Backbone tensors may be a subset: the rest keep the weights the backbone was built with. A deferred
    image backbone (``DualEncoder.built_state_dict``) is not built here: its tensors are then unexpected.
    """
    built = getattr(model, "built_state_dict", None)
    expected = built() if callable(built) else model.state_dict()
    config = getattr(model, "config", None)
    required = HEAD_PREFIXES + tuple(getattr(config, "backbone_weight_prefixes", ()) or ())
    for key in expected:
        if key.startswith(required) and key not in weights:
            raise ModelError(f"checkpoint {source} lacks weight {key!r}")
    for key, tensor in weights.items():
        if key not in expected:
            raise ModelError(f"checkpoint {source} has unexpected weight {key!r} (wrong architecture?)")
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ModelError(
                f"checkpoint {source} weight {key!r} has shape {tuple(tensor.shape)}, "
                f"the model expects {tuple(expected[key].shape)} (wrong dimensions)"
            )
    model.load_state_dict(weights, strict=False)


def _dedupe_shared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors that share memory (tied weights): store clones."""
    seen: set[int] = set()
    out = {}
    for key, tensor in state.items():
        ptr = tensor.untyped_storage().data_ptr()
        out[key] = tensor.clone() if ptr in seen else tensor
        seen.add(ptr)
    return out
