"""Tests for the model presets: the offline lite model, the hub code paths (with tiny local models),
one-line errors, and the parameter counts ``describe_presets`` reports."""

from __future__ import annotations

import copy
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
from PIL import Image

from conftest import TinyHubModels
from frameseek.errors import ModelError
from frameseek.models import registry
from frameseek.models.config import DualEncoderConfig, HeadConfig, ImageSideConfig, TextSideConfig
from frameseek.models.describe import describe_presets, format_presets, parameter_counts
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import build_preset, create_model
from frameseek.models.registry import PRESETS

CAPTIONS = ["a dog runs on the grass", "a man rides a bike in the street", "two children play in the snow"]


def _synthetic_images() -> list[np.ndarray]:
    """Smooth colour gradients (not noise), the kind of input a real photo resembles to a CNN."""
    yy, xx = np.mgrid[0:120, 0:160].astype(np.float32)
    out = []
    for k in range(3):
        r = (xx / 160 * 255 * (k + 1) / 3) % 256
        g = (yy / 120 * 255) % 256
        b = ((xx + yy) * (k + 1)) % 256
        out.append(np.stack([r, g, b], axis=-1).astype(np.uint8))
    return out


def _assert_unit_rows(emb: np.ndarray, n: int, dim: int) -> None:
    assert emb.shape == (n, dim)
    assert emb.dtype == np.float32
    assert np.all(np.isfinite(emb))
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def lite() -> DualEncoder:
    return build_preset("lite").eval()


# ---------------------------------------------------------------------------------- lite (offline)


def test_lite_builds_offline_and_embeds(lite: DualEncoder) -> None:
    assert lite.embed_dim == 512
    assert lite.config.image_feature_dim == 1904 and lite.config.text_feature_dim == 384 + 768  # MiniLM+mpnet
    images: list[np.ndarray | Image.Image] = [*_synthetic_images(), Image.new("RGB", (33, 77), (200, 10, 10))]
    _assert_unit_rows(lite.encode_images(images, batch_size=2), 4, 512)
    _assert_unit_rows(lite.encode_texts(CAPTIONS, batch_size=2), 3, 512)
    assert lite.encode_images([]).shape == (0, 512)
    assert lite.encode_texts([]).shape == (0, 512)


def test_lite_bf16_and_fp32_agree(lite: DualEncoder, shared_data: Path) -> None:
    folder = shared_data / "flickr8k" / "images"
    paths = sorted(folder.iterdir())[:4]
    images = [Image.open(p).convert("RGB") for p in paths]
    precision, engine = lite.precision, lite.engine
    try:
        lite.engine = "torch"  # precision applies to PyTorch inference (the ONNX engine is fp32)
        lite.precision = "fp32"
        fp32 = lite.encode_images(images)
        lite.precision = "bf16"
        bf16 = lite.encode_images(images)
    finally:
        lite.precision, lite.engine = precision, engine
    cosine = np.sum(fp32 * bf16, axis=1)
    assert np.all(cosine > 0.99), cosine


def test_lite_batch_size_does_not_change_embeddings(lite: DualEncoder) -> None:
    one_by_one = lite.encode_texts(CAPTIONS, batch_size=1)
    together = lite.encode_texts(CAPTIONS, batch_size=64)
    np.testing.assert_allclose(one_by_one, together, atol=1e-3)  # padding is masked out of the mean


# ---------------------------------------------------------------------------------- hub code paths


def test_tiny_hub_folders_look_like_hub_repos(tiny_hub_models: TinyHubModels) -> None:
    from transformers import AutoTokenizer

    for folder in (tiny_hub_models.resnet, tiny_hub_models.distilbert, tiny_hub_models.clip):
        names = {p.name for p in folder.iterdir()}
        assert {"config.json", "model.safetensors"} <= names
        assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names)
    bert = AutoTokenizer.from_pretrained(str(tiny_hub_models.distilbert))
    ids = bert("A dog runs on the grass")["input_ids"]
    assert ids[0] == bert.cls_token_id and ids[-1] == bert.sep_token_id
    assert bert.unk_token_id not in ids  # the words are in the tiny vocabulary (lower-cased)
    clip = AutoTokenizer.from_pretrained(str(tiny_hub_models.clip))
    clip_ids = clip("a dog runs")["input_ids"]
    assert len(clip_ids) == 5  # <|startoftext|> a dog runs <|endoftext|>: whole words through the merges


