"""frameseek: find the moments in a video that match a sentence."""

from __future__ import annotations

from typing import Any

from frameseek.malloc import limit_malloc_arenas

limit_malloc_arenas()  # now, before torch, FFmpeg or our own threads allocate (see frameseek.malloc)

__version__ = "0.1.0"
__all__ = ["SearchResponse", "SearchResult", "Searcher", "__version__", "load_model"]


def __getattr__(name: str) -> Any:
    """Lazy exports, so ``import frameseek`` stays cheap (torch loads only when a model is needed)."""
    if name in ("Searcher", "SearchResult", "SearchResponse"):
        from frameseek import search

        return getattr(search, name)
    if name == "load_model":
        from frameseek.models.registry import load_model

        return load_model
    raise AttributeError(f"module 'frameseek' has no attribute {name!r}")
