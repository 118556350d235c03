"""Tests for checkpoint folders: config.json + model.safetensors round trips, refusals and atomic saves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from conftest import TinyHubModels
from frameseek.errors import ModelError
from frameseek.models import checkpoint
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import build_preset, create_model
from frameseek.models.heads import ProjectionHead

CAPTIONS = ["a dog runs on the grass", "two people walk in the street", "a red car", ""]


def _images() -> list[np.ndarray | Image.Image]:
    rng = np.random.default_rng(0)
    arrays: list[np.ndarray | Image.Image] = [
        rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in ((40, 60), (64, 64), (90, 30))
    ]
    arrays.append(Image.fromarray(rng.integers(0, 256, size=(50, 50, 3), dtype=np.uint8), mode="RGB"))
    return arrays


def _embed(model: DualEncoder) -> tuple[np.ndarray, np.ndarray]:
    return model.encode_images(_images()), model.encode_texts(CAPTIONS)


def _keys(folder: Path) -> list[str]:
    with safe_open(str(folder / checkpoint.WEIGHTS_NAME), framework="pt") as handle:
        return list(handle.keys())


@pytest.fixture
def tiny_model(tiny_hub_models: TinyHubModels) -> DualEncoder:
    torch.manual_seed(1)
    return DualEncoder.from_config(tiny_hub_models.dual_config(embed_dim=24)).eval()


@pytest.fixture(scope="module")
def lite_model() -> DualEncoder:
    return build_preset("lite", seed=3).eval()


# ---------------------------------------------------------------------------------- round trips


def test_tiny_round_trip_gives_identical_embeddings(tiny_model: DualEncoder, tmp_path: Path) -> None:
    folder = tiny_model.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded = create_model(str(folder))
    assert not loaded.training
    assert loaded.embed_dim == 24 and loaded.name == "tiny"
    before, after = _embed(tiny_model), _embed(loaded)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert before[0].shape == (4, 24) and before[1].shape == (4, 24)
    assert loaded.fingerprint == tiny_model.fingerprint
    # the classmethod is the same entry point
    again = DualEncoder.from_pretrained(folder)
    np.testing.assert_array_equal(_embed(again)[1], before[1])


def test_lite_round_trip_gives_identical_embeddings(lite_model: DualEncoder, tmp_path: Path) -> None:
    folder = lite_model.save_pretrained(tmp_path / "lite-ckpt")
    loaded = create_model(str(folder))
    before, after = _embed(lite_model), _embed(loaded)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert before[0].shape == (4, 512)
    assert loaded.fingerprint == lite_model.fingerprint


def test_frozen_backbones_store_only_heads(lite_model: DualEncoder, tmp_path: Path) -> None:
    folder = lite_model.save_pretrained(tmp_path / "heads-only")
    keys = _keys(folder)
    assert keys and all(k.startswith(("image_head.", "text_head.")) for k in keys)
    assert {k.split(".")[0] for k in keys} == {"image_head", "text_head"}
    config = json.loads((folder / "config.json").read_text())
    assert config["backbone_weights_included"] is False
    assert config["format"] == "frameseek-dual-encoder"
    assert config["image_feature_dim"] == 1904 and config["text_feature_dim"] == 384 + 768  # MiniLM+mpnet
    # a heads-only checkpoint is small: well under the backbones' size
    assert (folder / "model.safetensors").stat().st_size < 12_000_000


def test_fine_tuned_backbones_round_trip(tiny_model: DualEncoder, tmp_path: Path) -> None:
    with torch.no_grad():
        for p in tiny_model.image_backbone.parameters():
            p.add_(0.01)
        for p in tiny_model.text_backbone.parameters():
            p.mul_(1.01)
    tiny_model.invalidate_fingerprint()
    folder = tiny_model.save_pretrained(tmp_path / "full", include_backbones=True)
    keys = _keys(folder)
    assert any(k.startswith("image_backbone.") for k in keys)
    assert any(k.startswith("text_backbone.") for k in keys)
    assert json.loads((folder / "config.json").read_text())["backbone_weights_included"] is True
    loaded = create_model(str(folder))
    for key, value in tiny_model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0, msg=key)
    np.testing.assert_array_equal(_embed(loaded)[0], _embed(tiny_model)[0])


def test_resave_replaces_the_folder_cleanly(tiny_model: DualEncoder, tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    tiny_model.save_pretrained(folder)
    (folder / "stale.txt").write_text("left from before")
    tiny_model.save_pretrained(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


# ---------------------------------------------------------------------------------- refusals


@pytest.fixture
def saved(tiny_model: DualEncoder, tmp_path: Path) -> Path:
    return tiny_model.save_pretrained(tmp_path / "ckpt")


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.pkl"])
def test_pickle_file_is_refused(saved: Path, name: str) -> None:
    (saved / name).write_bytes(b"\x80\x04K\x01.")  # a (harmless) pickle
    with pytest.raises(ModelError, match="pickle") as info:
        create_model(str(saved))
    assert name in str(info.value)


def test_edited_embed_dim_is_a_shape_error(saved: Path) -> None:
    config = json.loads((saved / "config.json").read_text())
    config["embed_dim"] = 32
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="shape"):
        create_model(str(saved))


def test_heads_of_another_size_are_a_shape_error(
    saved: Path, tiny_hub_models: TinyHubModels, tmp_path: Path
) -> None:
    other = DualEncoder.from_config(tiny_hub_models.dual_config(embed_dim=16))
    other_folder = other.save_pretrained(tmp_path / "other")
    shutil.copy(other_folder / "model.safetensors", saved / "model.safetensors")
    with pytest.raises(ModelError, match=r"shape .*wrong dimensions"):
        create_model(str(saved))


def test_missing_head_weight_is_refused(saved: Path) -> None:
    with safe_open(str(saved / "model.safetensors"), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys() if k != "text_head.fc.weight"}  # noqa: SIM118
    save_file(tensors, str(saved / "model.safetensors"))
    with pytest.raises(ModelError, match=r"lacks weight 'text_head\.fc\.weight'"):
        create_model(str(saved))


def test_unexpected_weight_is_refused(saved: Path) -> None:
    with safe_open(str(saved / "model.safetensors"), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    tensors["extra_head.weight"] = torch.zeros(3)
    save_file(tensors, str(saved / "model.safetensors"))
    with pytest.raises(ModelError, match=r"unexpected weight 'extra_head\.weight'"):
        create_model(str(saved))


def test_missing_config_is_refused(saved: Path) -> None:
    (saved / "config.json").unlink()
    with pytest.raises(ModelError, match=r"no config\.json"):
        create_model(str(saved))


def test_config_that_is_not_json_is_refused(saved: Path) -> None:
    (saved / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="not valid JSON"):
        create_model(str(saved))


@pytest.mark.parametrize(
    "content",
    [
        {"model_type": "resnet", "hidden_sizes": [8, 16]},  # a transformers config, not ours
        {"format": "something-else"},
        [1, 2, 3],
    ],
)
def test_config_of_the_wrong_format_is_refused(saved: Path, content: object) -> None:
    (saved / "config.json").write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(ModelError, match="not a frameseek dual-encoder config"):
        create_model(str(saved))


def test_config_with_bad_values_is_refused(saved: Path) -> None:
    config = json.loads((saved / "config.json").read_text())
    config["image"]["backbone"] = "vgg16"
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="unknown image backbone 'vgg16'"):
        create_model(str(saved))


def test_missing_or_corrupt_weights_are_refused(saved: Path) -> None:
    (saved / "model.safetensors").write_bytes(b"definitely not safetensors")
    with pytest.raises(ModelError, match="not a valid safetensors file"):
        create_model(str(saved))
    (saved / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=r"no model\.safetensors"):
        create_model(str(saved))


def test_errors_are_one_line(saved: Path) -> None:
    (saved / "config.json").write_text("{\n\n not json", encoding="utf-8")
    with pytest.raises(ModelError) as info:
        create_model(str(saved))
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------- atomicity


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("disk full (simulated)")


def test_failing_save_leaves_nothing_behind(
    tiny_model: DualEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = tmp_path / "out"
    parent.mkdir()
    monkeypatch.setattr(checkpoint, "save_file", _boom)
    with pytest.raises(RuntimeError, match="disk full"):
        tiny_model.save_pretrained(parent / "ckpt")
    assert list(parent.iterdir()) == []  # no target, no stray temporary folder


def test_failing_overwrite_keeps_the_old_checkpoint(
    tiny_model: DualEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tiny_model.save_pretrained(tmp_path / "ckpt")
    before = (folder / "model.safetensors").read_bytes()
    head = tiny_model.text_head
    assert isinstance(head, ProjectionHead)
    with torch.no_grad():
        head.projection.weight.add_(1.0)
    monkeypatch.setattr(checkpoint, "save_file", _boom)
    with pytest.raises(RuntimeError):
        tiny_model.save_pretrained(folder)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    assert (folder / "model.safetensors").read_bytes() == before
    create_model(str(folder))  # still a valid checkpoint