def test_resnet50_distilbert_with_local_sources(tiny_hub_models: TinyHubModels, tmp_path: Path) -> None:
    config = copy.deepcopy(PRESETS["resnet50-distilbert"].config)
    config.image.source = str(tiny_hub_models.resnet)
    config.text.source = str(tiny_hub_models.distilbert)
    model = DualEncoder.from_config(config).eval()
    assert model.config.image_feature_dim == 16 and model.config.text_feature_dim == 32
    _assert_unit_rows(model.encode_images(_synthetic_images()), 3, 512)
    texts = model.encode_texts(CAPTIONS)
    _assert_unit_rows(texts, 3, 512)
    loaded = create_model(str(model.save_pretrained(tmp_path / "ckpt")))
    np.testing.assert_array_equal(loaded.encode_texts(CAPTIONS), texts)


def test_clip_with_local_source(tiny_hub_models: TinyHubModels) -> None:
    config = copy.deepcopy(PRESETS["clip-vit-b32"].config)
    config.image.source = str(tiny_hub_models.clip)
    config.image.image_size = tiny_hub_models.clip_image_size
    config.text.source = str(tiny_hub_models.clip)
    config.embed_dim = tiny_hub_models.clip_projection_dim  # head "none": CLIP's own projection is the space
    model = DualEncoder.from_config(config).eval()
    dim = tiny_hub_models.clip_projection_dim
    _assert_unit_rows(model.encode_images(_synthetic_images()), 3, dim)
    _assert_unit_rows(model.encode_texts(CAPTIONS), 3, dim)
    assert model.parameter_counts()["image_head"] == 0


def test_tiny_dual_config_loads_like_a_hub_id(tiny_hub_models: TinyHubModels, tmp_path: Path) -> None:
    model = DualEncoder.from_config(tiny_hub_models.dual_config())
    folder = model.save_pretrained(tmp_path / "tiny")
    loaded = create_model(str(folder))
    assert loaded.config.text.pooling == "cls"
    assert loaded.config.image.source == str(tiny_hub_models.resnet)


@pytest.fixture
def hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub reads HF_HUB_OFFLINE once at import: set the constant too.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.mark.usefixtures("hub_offline")
@pytest.mark.parametrize("side", ["image", "text"])
def test_unreachable_hub_id_is_a_one_line_model_error(side: str) -> None:
    config = DualEncoderConfig(
        name="offline",
        image=ImageSideConfig(backbone="hf-resnet", source="frameseek-tests/no-such-resnet"),
        text=TextSideConfig(backbone="hf-text", source="frameseek-tests/no-such-bert", pooling="cls"),
        head=HeadConfig(),
    )
    if side == "text":
        config.image = copy.deepcopy(PRESETS["lite"].config.image)
    with pytest.raises(ModelError) as info:
        DualEncoder.from_config(config)
    message = str(info.value)
    assert "\n" not in message
    assert "HF_HUB_OFFLINE is set" in message
    assert ("no-such-resnet" if side == "image" else "no-such-bert") in message
    assert info.value.__suppress_context__  # raised "from None": no chained traceback


@pytest.mark.usefixtures("hub_offline")
def test_hub_preset_offline_is_a_model_error() -> None:
    if describe_presets({"clip-vit-b32": PRESETS["clip-vit-b32"]})[0]["weights"] == "hub: cached":
        pytest.skip("CLIP ViT-B/32 is in the local hub cache")
    with pytest.raises(ModelError, match="openai/clip-vit-base-patch32") as info:
        create_model("clip-vit-b32")
    assert "\n" not in str(info.value)


def test_unknown_name_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="unknown model 'no-such-model'"):
        create_model("no-such-model")
    with pytest.raises(ModelError, match="unknown model"):
        build_preset("no-such-model")


def test_lite_without_trained_heads_says_how_to_get_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "packaged_weights", lambda name: None)  # as if none were installed
    with pytest.raises(ModelError, match="frameseek train"):
        create_model("lite")
    assert describe_presets({"lite": PRESETS["lite"]})[0]["heads"] == "untrained (run frameseek train)"


