"""Stage 4, the writer: a finished visual track → its index folder, published atomically."""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from filelock import Timeout

from frameseek.storage.store import lock_for, save_index
from frameseek.storage.visual import VideoIndex
from frameseek.system.atomic import discard_stale_temporaries

_SCRATCH = re.compile(r"\.thumbs-(?P<name>.+)-[a-z0-9_]{8}")
"""A scratch folder's name: ``.thumbs-<index folder name>-<tempfile's 8 random characters>``."""


def discard_stale_scratch(indexes: Path) -> list[Path]:
    """Remove the scratch thumbnail folders that killed builds left anywhere under ``indexes``.

    A build that is never retried (a service job failed after its last kill) would leave its scratch
    folder for good: each one found is removed under its index folder's lock, taken without waiting, so
    a build running now (it holds the lock) is never touched. Returns what was removed.
    """
    removed: list[Path] = []
    for pattern in ("*/*/visual/.thumbs-*", "*/*/.thumbs-*"):
        for entry in sorted(indexes.glob(pattern)):
            match = _SCRATCH.fullmatch(entry.name)
            if match is None or not entry.is_dir() or entry.is_symlink():
                continue
            folder = entry.parent / match["name"]
            lock = lock_for(folder)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue  # being built now: its own build removes its scratch folder
            try:
                removed += discard_stale_temporaries(folder, f".thumbs-{folder.name}-")
            finally:
                lock.release()
    return removed


class IndexWriter:
    """Owns the scratch thumbnail folder of one build and publishes the index when it is complete."""

    @staticmethod
    @contextlib.contextmanager
    def scratch(folder: Path) -> Iterator[Path]:
        """A temporary thumbnail folder beside ``folder``, removed afterwards (call under the build lock).

        What a killed build of the same folder left is stale under that lock, and is removed first.
        """
        prefix = f".thumbs-{folder.name}-"
        folder.parent.mkdir(parents=True, exist_ok=True)
        discard_stale_temporaries(folder, prefix)
        thumbs = Path(tempfile.mkdtemp(prefix=prefix, dir=folder.parent))
        try:
            yield thumbs
        finally:
            shutil.rmtree(thumbs, ignore_errors=True)

    def __call__(self, index: VideoIndex, thumbs: Path) -> VideoIndex:
        return save_index(index, thumbs)
