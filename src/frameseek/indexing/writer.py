"""Stage 4, the writer: a finished visual track → its index folder, published atomically."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from frameseek.storage.store import save_index
from frameseek.storage.visual import VideoIndex
from frameseek.system.atomic import discard_stale_temporaries


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