# ---------------------------------------------------------------------------------- describe_presets


@pytest.fixture(scope="module")
def described() -> dict[str, dict[str, object]]:
    return {row["name"]: row for row in describe_presets()}


def test_describe_lists_every_preset(described: dict[str, dict[str, object]]) -> None:
    assert list(described) == list(PRESETS)
    for name, row in described.items():
        assert row["description"] == PRESETS[name].description
        # the installed lite heads are an ensemble of three 512-d heads (concatenated); the others one
        expected = create_model(name).embed_dim if name == "lite" else {"siglip2-base": 768}.get(name, 512)
        assert row["embed_dim"] == expected
    assert described["lite"]["weights"] == "packaged"
    assert described["lite"]["heads"] in ("trained", "untrained (run frameseek train)")
    assert described["resnet50-distilbert"]["weights"] in ("hub: cached", "hub: download needed")
    assert described["resnet50-distilbert"]["heads"] == "untrained (run frameseek train)"
    assert described["clip-vit-b32"]["heads"] == "none (zero-shot)"
    table = format_presets(list(described.values()))  # type: ignore[arg-type]
    for name in PRESETS:
        assert name in table
    assert f"{described['lite']['parameters']['total'] / 1e6:.2f}M" in table  # type: ignore[index]


def test_describe_lite_counts_match_the_real_model(described: dict[str, dict[str, object]]) -> None:
    counts = described["lite"]["parameters"]
    assert isinstance(counts, dict)
    parts = ("image_backbone", "image_head", "text_backbone", "text_head")
    assert counts["total"] == sum(counts[p] for p in parts)
    installed = create_model("lite")
    assert counts == installed.parameter_counts()
    # EfficientNet-Lite0 without its classifier, all-MiniLM-L6-v2 + all-mpnet-base-v2, heads 1904→512 and
    # 1152→512 (× ensemble); the class channel holds fixed buffers, no parameters
    k = installed.config.head.ensemble
    assert counts["image_backbone"] == 3_371_008
    assert counts["text_backbone"] == 22_713_216 + 109_486_464
    assert counts["image_head"] == k * (1904 * 512 + 512 + 512 * 512 + 512 + 2 * 512)
    assert counts["text_head"] == k * (1152 * 512 + 512 + 512 * 512 + 512 + 2 * 512)


def test_describe_hub_counts(described: dict[str, dict[str, object]]) -> None:
    original = described["resnet50-distilbert"]["parameters"]
    assert isinstance(original, dict)
    assert 23.4e6 < original["image_backbone"] < 23.6e6  # ResNet-50 without its classifier: 23.5M
    assert 66.3e6 < original["text_backbone"] < 66.5e6  # distilbert-base: 66.4M
    assert original["image_head"] == 2048 * 512 + 512 + 512 * 512 + 512 + 2 * 512
    assert original["text_head"] == 768 * 512 + 512 + 512 * 512 + 512 + 2 * 512
    assert 91e6 < original["total"] < 93e6
    clip = described["clip-vit-b32"]["parameters"]
    assert isinstance(clip, dict)
    assert 87.5e6 < clip["image_backbone"] < 88.2e6  # ViT-B/32 vision tower + 768→512 projection
    assert 63.0e6 < clip["text_backbone"] < 63.7e6  # CLIP text transformer + 512→512 projection
    assert clip["image_head"] == clip["text_head"] == 0


def test_parameter_counts_from_local_folders(tiny_hub_models: TinyHubModels) -> None:
    model = DualEncoder.from_config(tiny_hub_models.dual_config(embed_dim=24))
    assert parameter_counts(tiny_hub_models.dual_config(embed_dim=24)) == model.parameter_counts()
    clip_config = copy.deepcopy(PRESETS["clip-vit-b32"].config)
    clip_config.image.source = clip_config.text.source = str(tiny_hub_models.clip)
    clip_config.image.image_size = tiny_hub_models.clip_image_size
    clip_config.embed_dim = tiny_hub_models.clip_projection_dim
    clip = DualEncoder.from_config(copy.deepcopy(clip_config))
    assert parameter_counts(clip_config) == clip.parameter_counts()
