"""The multi-scale EfficientNet-Lite0 backbone and head ensembles (merge, save, load)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from frameseek.errors import ModelError
from frameseek.lab.ensemble import merge_heads
from frameseek.models.backbones import EfficientNetLiteImage, EfficientNetLiteMultiScale
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import create_model
from frameseek.models.heads import EnsembleHead, ProjectionHead, build_head
from frameseek.models.registry import PRESETS


def test_multiscale_features_extend_the_plain_ones() -> None:
    plain, multi = EfficientNetLiteImage(), EfficientNetLiteMultiScale()
    plain.eval()
    multi.eval()
    pixels = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        a, b = plain(pixels), multi(pixels)
    assert multi.out_dim == b.shape[1] == 112 + 192 + 320 + 1280
    torch.testing.assert_close(b[:, -1280:], a)  # the last 1280 are exactly the usual head features


def test_ensemble_head_output_is_the_scaled_concatenation() -> None:
    torch.manual_seed(0)
    heads = [ProjectionHead(8, 4, dropout=0.0), ProjectionHead(8, 4, dropout=0.0)]
    ensemble = EnsembleHead(heads)
    ensemble.eval()
    x = torch.randn(3, 8)
    out = ensemble(x)
    expected = torch.cat([torch.nn.functional.normalize(h(x), dim=-1) for h in heads], -1) / 2**0.5
    torch.testing.assert_close(out, expected)
    assert out.shape == (3, 8) and torch.allclose(out.norm(dim=-1), torch.ones(3))
    assert isinstance(build_head("projection", 8, 4, 0.1, 0.0, ensemble=3), EnsembleHead)
    with pytest.raises(ValueError):
        EnsembleHead([heads[0]])


def _lite_with_random_heads(seed: int) -> DualEncoder:
    torch.manual_seed(seed)
    return DualEncoder.from_config(copy.deepcopy(PRESETS["lite"].config))


def test_merged_scores_are_the_mean_of_the_members(tmp_path: Path) -> None:
    members = [_lite_with_random_heads(s) for s in (0, 1, 2)]
    for m in members:
        m.eval()
    merged = merge_heads(members, name="lite")
    assert merged.embed_dim == 3 * 512 and merged.config.head.ensemble == 3
    texts = ["a dog runs on the grass", "a cyclist wearing a helmet"]
    images = [np.random.default_rng(1).integers(0, 255, (90, 160, 3), dtype=np.uint8)]
    image_emb, text_emb = merged.encode_images(images), merged.encode_texts(texts)
    member_scores = np.mean([m.encode_texts(texts) @ m.encode_images(images).T for m in members], axis=0)
    np.testing.assert_allclose(text_emb @ image_emb.T, member_scores, atol=2e-3)  # bf16 images
    folder = merged.save_pretrained(tmp_path / "ensemble")
    loaded = create_model(str(folder))
    assert loaded.embed_dim == 1536
    np.testing.assert_allclose(loaded.encode_texts(texts), text_emb, atol=1e-6)


def test_merge_refuses_models_that_differ() -> None:
    a = _lite_with_random_heads(0)
    with pytest.raises(ModelError, match="at least two"):
        merge_heads([a])
    other = copy.deepcopy(PRESETS["lite"].config)
    other.image.backbone = "efficientnet-lite0"
    with pytest.raises(ModelError, match="share"):
        merge_heads([a, DualEncoder.from_config(other)])


def test_installed_lite_model_loads_as_shipped() -> None:
    model = create_model("lite")
    emb = model.encode_texts(["a bike parked against a wall"])
    assert emb.shape == (1, model.embed_dim)
    assert abs(float(np.linalg.norm(emb)) - 1.0) < 1e-5
