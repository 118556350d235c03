"""Tests for the ONNX Runtime image engine: same embeddings as PyTorch fp32, exported once and cached,
hub-style backbones too, a clear setting, and a fallback to PyTorch when a backbone cannot be exported."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
import torch

from conftest import TinyHubModels
from frameseek.errors import InputError
from frameseek.models import backbones, onnx_engine
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import build_preset
from frameseek.models.inference import InferenceSettings
from frameseek.models.onnx_engine import OnnxImageEngine, engine_setting, resolve_engine
from frameseek.models.registry import PRESETS

pytestmark = pytest.mark.skipif(not onnx_engine.onnxruntime_available(), reason="onnxruntime not installed")


def _frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random colour fields (a CNN sees them like photos, unlike white noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(n, 6, 8, 3)).astype(np.uint8)
    return [np.kron(c, np.ones((30, 40, 1), dtype=np.uint8)) for c in coarse]


def _both_engines(model: DualEncoder, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    engine, precision = model.engine, model.precision
    try:
        model.precision = "fp32"
        model.engine = "torch"
        reference = model.encode_images(images, batch_size=3)
        model.engine = "onnx"
        fast = model.encode_images(images, batch_size=3)
    finally:
        model.engine, model.precision = engine, precision
    return reference, fast


def test_lite_onnx_matches_pytorch_fp32(fs_home: Path) -> None:
    model = build_preset("lite").eval()
    reference, fast = _both_engines(model, _frames(5))
    assert fast.shape == reference.shape == (5, 512)
    np.testing.assert_allclose(fast, reference, atol=1e-4)
    exported = list((fs_home / "engines").glob("*.onnx"))
    assert [p.name for p in exported] == [f"{model.fingerprint}-224.onnx"]


def test_hub_style_resnet_and_clip_backbones_export(tiny_hub_models: TinyHubModels, fs_home: Path) -> None:
    resnet = DualEncoder.from_config(tiny_hub_models.dual_config()).eval()
    reference, fast = _both_engines(resnet, _frames(4))
    np.testing.assert_allclose(fast, reference, atol=1e-4)

    config = copy.deepcopy(PRESETS["clip-vit-b32"].config)  # CLIP's vision tower, as a hub id loads it
    config.image.source = config.text.source = str(tiny_hub_models.clip)
    config.image.image_size = tiny_hub_models.clip_image_size
    config.embed_dim = tiny_hub_models.clip_projection_dim
    clip = DualEncoder.from_config(config).eval()
    reference, fast = _both_engines(clip, _frames(4, seed=1))
    np.testing.assert_allclose(fast, reference, atol=1e-4)
    assert len(list((fs_home / "engines").glob("*.onnx"))) == 2


def test_exported_file_is_reused_by_a_new_process_and_a_damaged_one_rebuilt(
    fs_home: Path, tiny_hub_models: TinyHubModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = DualEncoder.from_config(tiny_hub_models.dual_config()).eval()
    pixels = model.preprocess(_frames(2))
    first = OnnxImageEngine(model.image_backbone, 64, model.fingerprint)
    expected = first.features(pixels, threads=1)
    assert expected is not None and first.path.is_file()

    exports: list[Path] = []
    real_export = onnx_engine.export_image_backbone
    monkeypatch.setattr(
        onnx_engine, "export_image_backbone", lambda *a: exports.append(a[2]) or real_export(*a)
    )
    again = OnnxImageEngine(model.image_backbone, 64, model.fingerprint)  # as in a new process
    torch.testing.assert_close(again.features(pixels, threads=2), expected)
    assert exports == []  # loaded, not exported

    first.path.write_bytes(b"not an onnx file")
    rebuilt = OnnxImageEngine(model.image_backbone, 64, model.fingerprint)
    torch.testing.assert_close(rebuilt.features(pixels, threads=1), expected)
    assert exports == [first.path]
    assert not [p for p in first.path.parent.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_a_backbone_that_cannot_be_exported_falls_back_to_pytorch(
    fs_home: Path,
    tiny_hub_models: TinyHubModels,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    class Untraceable(torch.nn.Module):
        """A backbone using an operator ONNX has no equivalent for (a custom model might)."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            features = self.inner(pixels)
            return features + 0.0 * torch.special.i1(features)

    model = DualEncoder.from_config(tiny_hub_models.dual_config()).eval()
    model.engine = "torch"
    reference = model.encode_images(_frames(2))
    inner = model.image_backbone
    wrapper = Untraceable(inner)
    wrapper.image_size, wrapper.mean, wrapper.std = inner.image_size, inner.mean, inner.std  # type: ignore[assignment]
    model.image_backbone = wrapper  # type: ignore[assignment]
    model.invalidate_fingerprint()
    model.engine = "onnx"
    with caplog.at_level(logging.WARNING, logger="frameseek.models.onnx_engine"):
        fallback = model.encode_images(_frames(2))
        model.encode_images(_frames(2))
    np.testing.assert_allclose(fallback, reference, atol=1e-5)
    warnings = [r for r in caplog.records if "using PyTorch" in r.getMessage()]
    assert len(warnings) == 1  # said once, not per batch
    assert "special_i1" in warnings[0].getMessage()
    out, err = capfd.readouterr()
    assert "graph" not in out + err  # the exporter's IR dump does not reach the user's terminal
    assert not list((fs_home / "engines").glob("*.onnx"))


