"""The one door to a model: ``create_model(name or checkpoint folder, precision=, engine=, device=)``."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch

import frameseek.models.registry as registry
from frameseek.errors import ModelError
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.inference import EngineSetting, InferenceSettings, Precision
from frameseek.models.registry import AUTO_MODEL, DEFAULT_MODEL, PRESETS

log = logging.getLogger(__name__)


def build_preset(name: str, seed: int = 0, *, inference: InferenceSettings | None = None) -> DualEncoder:
    """A preset's architecture with backbones loaded from their sources and fresh (seeded) heads."""
    if name not in PRESETS:
        raise ModelError(
            f"unknown model {name!r} (presets: {', '.join(PRESETS)}; or give a checkpoint folder)"
        )
    torch.manual_seed(seed)
    return DualEncoder.from_config(
        copy.deepcopy(PRESETS[name].config), inference=inference or InferenceSettings.resolve()
    )


def load_checkpoint(folder: Path, *, inference: InferenceSettings | None = None) -> DualEncoder:
    """Load a checkpoint folder: rebuild backbones from the config's sources, then load its weights."""
    return DualEncoder.from_pretrained(folder, inference=inference or InferenceSettings.resolve())


def create_model(
    name_or_path: str = DEFAULT_MODEL,
    *,
    precision: Precision | None = None,
    engine: EngineSetting | None = None,
    device: str | None = None,
) -> DualEncoder:
    """A preset by name, ``auto`` (see ``registry.resolve_auto``) or a checkpoint folder (``config.json`` +
    ``model.safetensors``), ready to encode.

    ``precision`` / ``engine`` default to ``FRAMESEEK_PRECISION`` / ``FRAMESEEK_ENGINE`` and the CPU's
    abilities, read here once. ``device`` (``auto`` | ``cpu`` | ``cuda[:N]`` | ``mps``; default
    ``$FRAMESEEK_DEVICE``, else ``auto``) is where the model runs; a device that is not there is an
    InputError. Deferred backbones stay deferred and are built on that device when first needed.
    """
    inference = InferenceSettings.resolve(precision, engine, device)
    return _create(name_or_path, inference).place()


def _create(name_or_path: str, inference: InferenceSettings) -> DualEncoder:
    if name_or_path == AUTO_MODEL:
        # resolved here, before anything keys on the model: the loaded model's name and fingerprint are the
        # chosen preset's, so an index built with one model is never searched with another
        name_or_path, note = registry.resolve_auto()
        log.warning(note)  # the command line shows it as one ``note:`` line
    if name_or_path in PRESETS:
        folder = registry.packaged_weights(name_or_path)  # looked up at call time (tests replace it)
        if folder is not None:
            return load_checkpoint(folder, inference=inference)
        if PRESETS[name_or_path].config.head.kind == "projection" and PRESETS[name_or_path].weights_folder:
            raise ModelError(f"model {name_or_path!r} has no trained heads installed; run `frameseek train`")
        model = build_preset(name_or_path, inference=inference)
        model.eval()
        return model
    path = Path(name_or_path).expanduser()
    if path.exists():
        return load_checkpoint(path, inference=inference)
    raise ModelError(
        f"unknown model {name_or_path!r}: not a preset ({', '.join(PRESETS)}) and no such checkpoint folder"
    )
