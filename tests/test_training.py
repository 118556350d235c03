"""Tests for frameseek.lab.training: short real runs on a Flickr8k subset, resume, fine-tuning, batching."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open

from conftest import TinyHubModels
from frameseek.lab.training import TrainConfig, Trainer, epoch_batches
from frameseek.models.dual_encoder import DualEncoder
from frameseek.models.factory import create_model

N_TRAIN, N_DEV, HOLDOUT = 120, 40, 20
CAPTIONS_PER_IMAGE = 3


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: on these 2-core machines anything else running slows 2 threads 5-15x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def flickr_subset(shared_data: Path, tmp_path: Path) -> Path:
    """A Flickr8k-layout folder: 120 train + 40 dev images (symlinked, never copied), 3 captions each
    (of 5: text features dominate the run's time)."""
    source = shared_data / "flickr8k"
    train = [n for n in (source / "Flickr_8k.trainImages.txt").read_text().split() if n][:N_TRAIN]
    dev = [n for n in (source / "Flickr_8k.devImages.txt").read_text().split() if n][:N_DEV]
    keep = set(train) | set(dev)
    root = tmp_path / "flickr8k-subset"
    (root / "images").mkdir(parents=True)
    for name in keep:
        (root / "images" / name).symlink_to(source / "images" / name)
    lines = (source / "captions.txt").read_text(encoding="utf-8").splitlines()
    per_image: Counter[str] = Counter()
    rows = []
    for line in lines[1:]:
        name = line.split(",", 1)[0]
        if name in keep and per_image[name] < CAPTIONS_PER_IMAGE:
            per_image[name] += 1
            rows.append(line)
    (root / "captions.txt").write_text("\n".join([lines[0], *rows]) + "\n", encoding="utf-8")
    (root / "Flickr_8k.trainImages.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    (root / "Flickr_8k.devImages.txt").write_text("\n".join(dev) + "\n", encoding="utf-8")
    return root


def _frozen_config(data: Path, out: Path, **overrides: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "data": str(data),
        "out": str(out),
        "model": "lite",
        "mode": "frozen",
        "epochs": 2,
        "batch_size": 32,
        "holdout_images": HOLDOUT,
        "seed": 0,
        "flip": False,  # halves feature extraction; the mirrored-feature cache is the same code path
    }
    base.update(overrides)
    return TrainConfig(**base)


# ---------------------------------------------------------------------------------- frozen lite


@pytest.mark.slow
def test_frozen_training_run_then_resume(flickr_subset: Path, tmp_path: Path, fs_home: Path) -> None:
    out = tmp_path / "run"
    seen: list[dict[str, Any]] = []
    trainer = Trainer(_frozen_config(flickr_subset, out), on_epoch=seen.append)

    # splits: train minus a holdout for selection; dev is the evaluation split; all disjoint
    train_images = set(trainer.train_data.images)
    assert len(train_images) == N_TRAIN - HOLDOUT
    assert len(trainer.select_data.images) == HOLDOUT
    assert len(trainer.eval_data.images) == N_DEV
    assert not train_images & set(trainer.select_data.images)
    assert not train_images & set(trainer.eval_data.images)
    assert not set(trainer.select_data.images) & set(trainer.eval_data.images)

    report = trainer.run()

    losses = [row["train_loss"] for row in trainer.history]
    assert [row["epoch"] for row in seen] == [1, 2]
    assert len(losses) == 2 and losses[1] < losses[0], losses
    assert all(np.isfinite(losses))

    best = out / "best"
    assert (best / "config.json").is_file() and (best / "model.safetensors").is_file()
    with safe_open(str(best / "model.safetensors"), framework="pt") as handle:
        assert all(k.startswith(("image_head.", "text_head.")) for k in handle.keys())  # noqa: SIM118
    for name in ("log.csv", "log.json", "curves.png", "report.json"):
        assert (out / name).is_file(), name
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "log.json").read_text()) == trainer.history
    assert (out / "log.csv").read_text().count("\n") == 3  # header + 2 epochs

    saved_report = json.loads((out / "report.json").read_text())
    assert saved_report["evaluation"]["split"] == "dev" == report["evaluation"]["split"]
    assert saved_report["evaluation"]["images"] == N_DEV
    assert saved_report["selection"]["split"] == "train-holdout"
    assert saved_report["selection"]["images"] == HOLDOUT
    assert saved_report["train_images"] == N_TRAIN - HOLDOUT
    assert saved_report["epochs_run"] == 2
    assert saved_report["best_epoch"] in (1, 2)
    r1 = saved_report["evaluation"]["standard"]["text_to_image"]["R@1"]
    assert 0.0 <= r1 <= 100.0
    # the feature caches went to the temporary FRAMESEEK_HOME
    assert any((fs_home / "features").glob("*.safetensors"))

    # the best checkpoint loads as a model
    model = create_model(str(best))
    assert model.encode_texts(["a dog runs on the grass"]).shape == (1, 512)

    # ---- resume: epochs=3 continues at epoch 3 with the saved history
    resumed_rows: list[dict[str, Any]] = []
    resumed = Trainer(_frozen_config(flickr_subset, out, epochs=3, resume=True), on_epoch=resumed_rows.append)
    resumed_report = resumed.run()
    assert [row["epoch"] for row in resumed_rows] == [3]
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]
    assert resumed.history[:2] == trainer.history
    assert resumed_report["epochs_run"] == 3
    assert json.loads((out / "resume.json").read_text())["epoch"] == 3


