"""Where models run: ``--device auto|cpu|cuda[:N]|mps``, resolved once, with one clear error when the
device is not there, and what follows from it (encoder batch size, NVDEC decoding). Autocast on the
device: ``DualEncoder``; ONNX Runtime's providers: ``onnx_engine.providers_for``."""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from typing import Any

from frameseek.errors import InputError

_SPEC = re.compile(r"auto|cpu|mps|cuda(?::(\d+))?")

GPU_BATCH_SIZE = 64
"""Frames per encoder call on a GPU: large enough to keep it busy, small enough for any card's memory
(64 × 3 × 224² half-precision inputs are 19 MB)."""


@dataclass(frozen=True)
class Device:
    """A resolved device: ``kind`` is cpu, cuda or mps; ``index`` the CUDA ordinal."""

    kind: str
    index: int = 0

    @property
    def torch(self) -> Any:
        import torch

        return torch.device(f"cuda:{self.index}" if self.kind == "cuda" else self.kind)

    @property
    def is_gpu(self) -> bool:
        return self.kind in ("cuda", "mps")

    @property
    def name(self) -> str:
        return f"cuda:{self.index}" if self.kind == "cuda" else self.kind

    def describe(self) -> str:
        """``cpu``, or the GPU's name (``cuda:0 (NVIDIA H200)``)."""
        if self.kind != "cuda":
            return self.kind
        import torch

        return f"{self.name} ({torch.cuda.get_device_name(self.index)})"

    def batch_size(self, cpu_default: int) -> int:
        return GPU_BATCH_SIZE if self.is_gpu else cpu_default

    def decoder_hwaccel(self) -> Any:
        """PyAV hardware decoding (NVDEC) for a CUDA device, falling back to software per stream."""
        if self.kind != "cuda":
            return None
        from av.codec.hwaccel import HWAccel, hwdevices_available

        if "cuda" not in hwdevices_available():
            return None
        return HWAccel(device_type="cuda", device=str(self.index), allow_software_fallback=True)


def check_device_spec(spec: str | None) -> None:
    """Fail fast on a misspelt ``--device`` (no torch import; whether the device is there is checked when
    the model is created)."""
    if spec is not None and _SPEC.fullmatch(spec.strip().lower()) is None:
        raise InputError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {spec!r}")


def resolve_device(spec: str | None = None) -> Device:
    """``auto`` → the first CUDA GPU, else Apple's MPS, else the CPU; an explicit device that is not
    available is an InputError naming what is missing. ``None``: ``$FRAMESEEK_DEVICE``, else ``auto``."""
    text = (spec or os.environ.get("FRAMESEEK_DEVICE", "") or "auto").strip().lower()
    check_device_spec(text)
    match = _SPEC.fullmatch(text)
    assert match is not None
    if text == "cpu":
        return Device("cpu")
    if importlib.util.find_spec("torch") is None:  # pragma: no cover - torch is a dependency
        raise InputError("--device needs torch")
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if text == "auto":
        return Device("cuda", 0) if cuda else Device("mps") if mps else Device("cpu")
    if text == "mps":
        if not mps:
            raise InputError("--device mps: Apple's Metal (MPS) backend is not available on this machine")
        return Device("mps")
    if not cuda:
        raise InputError(
            f"--device {text}: no CUDA GPU is available (this torch build is {torch.__version__}; "
            "install a CUDA build of torch on a machine with an NVIDIA GPU)"
        )
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise InputError(f"--device {text}: this machine has {count} CUDA GPU(s) (cuda:0 … cuda:{count - 1})")
    return Device("cuda", index)


def check_requested_device(spec: str | None = None) -> None:
    """Fail at once when the device the user asked for (``spec``, else ``$FRAMESEEK_DEVICE``) is not on
    this machine: the same InputError ``resolve_device`` gives, before any work, also when no model would
    be created (an index that exists answers a text query without one). ``auto`` and ``cpu`` always
    exist and need no torch import."""
    text = (spec or os.environ.get("FRAMESEEK_DEVICE", "") or "auto").strip().lower()
    if text not in ("auto", "cpu"):
        resolve_device(text)
