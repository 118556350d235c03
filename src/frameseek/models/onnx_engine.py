"""Image-backbone inference through ONNX Runtime: the same fp32 network, exported once, run faster.

On CPUs without native bfloat16 (most laptops: AVX2 only) PyTorch's eager fp32 convolutions leave a
lot of speed behind; ONNX Runtime runs the identical graph faster (measured 2.5× for EfficientNet-Lite0,
1.4× for ResNet-50: BENCHMARKS.md, encoder throughput) with outputs equal to fp32 PyTorch's up to
rounding (~1e-5). Where the CPU has native bfloat16 (AVX512-BF16 / AMX), PyTorch's bf16 autocast is the
faster path for heavy dense backbones (ResNet-50) and ``auto`` keeps it for them (``resolve_engine``).

The exported graph is cached as ``$FRAMESEEK_HOME/engines/<model fingerprint>-<size>.onnx`` (written
atomically), so a new process only loads it (~30 ms). A backbone that cannot be exported falls back to
PyTorch with one warning: the engine is a speed-up, never a reason to fail.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from frameseek import settings
from frameseek.errors import InputError
from frameseek.system.atomic import atomic_path

log = logging.getLogger(__name__)

ENGINES = ("auto", "torch", "onnx")
"""``FRAMESEEK_ENGINE`` values: ``auto`` (onnx unless the CPU runs bf16 natively and the image backbone is
heavy), ``torch``, ``onnx``."""

OPSET = 17


def engine_setting() -> str:
    """``$FRAMESEEK_ENGINE`` (default ``auto``); anything else is an InputError naming the variable."""
    raw = os.environ.get("FRAMESEEK_ENGINE", "").strip().lower()
    if not raw:
        return "auto"
    if raw not in ENGINES:
        raise InputError(
            f"environment variable FRAMESEEK_ENGINE must be one of {', '.join(ENGINES)}, got {raw!r}"
        )
    return raw


def onnxruntime_available() -> bool:
    """True if ``onnxruntime`` and ``onnx`` (needed to export) are installed; imports neither (~0.35 s),
    so building a model that never encodes an image costs nothing for the check."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def resolve_engine(requested: str, precision: str, heavy_image_backbone: bool | None = None) -> str:
    """The engine that runs image inference, ``torch`` or ``onnx`` (if installed); ``auto`` → ``onnx``,
    except on a CPU with native bf16 for a heavy image backbone (``ImageBackbone.heavy``), which PyTorch's
    bf16 autocast runs faster. Measured on such a CPU (BENCHMARKS.md, encoder throughput, 1 thread):
    ResNet-50 17.9 img/s in bf16 vs 11.9 on ONNX Runtime at batch 8; EfficientNet-Lite0's depthwise
    network 52 vs 88 at batch 1 and 57 vs 74 at batch 32 (85 vs 78 at batch 8), and indexing, which
    encodes the frame or two that are ready, reaches the decode limit only on ONNX Runtime.

    ``heavy_image_backbone=None`` (not known yet): ``auto`` where the backbone decides, else the engine.
    """
    if requested == "torch":
        return "torch"
    if requested == "onnx":
        return "onnx" if onnxruntime_available() else "torch"
    if not onnxruntime_available():
        return "torch"
    if precision != "bf16":
        return "onnx"
    if heavy_image_backbone is None:
        return "auto"
    return "torch" if heavy_image_backbone else "onnx"


def engines_dir() -> Path:
    return settings.home() / "engines"


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence the TorchScript exporter's graph dump on failure (torch 2.13 enables its log during every
    export: ``setup_onnx_logging`` tests the function object, not its result), and its warnings."""
    original = getattr(torch._C, "_jit_onnx_log", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if original is not None:
            torch._C._jit_onnx_log = lambda *args: None
        try:
            yield
        finally:
            if original is not None:
                torch._C._jit_onnx_log = original


def export_image_backbone(backbone: nn.Module, image_size: int, target: Path) -> Path:
    """Write ``backbone`` (pixels (n, 3, s, s) → features (n, F)) as an ONNX file, atomically."""
    device = next((t.device for t in backbone.parameters()), torch.device("cpu"))
    example = torch.zeros(1, 3, image_size, image_size, device=device)  # traced where the backbone is
    was_training = backbone.training
    backbone.eval()
    try:
        with atomic_path(target) as tmp, quiet_exporter():
            torch.onnx.export(
                backbone,
                (example,),
                str(tmp),
                dynamo=False,
                input_names=["pixels"],
                output_names=["features"],
                dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
                opset_version=OPSET,
            )
    finally:
        backbone.train(was_training)
    return target


def providers_for(device: torch.device | None) -> list[str | tuple[str, dict[str, Any]]]:
    """ONNX Runtime providers: CUDA first for a CUDA device when onnxruntime-gpu provides it, then CPU."""
    if device is None or device.type != "cuda":
        return ["CPUExecutionProvider"]
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    if "CUDAExecutionProvider" not in available:
        log.warning("onnxruntime has no CUDA provider (install onnxruntime-gpu): ONNX runs on the CPU")
        return ["CPUExecutionProvider"]
    return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]


class OnnxSession:
    """One ONNX Runtime session with a fixed number of threads: ``session(pixels) -> features``."""

    def __init__(self, path: Path, threads: int, device: torch.device | None = None) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # spinning threads would steal the core the decoder runs on (2-core machines suffer most)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session: Any = ort.InferenceSession(str(path), options, providers=providers_for(device))

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        array = pixels.detach().to(torch.float32).contiguous().numpy()
        (features,) = self._session.run(["features"], {"pixels": array})
        return torch.from_numpy(features)


class OnnxImageEngine:
    """Exports a model's image backbone on first use and keeps one session per thread count."""

    def __init__(
        self, backbone: nn.Module, image_size: int, key: str, device: torch.device | None = None
    ) -> None:
        self.backbone = backbone
        self.image_size = image_size
        self.key = key
        self.device = device
        self._sessions: dict[int, OnnxSession] = {}
        self._failed = False
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return engines_dir() / f"{self.key}-{self.image_size}.onnx"

    def session(self, threads: int) -> OnnxSession | None:
        """The session for ``threads`` (exporting the backbone if no cached file exists); None if it failed."""
        with self._lock:
            if self._failed:
                return None
            session = self._sessions.get(threads)
            if session is None:
                try:
                    session = self._open(threads)
                except Exception as exc:  # any exporter/runtime failure: PyTorch still works
                    self._failed = True
                    log.warning("ONNX Runtime unavailable for this model, using PyTorch (%s)", exc)
                    return None
                self._sessions[threads] = session
            return session

    def _open(self, threads: int) -> OnnxSession:
        path = self.path
        if path.is_file():
            try:
                return OnnxSession(path, threads, self.device)
            except Exception as exc:  # an unreadable cached file: export it again
                log.info("re-exporting %s (%s)", path, exc)
        export_image_backbone(self.backbone, self.image_size, path)
        return OnnxSession(path, threads, self.device)

    def features(self, pixels: torch.Tensor, threads: int) -> torch.Tensor | None:
        """Backbone features of a preprocessed batch, or None when the engine cannot run this model."""
        session = self.session(threads)
        return None if session is None else session(pixels)
