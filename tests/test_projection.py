"""The fixed compact projection after the heads (heads.ProjectedHead): fitted on training embeddings, it
shrinks the embedding, keeps unit length, round-trips through a checkpoint, and refuses bad sizes."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TinyHubModels
from frameseek.errors import ModelError
from frameseek.lab.projection import install
from frameseek.lab.subspace import balanced_sample, fit_projection
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import create_model
from frameseek.models.heads import ProjectedHead

TEXTS = ["a dog runs on the grass", "a red car in the street", "two people on the beach", "a white cat"]


def _images() -> list[Image.Image]:
    colours = [(200, 30, 30), (20, 90, 200), (240, 240, 240), (30, 160, 60)]
    return [Image.new("RGB", (64, 48), c) for c in colours]


def _tiny(tiny_hub_models: TinyHubModels) -> DualEncoder:
    config = tiny_hub_models.dual_config(embed_dim=24)
    config.head.ensemble = 2  # 48-d fused embeddings
    torch.manual_seed(0)
    model = DualEncoder.from_config(config)
    model.eval()
    model.precision, model.engine = "fp32", "torch"
    return model


def test_the_subspace_is_orthonormal_and_sampled_evenly() -> None:
    rng = np.random.default_rng(0)
    sample = rng.normal(size=(200, 32)).astype(np.float32)
    basis = fit_projection(sample, 8)
    assert basis.shape == (32, 8)
    np.testing.assert_allclose(basis.T @ basis, np.eye(8), atol=1e-5)
    # the top direction of data stretched along one axis is that axis
    stretched = sample * np.r_[10.0, np.ones(31)].astype(np.float32)
    assert abs(fit_projection(stretched, 1)[0, 0]) > 0.99
    mixed = balanced_sample(sample[:10], sample[10:110], seed=3)
    assert mixed.shape == (20, 32) and np.array_equal(mixed[:10], sample[:10])
    assert np.array_equal(mixed, balanced_sample(sample[:10], sample[10:110], seed=3))  # seeded


def test_a_projected_model_embeds_smaller_and_round_trips(
    tiny_hub_models: TinyHubModels, tmp_path: Path
) -> None:
    model = _tiny(tiny_hub_models)
    images, texts = model.encode_images(_images()), model.encode_texts(TEXTS)
    assert images.shape[1] == model.embed_dim == 48
    before = model.fingerprint
    full_scores = images @ texts.T
    # fitted on the same rows it is then applied to, with as many dimensions as rows: a lossless basis
    exact = copy.deepcopy(model)
    install(exact, np.concatenate([images, texts]), 8)
    np.testing.assert_allclose(
        exact.encode_images(_images()) @ exact.encode_texts(TEXTS).T, full_scores, atol=1e-4
    )

    install(model, np.concatenate([images, texts]), 4)
    assert isinstance(model.image_head, ProjectedHead) and isinstance(model.text_head, ProjectedHead)
    assert model.embed_dim == model.config.output_dim() == 4 and model.config.fused_dim() == 48
    assert model.fingerprint != before
    small_images, small_texts = model.encode_images(_images()), model.encode_texts(TEXTS)
    assert small_images.shape == (4, 4) and small_texts.shape == (4, 4)
    np.testing.assert_allclose(np.linalg.norm(small_texts, axis=1), 1.0, atol=1e-5)
    basis = fit_projection(np.concatenate([images, texts]), 4)
    expected = images @ basis
    np.testing.assert_allclose(
        small_images, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5
    )

    model.save_pretrained(tmp_path / "ckpt")
    loaded = create_model(str(tmp_path / "ckpt"), precision="fp32", engine="torch", device="cpu")
    assert loaded.config.head.project_dim == 4 and loaded.embed_dim == 4
    np.testing.assert_allclose(loaded.encode_texts(TEXTS), small_texts, atol=1e-5)
    np.testing.assert_allclose(loaded.encode_images(_images()), small_images, atol=1e-5)
    assert loaded.fingerprint == model.fingerprint


def test_bad_projections_are_refused(tiny_hub_models: TinyHubModels) -> None:
    model = _tiny(tiny_hub_models)
    rows = np.random.default_rng(0).normal(size=(64, 48)).astype(np.float32)
    with pytest.raises(ModelError, match=r"1\.\.47"):
        install(model, rows, 48)  # no smaller than the model's own size
    with pytest.raises(ModelError, match="48-d"):
        install(model, rows[:, :40], 8)  # a sample of other embeddings
    with pytest.raises(ModelError, match="at least 8 rows"):
        install(model, rows[:4], 8)
    install(model, rows, 8)
    with pytest.raises(ModelError, match="already projects"):
        install(model, rows, 4)