@pytest.mark.usefixtures("fs_home")
def test_resume_without_state_is_an_input_error(flickr_subset: Path, tmp_path: Path) -> None:
    from frameseek.errors import InputError

    trainer = Trainer(_frozen_config(flickr_subset, tmp_path / "empty", resume=True))
    with pytest.raises(InputError, match="nothing to resume"):
        trainer.run()


@pytest.mark.usefixtures("fs_home")
def test_a_data_error_comes_before_any_model_is_loaded(flickr_subset: Path, tmp_path: Path) -> None:
    # the data and the held-out split are read first: a user error there costs no model load (the model
    # named here does not exist, so reaching it would be a different error)
    from frameseek.errors import InputError

    config = _frozen_config(
        flickr_subset, tmp_path / "out", model=str(tmp_path / "no-such-model"), holdout_images=10_000
    )
    with pytest.raises(InputError, match="holdout_images must be between"):
        Trainer(config)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------- fine-tuning


@pytest.mark.usefixtures("fs_home")
def test_finetune_tiny_hub_models_changes_backbones(
    flickr_subset: Path, tiny_hub_models: TinyHubModels, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    start = DualEncoder.from_config(tiny_hub_models.dual_config(embed_dim=24))
    start_folder = start.save_pretrained(tmp_path / "tiny-start")
    before = {k: v.clone() for k, v in create_model(str(start_folder)).state_dict().items()}

    out = tmp_path / "finetune"
    config = TrainConfig(
        data=str(flickr_subset),
        out=str(out),
        model=str(start_folder),
        mode="finetune",
        epochs=1,
        max_steps=2,
        batch_size=16,
        holdout_images=HOLDOUT,
    )
    trainer = Trainer(config)
    report = trainer.run()
    assert report["epochs_run"] == 1
    assert report["evaluation"]["split"] == "dev"

    best = out / "best"
    assert json.loads((best / "config.json").read_text())["backbone_weights_included"] is True
    after = trainer.model.state_dict()  # the best checkpoint, loaded back by run()

    def changed(prefix: str) -> bool:
        return any(
            not torch.equal(before[k], after[k])
            for k in before
            if k.startswith(prefix) and before[k].is_floating_point()
        )

    assert changed("image_backbone.")
    assert changed("text_backbone.")
    assert changed("image_head.") and changed("text_head.")


# ---------------------------------------------------------------------------------- epoch_batches


def _check_batches(caption_to_image: list[int], batches: list[np.ndarray], batch_size: int) -> Counter[int]:
    """Invariants every epoch has; returns how often each caption was used."""
    used: Counter[int] = Counter()
    for batch in batches:
        images = [caption_to_image[int(c)] for c in batch]
        assert len(images) == len(set(images)), "a batch repeats an image"
        assert 2 <= len(batch) <= batch_size + 1
        used.update(int(c) for c in batch)
    assert all(count == 1 for count in used.values()), "a caption appears twice in one epoch"
    return used


@settings(max_examples=200, deadline=None)
@given(
    n_images=st.integers(min_value=2, max_value=40),
    per_image=st.integers(min_value=1, max_value=6),
    batch_size=st.integers(min_value=2, max_value=50),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_epoch_batches_uses_every_caption_once(
    n_images: int, per_image: int, batch_size: int, seed: int
) -> None:
    # Flickr-style: every image has the same number of captions (Flickr8k: 5).
    rng = np.random.default_rng(seed)
    caption_to_image = list(rng.permutation(np.repeat(np.arange(n_images), per_image)).tolist())
    batches = list(epoch_batches(caption_to_image, batch_size, np.random.default_rng(seed)))
    used = _check_batches(caption_to_image, batches, batch_size)
    assert sorted(used) == list(range(len(caption_to_image)))


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=30),
    batch_size=st.integers(min_value=2, max_value=50),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_epoch_batches_uneven_caption_counts(counts: list[int], batch_size: int, seed: int) -> None:
    # COCO-style: 5–7 captions per image. A caption can only be left out when its image is the only
    # one with captions left (no partner without repeating the image): exactly max - second max of them.
    caption_to_image = [image for image, n in enumerate(counts) for _ in range(n)]
    batches = list(epoch_batches(caption_to_image, batch_size, np.random.default_rng(seed)))
    used = _check_batches(caption_to_image, batches, batch_size)
    ordered = sorted(counts, reverse=True)
    unpaired = ordered[0] - (ordered[1] if len(ordered) > 1 else 0)
    assert len(caption_to_image) - len(used) == unpaired
    if unpaired:
        missing = set(range(len(caption_to_image))) - set(used)
        assert {caption_to_image[c] for c in missing} == {counts.index(ordered[0])}


def test_epoch_batches_is_reproducible_and_shuffles() -> None:
    caption_to_image = [i // 5 for i in range(100)]
    first = [b.tolist() for b in epoch_batches(caption_to_image, 16, np.random.default_rng(7))]
    again = [b.tolist() for b in epoch_batches(caption_to_image, 16, np.random.default_rng(7))]
    other = [b.tolist() for b in epoch_batches(caption_to_image, 16, np.random.default_rng(8))]
    assert first == again
    assert first != other


@pytest.mark.slow
def test_an_ensemble_gets_the_class_channel_then_the_projection(
    flickr_subset: Path, tmp_path: Path, fs_home: Path
) -> None:
    """The recipe of the installed lite in small: two seeds' heads merged, the class channel fused in
    mpnet's text space, then a projection fitted on the training split's embeddings (the per-seed runs
    get neither)."""
    from frameseek.lab.training import train_ensemble

    out = tmp_path / "ensemble"
    config = _frozen_config(
        flickr_subset,
        out,
        epochs=1,
        class_channel=0.2,
        class_text_start=384,
        class_text_dim=768,
        project_dim=64,
    )
    report = train_ensemble(config, [0, 1])
    for seed in (0, 1):
        head = json.loads((out / f"seed-{seed}" / "best" / "config.json").read_text())["head"]
        assert head["ensemble"] == 1 and head["class_weight"] == 0 and head["project_dim"] == 0
    best = json.loads((out / "best" / "config.json").read_text())["head"]
    assert best["ensemble"] == 2 and best["class_weight"] == 0.2 and best["project_dim"] == 64
    assert report["ensemble_seeds"] == [0, 1] and report["evaluation"]["images"] == N_DEV
    model = create_model(str(out / "best"))
    assert model.config.fused_dim() == 2 * 512 + 768 and model.embed_dim == 64
    texts = model.encode_texts(["a dog runs on the grass", "two people on the beach"])
    assert texts.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert model.encode_sentences(["a dog"]).shape == (1, 384)  # transcripts: MiniLM's part only
