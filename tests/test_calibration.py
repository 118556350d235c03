"""Calibrated confidence: stored beside a model's weights, loaded back equal, honest when absent, and lite's
shipped calibration separates real queries on their own Flickr8k DEV photos from unrelated photos and
from absent-object queries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import SHARED_DATA
from frameseek import cli
from frameseek.lab.calibration import (
    ABSENT_HELD_OUT,
    calibrate_checkpoint,
    embed_image_files,
    load_flickr,
    scored,
    visual_pairs,
)
from frameseek.models.handle import ModelHandle
from frameseek.models.registry import packaged_weights
from frameseek.moments.confidence import BANK_FILE, CALIBRATION_FILE, FOUND_AT, Calibration, Logistic

FLICKR = SHARED_DATA / "flickr8k"


def lite_folder() -> Path:
    folder = packaged_weights("lite")
    if folder is None or not (folder / CALIBRATION_FILE).is_file():
        pytest.skip("lite's weights and calibration are not installed in src/frameseek/weights/lite/")
    return folder


@pytest.fixture(scope="module")
def lite() -> ModelHandle:
    lite_folder()
    return ModelHandle("lite")


@pytest.fixture(scope="module")
def dev_photos(lite: ModelHandle) -> tuple[list[str], np.ndarray]:
    """Eight photos of the held-out DEV half (never fitted on): one caption each and their embeddings."""
    if not FLICKR.is_dir():
        pytest.skip("shared Flickr8k data not found")
    held = load_flickr(FLICKR).eval.subset(list(range(8)))
    captions = [group[0] for group in held.groups()]
    return captions, embed_image_files(lite.model, held.images)


def test_a_calibration_saves_and_loads_back_equal(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    bank = rng.normal(size=(30, 8)).astype(np.float32)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    saved = Calibration(
        bank=bank,
        visual=Logistic((1.5, -0.25), -3.0, ("z", "rank")),
        text={"speech": Logistic((9.0,), -4.0, ("score",)), "screen": Logistic((7.0,), -3.5, ("score",))},
        info={"data": "test", "bank_images": 30},
    )
    saved.save(tmp_path)
    loaded = Calibration.load(tmp_path)
    assert loaded.calibrated
    assert loaded.visual == saved.visual and loaded.text == saved.text and loaded.info == saved.info
    np.testing.assert_array_equal(loaded.bank, bank.astype(np.float16).astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([BANK_FILE, CALIBRATION_FILE])


def test_a_model_folder_without_calibration_says_it_is_uncalibrated(tmp_path: Path) -> None:
    shutil.copy(lite_folder() / "config.json", tmp_path / "config.json")
    handle = ModelHandle(str(tmp_path))
    assert not handle.calibration.calibrated
    assert not handle.loaded  # found without creating the model
    assert Calibration.load(tmp_path).calibrated is False


def test_lite_ships_a_calibration_with_a_small_bank(lite: ModelHandle) -> None:
    calibration = lite.calibration
    assert calibration.calibrated and not lite.loaded
    assert 1000 <= len(calibration.bank) <= 2000
    assert (lite_folder() / BANK_FILE).stat().st_size < 4 * 2**20
    assert set(calibration.text) >= {"speech", "screen"}


def test_a_real_query_is_more_confident_on_its_own_photo_than_on_unrelated_ones(
    lite: ModelHandle, dev_photos: tuple[list[str], np.ndarray]
) -> None:
    captions, photos = dev_photos
    queries = lite.encode_texts(captions)
    own, others = [], []
    for i, q in enumerate(queries):
        confidence = lite.calibration.visual_confidence(q, photos @ q)
        own.append(confidence[i])
        others.append(np.delete(confidence, i).mean())
        assert confidence[i] > np.median(np.delete(confidence, i)), captions[i]
    assert np.mean(own) > 0.5 > np.mean(others)


def test_absent_object_queries_get_low_confidence_on_real_photos(
    lite: ModelHandle, dev_photos: tuple[list[str], np.ndarray]
) -> None:
    _, photos = dev_photos
    for query, q in zip(ABSENT_HELD_OUT[:8], lite.encode_texts(list(ABSENT_HELD_OUT[:8])), strict=True):
        assert lite.calibration.visual_confidence(q, photos @ q).max() < 0.3, query


def test_confidence_is_in_0_1_and_rises_with_the_frame_score(
    lite: ModelHandle, dev_photos: tuple[list[str], np.ndarray]
) -> None:
    captions, _ = dev_photos
    scores = np.linspace(-1.0, 1.0, 401, dtype=np.float32)
    for q in lite.encode_texts([captions[0], "qwxz zzkp", "a dog"]):
        confidence = lite.calibration.visual_confidence(q, scores)
        assert ((confidence >= 0) & (confidence <= 1)).all()
        assert (np.diff(confidence) >= 0).all()
    for kind in ("speech", "screen"):
        text = lite.calibration.text_confidence(kind, np.linspace(0, 1, 101))
        assert ((text >= 0) & (text <= 1)).all() and (np.diff(text) >= 0).all()
        assert text[0] < 0.2 and text[-1] > 0.8  # unrelated text vs the exact phrase


def test_text_confidence_reads_a_spans_two_channels_and_falls_back_to_its_score(lite: ModelHandle) -> None:
    """lite's text model is fitted over the channels the cross-validation chose; asked with the fused
    score alone, the fused-score model answers. Both rise with what they read."""
    calibration = lite.calibration
    chosen = calibration.text["speech"].features
    assert set(chosen) <= {"score", "level", "lexical"} and "score" in calibration.text
    assert calibration.text["score"].features == ("score",)
    scores = np.linspace(0, 1, 11)
    fused = calibration.text_confidence("speech", scores)
    np.testing.assert_allclose(fused, calibration.text["score"]({"score": scores.astype(np.float32)}))
    level = np.linspace(-1.0, 1.5, 11)
    for lexical in (0.0, 0.5, 1.0):
        rising = calibration.text_confidence(
            "speech",
            np.maximum(lexical, 0.9 * np.clip(level, 0, 1)),
            lexical=np.full(11, lexical),
            level=level,
        )
        assert ((rising >= 0) & (rising <= 1)).all() and (np.diff(rising) >= 0).all()
    unrelated = calibration.text_confidence(
        "speech", np.zeros(1), lexical=np.zeros(1), level=np.full(1, -0.6)
    )
    exact = calibration.text_confidence("speech", np.ones(1), lexical=np.ones(1), level=np.full(1, 1.2))
    assert unrelated[0] < 0.1 and exact[0] > 0.9


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli.app, list(args))


def test_calibrate_writes_its_files_atomically_into_the_folder(
    tmp_path: Path, lite: ModelHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not FLICKR.is_dir():
        pytest.skip("shared Flickr8k data not found")
    model = lite.model  # the module's loaded lite answers --model lite
    monkeypatch.setattr("frameseek.models.factory.create_model", lambda name, **_: model)
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("{}")  # a checkpoint's other files stay as they were
    result = run_cli(
        "calibrate", "--data", str(FLICKR), "--out", str(out), "--bank-size", "40", "--fit-images", "24",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(["config.json", BANK_FILE, CALIBRATION_FILE])
    written = Calibration.load(out)
    assert written.calibrated and len(written.bank) == 40
    assert json.loads(result.stdout)["bank_images"] == 40


def test_calibrate_refuses_a_missing_data_folder_with_one_line(tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["calibrate", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    assert exit_info.value.code != 0
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "nowhere" in message
    assert not (tmp_path / "out").exists()


def test_a_trained_checkpoint_gets_its_calibration_from_its_holdout_and_train_photos(
    tmp_path: Path, lite: ModelHandle
) -> None:
    if not FLICKR.is_dir():
        pytest.skip("shared Flickr8k data not found")
    flickr = load_flickr(FLICKR, bank_size=30)
    held = flickr.eval.subset(list(range(6)))
    calibration = calibrate_checkpoint(lite.model, tmp_path, flickr.bank_images, held)
    loaded = Calibration.load(tmp_path)
    assert loaded.calibrated and len(loaded.bank) == 30 == calibration.info["bank_images"]
    assert "holdout" in loaded.info["data"]
    assert loaded.visual == calibration.visual


def test_scored_counts_the_verdicts_a_search_would_give_at_the_found_threshold() -> None:
    p = np.array([0.9, 0.5, 0.49, 0.7, 0.2, 0.1, 0.05])
    y = np.array([1, 1, 1, 0, 0, 0, 0])
    row = scored(p, y)
    assert (row["present"], row["absent"]) == (3, 4)
    assert row["found"] == {"present": round(2 / 3, 4), "absent": 0.25}  # FOUND_AT (0.5) counts as found
    assert FOUND_AT == 0.5
    assert scored(np.array([0.9, 0.8]), np.array([1, 1]))["found"] == {"present": 1.0, "absent": None}


def test_visual_pairs_name_the_photo_each_pair_scored() -> None:
    rng = np.random.default_rng(3)
    unit = lambda n: (v := rng.normal(size=(n, 8))) / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    images, texts, absent, bank = unit(30), unit(60), unit(3), unit(20)
    owner = [i // 2 for i in range(60)]
    pairs = visual_pairs(bank, images, texts, owner, absent, seed=0)
    assert pairs.images is not None and len(pairs.images) == len(pairs.labels) == 3 * 60 + 2 * 10 * 3
    queries = np.concatenate([np.repeat(texts, 3, axis=0), np.repeat(absent, 20, axis=0)])
    np.testing.assert_allclose(
        pairs.columns["score"], np.sum(queries * images[pairs.images], axis=1), atol=1e-12
    )
    present = pairs.labels == 1
    assert np.array_equal(pairs.images[present], owner)
    for c in range(
        60
    ):  # a caption's random other photo and the best of its pool (which holds the random one)
        random_other, hard = pairs.images[3 * c + 1], pairs.images[3 * c + 2]
        assert owner[c] not in (random_other, hard)
        assert texts[c] @ images[hard] >= texts[c] @ images[random_other]
