"""A per-sentence cache of text encodings for the lab (``$FRAMESEEK_HOME/lab/multilingual/<kind>/``).

``cached(kind, texts, encode)`` returns ``encode(texts)`` computing each sentence once: shards of ``.npy``
rows with a ``.json`` listing of their sentences, each written atomically (the listing last, so a shard
without one is never read). A longer or reordered list reuses every sentence already encoded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from frameseek import settings
from frameseek.system.atomic import atomic_path


def _cache_folder(kind: str) -> Path:
    return settings.home() / "lab" / "multilingual" / kind


def _read_shards(folder: Path) -> dict[str, tuple[Path, int]]:
    """Where each cached sentence's row is: text → (the shard's .npy, its row)."""
    found: dict[str, tuple[Path, int]] = {}
    for listing in sorted(folder.glob("*.json")):
        array = listing.with_suffix(".npy")
        try:
            texts = json.loads(listing.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a damaged listing: its sentences are encoded again
        if array.is_file() and isinstance(texts, list):
            for row, text in enumerate(texts):
                found.setdefault(str(text), (array, row))
    return found


def cached(kind: str, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """``encode(texts)``, each sentence computed once and kept under ``$FRAMESEEK_HOME/lab/``: the cache
    is per sentence (shards of ``.npy`` rows + a ``.json`` listing, each written atomically), so a longer
    or reordered list reuses every sentence already encoded."""
    folder = _cache_folder(kind)
    known = _read_shards(folder) if folder.is_dir() else {}
    missing = list(dict.fromkeys(t for t in texts if t not in known))
    if missing:
        out = np.asarray(encode(missing), dtype=np.float32)
        digest = hashlib.sha256("\n".join(missing).encode("utf-8")).hexdigest()[:16]
        folder.mkdir(parents=True, exist_ok=True)
        array, listing = folder / f"{digest}.npy", folder / f"{digest}.json"
        with atomic_path(array) as tmp, open(tmp, "wb") as handle:
            np.save(handle, out)
        with atomic_path(listing) as tmp:  # the listing last: a shard without one is never read
            tmp.write_text(json.dumps(missing, ensure_ascii=False), encoding="utf-8")
        known.update({t: (array, row) for row, t in enumerate(missing)})
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    shards: dict[Path, np.ndarray] = {}
    rows = []
    for text in texts:
        path, row = known[text]
        if path not in shards:
            shards[path] = np.load(path, mmap_mode="r")
        rows.append(np.asarray(shards[path][row], dtype=np.float32))
    return np.stack(rows)
