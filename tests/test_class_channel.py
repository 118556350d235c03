"""The zero-shot class channel (EfficientNet-Lite's ImageNet classifier + text embeddings of class names)
fused with the heads: scores, sizes and a checkpoint round trip, with the real packaged backbones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from frameseek.errors import ModelError
from frameseek.lab.class_channel import class_names, install
from frameseek.models.factory import build_preset, create_model
from frameseek.models.heads import ClassChannelHead


def test_class_channel_fuses_and_round_trips(tmp_path: Path) -> None:
    model = build_preset("lite", seed=0)
    model.eval()
    model.precision, model.engine = "fp32", "torch"  # the reference below is computed in fp32 torch
    images = [Image.new("RGB", (64, 48), (200, 30, 30)), Image.new("RGB", (48, 64), (20, 90, 200))]
    texts = ["a red square", "a photo of a goldfish."]
    head_only = model.encode_images(images) @ model.encode_texts(texts).T
    width = model.config.text_feature_dim  # all of lite's text features (MiniLM + mpnet, 1,152)
    install(model, weight=0.5, top_k=5, text_start=0, text_dim=width)  # the channel in the text space
    assert isinstance(model.image_head, ClassChannelHead) and isinstance(model.text_head, ClassChannelHead)
    assert model.embed_dim == 512 + width
    image_emb, text_emb = model.encode_images(images), model.encode_texts(texts)
    assert image_emb.shape == text_emb.shape == (2, model.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(image_emb, axis=1), 1.0, atol=1e-4)
    with torch.inference_mode():
        features = model.image_features(model.preprocess(images))
        channel = model.image_head.channel(features).numpy()  # type: ignore[operator]
        query = torch.nn.functional.normalize(model.text_features(texts), dim=-1).numpy()
    expected = (head_only + 0.5 * channel @ query.T) / 1.5
    np.testing.assert_allclose(image_emb @ text_emb.T, expected, atol=2e-3)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = create_model(str(tmp_path / "ckpt"), precision="fp32", engine="torch")
    assert loaded.config.head.class_weight == 0.5 and loaded.embed_dim == model.embed_dim
    np.testing.assert_allclose(loaded.encode_images(images), image_emb, atol=2e-3)
    np.testing.assert_allclose(loaded.encode_texts(texts), text_emb, atol=2e-3)
    assert loaded.fingerprint != build_preset("lite", seed=0).fingerprint
    with pytest.raises(ModelError, match="positive"):
        install(build_preset("lite"), weight=0.0)


def test_class_names() -> None:
    names = class_names()
    assert len(names) == 1000 and names[1] == "goldfish"
