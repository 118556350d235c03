"""How a model runs inference on this machine: the device, numeric precision and image engine, read from
the environment (and ``--device``) once, where a model is created (``create_model``), and handed to it."""

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
    """``precision`` of PyTorch CPU inference (bf16: CPU autocast + channels-last), the image ``engine``
    and the ``device`` (``cpu``, ``cuda:N``, ``mps``) the model runs on. On a GPU, inference runs under
    half-precision autocast (bf16 where the GPU has it, else fp16) whatever ``precision`` says."""

    precision: Precision = "fp32"
    engine: EngineSetting = "torch"  # "auto": the image backbone decides (resolve_engine) when it is built
    device: str = "cpu"

    @classmethod
    def resolve(
        cls,
        precision: Precision | None = None,
        engine: EngineSetting | None = None,
        device: str | None = None,
    ) -> InferenceSettings:
        """The given values, with what is missing read from the environment and the machine (once).

        ``device`` is a ``--device`` value (``auto`` when None: the first CUDA GPU, else MPS, else the CPU);
        one that is not there is an InputError. On a GPU, ``auto`` engine means PyTorch (autocast on the
        GPU beats ONNX Runtime's CPU provider); ``onnx`` asks for ONNX Runtime's CUDA provider.
        """
        from frameseek.system.devices import resolve_device

        where = resolve_device(device)
        chosen = precision or default_precision()
        requested = engine or cast(EngineSetting, engine_setting())
        if where.is_gpu and requested == "auto":
            requested = "torch"
        return cls(chosen, cast(EngineSetting, resolve_engine(requested, chosen)), where.name)
