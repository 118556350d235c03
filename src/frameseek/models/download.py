"""``frameseek models --download NAME``: fetch a preset's hub weights into the local Hugging Face cache, so
that it loads offline later (and ``--model auto`` picks it)."""

from __future__ import annotations

from pathlib import Path

from frameseek.errors import ModelError, one_line
from frameseek.models.registry import PRESETS, hub_cached

# What the backbones read: configs, tokenizer files and safetensors weights (not TF / Flax / ONNX copies).
ALLOW_PATTERNS = ("*.json", "*.txt", "*.safetensors", "*.model")


def download_preset(name: str) -> list[Path]:
    """Download (or find in the cache) every hub repository a preset names; their snapshot folders.

    Uses ``huggingface_hub.snapshot_download``: ``HF_HUB_OFFLINE``, ``HF_HOME`` / ``HF_HUB_CACHE`` and
    ``HF_TOKEN`` are honoured. Failures (offline, unknown repository, no network, disk full) become one-line
    ``ModelError``s.
    """
    spec = PRESETS.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r} (presets: {', '.join(PRESETS)})")
    if not spec.hub_ids:
        raise ModelError(f"model {name!r} needs no download: its weights ship in installed packages")
    from huggingface_hub import snapshot_download

    folders = []
    for repo_id in spec.hub_ids:
        try:
            folder = snapshot_download(repo_id, allow_patterns=list(ALLOW_PATTERNS))
        except Exception as exc:  # the hub library raises many types (offline, 404, gated, HTTP, OS)
            from huggingface_hub import constants

            if constants.HF_HUB_OFFLINE:
                raise ModelError(
                    f"{repo_id!r} (model {name!r}) is not in the local Hugging Face cache and HF_HUB_OFFLINE "
                    "is set: unset it on a machine with internet to download"
                ) from None
            raise ModelError(
                f"could not download {repo_id!r} for model {name!r}: {one_line(exc, 300)}"
            ) from None
        if not hub_cached(repo_id):
            raise ModelError(f"{repo_id!r} has no config.json and safetensors weights in {folder}")
        folders.append(Path(folder))
    return folders
