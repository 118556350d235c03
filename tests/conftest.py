"""Shared fixtures: a private FRAMESEEK_HOME, tiny hub-style models saved to disk, the shared data folder."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from frameseek.models.config import DualEncoderConfig, HeadConfig, ImageSideConfig, TextSideConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()

# Words the tiny tokenizers know (everything else becomes [UNK] / byte-level pieces).
WORDS = (
    "a", "an", "the", "dog", "dogs", "cat", "man", "woman", "boy", "girl", "child", "people", "two",
    "is", "are", "in", "on", "at", "with", "of", "and", "runs", "running", "plays", "playing", "jumps",
    "sits", "walks", "red", "blue", "black", "white", "brown", "green", "yellow", "ball", "grass",
    "water", "beach", "snow", "street", "bike", "car", "shirt", "field", "park", "rock", "air",
)  # fmt: skip


@dataclass(frozen=True)
class TinyHubModels:
    """Folders laid out like hub repositories (config.json + model.safetensors + tokenizer files)."""

    resnet: Path
    distilbert: Path
    clip: Path
    clip_projection_dim: int
    clip_image_size: int

    def dual_config(self, embed_dim: int = 24, name: str = "tiny") -> DualEncoderConfig:
        """ResNet + DistilBERT (CLS pooling) with projection heads, sources = the tiny folders."""
        return DualEncoderConfig(
            name=name,
            embed_dim=embed_dim,
            image=ImageSideConfig(backbone="hf-resnet", source=str(self.resnet), image_size=64),
            text=TextSideConfig(backbone="hf-text", source=str(self.distilbert), pooling="cls"),
            head=HeadConfig(kind="projection", dropout=0.1),
        )


def minilm_lite_config() -> DualEncoderConfig:
    """lite's architecture with all-MiniLM-L6-v2 as its only text encoder: a BERT text side, which the
    text engine runs without transformers (the installed lite concatenates MiniLM and mpnet)."""
    import copy

    from frameseek.models.registry import PRESETS

    config = copy.deepcopy(PRESETS["lite"].config)
    config.text = TextSideConfig(backbone="hf-text", source="package:all-MiniLM-L6-v2", pooling="mean")
    return config


CI_ALLOWED_SKIPS = re.compile(
    r"\bcuda\b|\bgpu\b|hub cache|\bnetwork\b|\boffline\b|linux|macos|windows",
    re.IGNORECASE,
)
"""Under CI (``CI=true``) a skip fails the run unless its reason matches one of these: the machine's
hardware (no CUDA / a GPU is there), the hub cache or the network, the operating system. A missing input
(a sample video, a data set, ffmpeg, a model's weights) is never a reason to go green."""


def ci_enabled() -> bool:
    """``CI`` set to a true value (``true``, ``1``, ``yes``), as CI services set it."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under CI, turn a skip whose reason is not on ``CI_ALLOWED_SKIPS`` into a failure (tested by
    tests/test_ci_skips.py, which runs small test files in a subprocess with CI=true)."""
    report: pytest.TestReport = yield
    if not (ci_enabled() and report.skipped) or hasattr(report, "wasxfail"):
        return report
    reason = _skip_reason(report)
    if CI_ALLOWED_SKIPS.search(reason):
        return report
    report.outcome = "failed"
    report.longrepr = (
        f"skipped under CI=true, and the reason is not on tests/conftest.py's CI_ALLOWED_SKIPS: {reason}"
    )
    return report


PYTEST_MAIN = sys.modules["__main__"]
"""The ``__main__`` module this test process started with."""


@pytest.fixture(autouse=True)
def _main_module_kept() -> Iterator[None]:
    """Streamlit's AppTest installs the app script as ``sys.modules["__main__"]`` and leaves it there. A
    process spawned later (the DDP tests' workers) re-imports ``__main__`` from its file, so it would run
    the whole app at start-up (a full-suite run saw a worker fail inside it). Each test gets the real one
    back."""
    yield
    sys.modules["__main__"] = PYTEST_MAIN


@pytest.fixture(scope="session", autouse=True)
def _private_default_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test writes to the user's real cache: FRAMESEEK_HOME defaults to a session folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAMESEEK_HOME", str(tmp_path_factory.mktemp("default-home")))
        yield


@pytest.fixture(scope="session")
def _joined_mpnet(_private_default_home: None) -> Path | None:
    """lite's packaged mpnet, joined once per session (in the session's default home), if installed."""
    from frameseek.models.packaged import mpnet_installed, packaged_mpnet_dir

    return packaged_mpnet_dir() if mpnet_installed() else None


@pytest.fixture
def fs_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _joined_mpnet: Path | None) -> Path:
    """FRAMESEEK_HOME in a temporary folder (feature caches, indexes, downloads). The 419 MB packaged
    mpnet is linked in from the session's joined copy instead of being joined again for every test
    (tests/test_packaged_mpnet.py joins it into a home of its own)."""
    home = tmp_path / "frameseek-home"
    home.mkdir()
    if _joined_mpnet is not None:
        (home / "models").mkdir()
        (home / "models" / _joined_mpnet.name).symlink_to(_joined_mpnet, target_is_directory=True)
    monkeypatch.setenv("FRAMESEEK_HOME", str(home))
    return home


