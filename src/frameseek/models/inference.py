"""How a model runs inference on this machine: numeric precision and image engine, read from the
environment once, where a model is created (``create_model``), and handed to the model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from frameseek.errors import InputError
from frameseek.models.onnx_engine import engine_setting, resolve_engine

Precision = Literal["fp32", "bf16"]
Engine = Literal["torch", "onnx"]
EngineSetting = Literal["auto", "torch", "onnx"]


def default_precision() -> Precision:
    """``bf16`` where the CPU has native bfloat16 (AVX512-BF16 / AMX), else ``fp32``; env overrides."""
    forced = os.environ.get("FRAMESEEK_PRECISION", "").strip().lower()
    if forced in ("fp32", "bf16"):
        return cast(Precision, forced)
    if forced:
        raise InputError(f"environment variable FRAMESEEK_PRECISION must be fp32 or bf16, got {forced!r}")
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "fp32"
    return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "fp32"


@dataclass(frozen=True)
class InferenceSettings:
    """``precision`` of PyTorch inference (bf16: CPU autocast + channels-last) and the image ``engine``."""

    precision: Precision = "fp32"
    engine: Engine = "torch"

    @classmethod
    def resolve(
        cls, precision: Precision | None = None, engine: EngineSetting | None = None
    ) -> InferenceSettings:
        """The given values, with what is missing read from the environment and the CPU (once)."""
        chosen = precision or default_precision()
        requested = engine or cast(EngineSetting, engine_setting())
        return cls(chosen, cast(Engine, resolve_engine(requested, chosen)))