def test_engine_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRAMESEEK_ENGINE", raising=False)
    assert engine_setting() == "auto"
    monkeypatch.setenv("FRAMESEEK_ENGINE", " Torch ")
    assert engine_setting() == "torch"
    assert build_preset("lite").engine == "torch"
    monkeypatch.setenv("FRAMESEEK_ENGINE", "tensorrt")
    with pytest.raises(InputError, match="FRAMESEEK_ENGINE must be one of auto, torch, onnx, got 'tensorrt'"):
        engine_setting()


def test_auto_keeps_pytorch_bf16_for_heavy_backbones_where_the_cpu_has_it() -> None:
    assert resolve_engine("auto", "bf16", heavy_image_backbone=True) == "torch"
    assert resolve_engine("auto", "bf16", heavy_image_backbone=False) == "onnx"
    assert resolve_engine("auto", "bf16") == "auto"  # the backbone decides once it is built
    assert resolve_engine("auto", "fp32") == "onnx"
    assert resolve_engine("auto", "fp32", heavy_image_backbone=True) == "onnx"
    assert resolve_engine("torch", "fp32") == "torch"
    assert resolve_engine("onnx", "bf16", heavy_image_backbone=True) == "onnx"


def test_an_auto_engine_is_decided_by_the_image_backbone(tiny_hub_models: TinyHubModels) -> None:
    """On a bf16 CPU, ``auto`` waits for the image backbone: light (the tiny test backbone) → ONNX
    Runtime; heavy → PyTorch bf16."""
    settings = InferenceSettings(precision="bf16", engine="auto")
    model = DualEncoder.from_config(tiny_hub_models.dual_config(), inference=settings)
    assert not model.image_backbone.heavy
    assert model.engine == "onnx"
    assert model.image_inference == "onnxruntime fp32"
    heavy = DualEncoder.from_config(tiny_hub_models.dual_config(), inference=settings)
    with patch.object(backbones, "HEAVY_IMAGE_PARAMETERS", 1):
        assert heavy.engine == "torch"
    assert heavy.image_inference == "torch bf16"


def test_training_mode_never_uses_the_engine(tiny_hub_models: TinyHubModels, fs_home: Path) -> None:
    model = DualEncoder.from_config(tiny_hub_models.dual_config())
    model.engine = "onnx"
    model.train()
    pixels = model.preprocess(_frames(2))
    features = model.image_features(pixels)
    assert features.requires_grad  # PyTorch, differentiable
    model.encode_pixels(pixels)
    assert not (fs_home / "engines").exists()
