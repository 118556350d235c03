"""frameseek: find the moments in a video that match a sentence."""

from __future__ import annotations

from typing import Any

from frameseek.system.malloc import limit_malloc_arenas
from frameseek.version import __version__

limit_malloc_arenas()  # now, before torch, FFmpeg or our own threads allocate (see frameseek.system.malloc)

__all__ = ["Query", "Sampling", "SearchResponse", "SearchResult", "Searcher", "__version__", "create_model"]


def __getattr__(name: str) -> Any:
    """Lazy exports, so ``import frameseek`` stays cheap (torch loads only when a model is needed)."""
    if name in ("Searcher", "SearchResult", "SearchResponse"):
        from frameseek import search

        return getattr(search, name)
    if name == "create_model":
        from frameseek.models.factory import create_model

        return create_model
    if name == "Query":
        from frameseek.query import Query

        return Query
    if name == "Sampling":
        from frameseek.video.sampling import Sampling

        return Sampling
    raise AttributeError(f"module 'frameseek' has no attribute {name!r}")