@pytest.fixture
def shared_data() -> Path:
    """The read-only shared data folder (``../shared/data`` from the repo root); skips if absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


def _save_tiny_resnet(folder: Path) -> None:
    from transformers import ResNetConfig, ResNetModel

    config = ResNetConfig(
        num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"
    )
    ResNetModel(config).save_pretrained(folder)


def _save_tiny_distilbert(folder: Path) -> None:
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizerFast

    folder.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ".", ",", "-"]
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = DistilBertTokenizerFast(vocab=str(vocab_file), do_lower_case=True, model_max_length=64)
    config = DistilBertConfig(
        vocab_size=len(vocab), dim=32, n_layers=1, n_heads=2, hidden_dim=64, max_position_embeddings=64
    )
    DistilBertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _clip_bpe_files(folder: Path) -> tuple[Path, Path]:
    """A byte-level BPE vocabulary in CLIP's format: every single character, merges that spell WORDS."""
    chars = sorted(set("".join(WORDS)) | set(".,-"))
    tokens: list[str] = [*chars, *(f"{c}</w>" for c in chars)]
    merges: list[str] = []
    for word in WORDS:
        parts = [*word[:-1], f"{word[-1]}</w>"]
        while len(parts) > 1:
            merge = f"{parts[0]} {parts[1]}"
            if merge not in merges:
                merges.append(merge)
            parts = [parts[0] + parts[1], *parts[2:]]
            tokens.append(parts[0])
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return vocab_file, merges_file


def _save_tiny_clip(folder: Path, projection_dim: int, image_size: int) -> None:
    # transformers 5: CLIPTokenizer is the tokenizers-backed (fast) class; CLIPTokenizerFast aliases it
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTokenizer, CLIPVisionConfig

    folder.mkdir(parents=True)
    vocab_file, merges_file = _clip_bpe_files(folder)
    tokenizer = CLIPTokenizer(vocab=str(vocab_file), merges=str(merges_file), model_max_length=77)
    vocab = tokenizer.get_vocab()
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    text = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=projection_dim,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=8,
        projection_dim=projection_dim,
    )
    config = CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=projection_dim
    )
    CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.fixture(scope="session")
def tiny_hub_models(tmp_path_factory: pytest.TempPathFactory) -> TinyHubModels:
    """Tiny random ResNet, DistilBERT (+ WordPiece tokenizer) and CLIP (+ BPE tokenizer), saved with
    ``save_pretrained`` so that ``from_pretrained(folder)`` takes the same path as a hub id."""
    root = tmp_path_factory.mktemp("tiny-hub")
    torch.manual_seed(0)
    _save_tiny_resnet(root / "resnet")
    _save_tiny_distilbert(root / "distilbert")
    _save_tiny_clip(root / "clip", projection_dim=16, image_size=32)
    return TinyHubModels(
        resnet=root / "resnet",
        distilbert=root / "distilbert",
        clip=root / "clip",
        clip_projection_dim=16,
        clip_image_size=32,
    )
