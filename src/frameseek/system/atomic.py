"""Atomic writes: write to a temporary name beside the target, fsync, then rename."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock

from frameseek.errors import ModelError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary file path beside ``target``; rename it onto ``target`` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; it replaces ``target`` only when the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def discard_stale_temporaries(target: Path, *extra_prefixes: str) -> list[Path]:
    """Remove what a killed writer of ``target`` left beside it; returns what was removed.

    That is ``atomic_dir`` / ``atomic_path``'s ``.<name>.*.tmp`` and ``.<name>.old-*`` plus entries
    starting with any of ``extra_prefixes``. Call it only while holding the lock that every writer of
    ``target`` holds: then nothing of that name can belong to a live writer.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    removed: list[Path] = []
    # tempfile's random part is 8 characters of [a-z0-9_]; atomic_dir's old copy ends with a process id
    ours = re.compile(rf"\.{re.escape(target.name)}\.(?:[a-z0-9_]{{8}}\.tmp|old-\d+)")
    for entry in target.parent.iterdir():
        name = entry.name
        if ours.fullmatch(name) or any(name.startswith(p) for p in extra_prefixes):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
            removed.append(entry)
    return removed


def write_bytes_atomic(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: Path, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))


def prepare_model_files(
    target: Path,
    complete: Callable[[Path], bool],
    build: Callable[[Path], None],
    *,
    what: str,
    stale_prefixes: tuple[str, ...] = (),
    lock_timeout: float = 600.0,
) -> Path:
    """``target`` once ``complete(target)`` says so; else ``build(target)`` (which writes atomically) under
    an inter-process lock, after removing what a killed builder left. A racing process waits, then reuses
    the result. Failures are one-line ModelErrors naming ``what`` ("the speech model")."""
    if complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with filelock.FileLock(str(target) + ".lock", timeout=lock_timeout):
            if not complete(target):  # another process may have finished it while we waited
                discard_stale_temporaries(target, *stale_prefixes)
                started = time.monotonic()
                build(target)
                log.info("prepared %s in %.1f s", what, time.monotonic() - started)
    except filelock.Timeout:
        raise ModelError(f"another process is still preparing {what} in {target}") from None
    except OSError as err:
        raise ModelError(f"cannot prepare {what} in {target}: {err.strerror or err}") from None
    return target
