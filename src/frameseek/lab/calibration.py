"""Fit a model's confidence calibration (``frameseek.moments.confidence.Calibration``) and measure it.

What is fitted, on data the model was not trained on:

* **the reference bank**: the model's image embeddings of a seeded sample of generic photos (Flickr8k
  TRAIN for ``frameseek calibrate``; the checkpoint's own TRAIN images for ``frameseek train``), float16;
* **visual**: a logistic model over query-aware features of a frame's cosine — its z-score against the
  query's bank scores, the share of the bank it beats, the raw cosine — chosen by cross-validation on the
  fitting pairs (never on the held-out half). Pairs: each caption with its own image (present) and with
  other images (absent: one at random and the best of ``HARD_POOL`` random others, the near miss a video's
  best frame is), plus absent-object queries (``ABSENT_FIT``) against random images and the best of
  ``HARD_POOL``. Class balance: about 1 present to 2.4 absent, chosen because a search scores both the
  frames of the wanted thing and the near misses of a video without it;
* **text** (speech, screen): a logistic over what the ``SpanMatcher`` gives for a query against a group
  of captions of one scene (MSR-VTT: a clip's other captions; Flickr8k: an image's other captions) as
  spans — its own group (present) vs another group (absent), the same for a two-keyword query made from the
  caption, and the absent-object queries (absent). Its features are chosen by cross-validation like the
  visual ones (``TEXT_FEATURE_SETS``): the fused score, or the two channels (the lexical score and the
  semantic level, the cosine rescaled but not clipped); a fused-score model is fitted too, for callers
  that have only the score.

Measured (``measure``): expected calibration error and AUROC on the held-out half of Flickr8k DEV with
held-out absent queries (``ABSENT_HELD_OUT``), and per clip on MSR-VTT videos (a clip's best frame).

One module because fitting and measuring must build their pairs the same way (the held-out numbers mean
something only if the construction is the one fitted on), and both share the query lists and features.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from frameseek.errors import InputError
from frameseek.moments.confidence import FOUND_AT, Calibration, Logistic
from frameseek.text.matching import SEMANTIC_CEILING, SEMANTIC_FLOOR, SpanMatcher, fused_score, semantic_level
from frameseek.text.spans import TextSpan

BANK_SIZE = 1500
"""Reference photos in the bank: 1500 × 512 float16 = 1.5 MB; the bank's mean and spread per query move
by < 0.002 between two seeded draws of this size."""
HARD_POOL = 20
"""A hard negative is the best of this many random other photos (a short video's distinct shots)."""
TEXT_FEATURE_SETS: tuple[tuple[str, ...], ...] = (("score",), ("level", "lexical"), ("score", "level"))
"""Candidate feature sets of the text tracks' model (columns of ``text_pairs``)."""
FEATURE_SETS: tuple[tuple[str, ...], ...] = (
    ("score",),
    ("z",),
    ("z", "rank"),
    ("score", "z"),
    ("score", "z", "rank"),
)
L2 = 1e-3
FrameConfidence = Callable[[NDArray[Any], NDArray[Any]], NDArray[Any]]
"""(query embedding, frame embeddings (n, D)) → each frame's confidence (n,)."""

ABSENT_FIT: tuple[str, ...] = (
    "an elephant on the moon", "a submarine", "qwxz zzkp", "a giraffe playing the piano",
    "the surface of mars", "a nuclear reactor control room", "an astronaut floating in space",
    "a penguin in a desert", "a spreadsheet full of numbers", "a dinosaur skeleton",
    "a violin concerto score", "a microscope slide of bacteria", "a rocket launch pad",
    "xkcd blorp frumious", "an octopus on a keyboard", "a chess grandmaster tournament",
    "a polar bear in a kitchen", "a steam locomotive", "the inside of a volcano",
    "a satellite dish array", "a jellyfish aquarium", "an x-ray of a hand", "a camel caravan",
    "a sushi chef cutting tuna", "a hot air balloon festival", "zzqv plonk wibber",
    "a robot assembling cars", "a helicopter landing on a ship", "a medieval castle siege",
    "a lighthouse in a storm",
)  # fmt: skip
"""Things in no calibration photo or clip (and gibberish), written for fitting: absent queries."""

ABSENT_HELD_OUT: tuple[str, ...] = (
    "a whale on a highway", "a tank in a library", "vbnq trrk ploof", "a kangaroo in the snow",
    "a space station orbiting earth", "an operating theatre with surgeons", "a crocodile on a sofa",
    "a printed circuit board", "the rings of saturn", "a zebra wearing a tie", "a stack of gold bars",
    "a submarine periscope", "a pipe organ in a cathedral", "a tornado over a farm", "a koala eating a pizza",
    "jjxw qorp zlee", "a fighter jet refuelling", "a laboratory with test tubes", "a pyramid in egypt",
    "a flamingo in a bathtub",
)  # fmt: skip
"""Absent queries never fitted on: only for measuring."""

_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "of",
        "in",
        "on",
        "at",
        "with",
        "and",
        "to",
        "from",
        "by",
        "for",
        "into",
        "onto",
        "his",
        "her",
        "their",
        "its",
        "while",
        "as",
    ]
)


@dataclass
class Pairs:
    """Feature columns (``score``, ``z``, ``rank``) and labels (1 present, 0 absent)."""

    columns: dict[str, NDArray[np.float64]]
    labels: NDArray[np.float64]
    images: NDArray[np.int64] | None = None
    """Visual pairs: the image each pair scored (a row of the image embeddings), for features of the
    image side; None for text pairs."""

    @staticmethod
    def join(parts: Sequence[Pairs]) -> Pairs:
        names = parts[0].columns
        images = [p.images for p in parts]
        return Pairs(
            {k: np.concatenate([p.columns[k] for p in parts]) for k in names},
            np.concatenate([p.labels for p in parts]),
            None if any(i is None for i in images) else np.concatenate([i for i in images if i is not None]),
        )


@dataclass
class CaptionGroups:
    """Images (or clips) with their captions: the raw material of visual and text pairs."""

    images: list[Path]
    captions: list[str]
    caption_to_image: list[int]

    def subset(self, ids: Sequence[int]) -> CaptionGroups:
        keep = {old: new for new, old in enumerate(ids)}
        rows = [(c, keep[i]) for c, i in zip(self.captions, self.caption_to_image, strict=True) if i in keep]
        return CaptionGroups([self.images[i] for i in ids], [c for c, _ in rows], [i for _, i in rows])

    def groups(self) -> list[list[str]]:
        out: list[list[str]] = [[] for _ in self.images]
        for caption, i in zip(self.captions, self.caption_to_image, strict=True):
            out[i].append(caption)
        return out


@dataclass
class FlickrCalibrationData:
    """Flickr8k as calibration uses it: DEV split into a FIT half and an EVAL half, TRAIN photos for the bank."""

    fit: CaptionGroups
    eval: CaptionGroups
    bank_images: list[Path]
    info: dict[str, Any] = field(default_factory=dict)


# ---- data --------------------------------------------------------------------------------------------
def groups_from_samples(samples: Sequence[Any]) -> CaptionGroups:
    from frameseek.lab.data.captions import group_by_image

    images, captions, c2i = group_by_image(samples)
    return CaptionGroups(images, captions, c2i)


def load_flickr(data: Path, seed: int = 0, bank_size: int = BANK_SIZE) -> FlickrCalibrationData:
    """Flickr8k DEV split in halves by a seeded shuffle (FIT, EVAL) and a seeded sample of TRAIN photos."""
    from frameseek.lab.data.captions import load_dataset

    data = Path(data)
    if not data.is_dir():
        raise InputError(f"calibration data folder not found: {data}")
    dev = groups_from_samples(load_dataset("flickr8k", data, "dev"))
    train_images = groups_from_samples(load_dataset("flickr8k", data, "train")).images
    if len(dev.images) < 20 or len(train_images) < 20:
        raise InputError(f"{data} has too few Flickr8k DEV or TRAIN photos to calibrate on")
    order = list(range(len(dev.images)))
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    bank = sorted(random.Random(seed + 1).sample(range(len(train_images)), min(bank_size, len(train_images))))
    return FlickrCalibrationData(
        fit=dev.subset(sorted(order[:half])),
        eval=dev.subset(sorted(order[half:])),
        bank_images=[train_images[i] for i in bank],
        info={"dev_images": len(dev.images), "fit_images": half, "eval_images": len(order) - half},
    )


def load_msrvtt_groups(data: Path) -> list[Any]:
    """The MSR-VTT clips (``VideoCaptions``) of a folder, every split."""
    from frameseek.lab.data.msrvtt import discover_msrvtt

    if not Path(data).exists():
        raise InputError(f"MSR-VTT folder not found: {data}")
    clips = discover_msrvtt(Path(data), "all")
    if len(clips) < 3:
        raise InputError(f"{data} has fewer than 3 MSR-VTT clips with captions")
    return clips


def embed_image_files(model: Any, paths: Sequence[Path], batch: int = 64) -> NDArray[np.float32]:
    """Unit image embeddings of photo files, as frames are embedded when indexing (no flip)."""
    from PIL import Image

    out = []
    for start in range(0, len(paths), batch):
        images = []
        for path in paths[start : start + batch]:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        out.append(np.asarray(model.encode_images(images), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, int(model.embed_dim)), dtype=np.float32)


# ---- features and fitting ----------------------------------------------------------------------------
def bank_features(bank: NDArray[Any], queries: NDArray[Any], scores: NDArray[Any]) -> dict[str, NDArray[Any]]:
    """``score``, ``z``, ``rank`` of ``scores`` (n,) where row i is a cosine of ``queries[i]``."""
    z = np.empty(len(scores))
    rank = np.empty(len(scores))
    bank_scores = queries.astype(np.float32) @ np.asarray(bank, dtype=np.float32).T  # (n, N)
    mean = bank_scores.mean(axis=1)
    std = bank_scores.std(axis=1) + 1e-6
    sorted_scores = np.sort(bank_scores, axis=1)
    for i, s in enumerate(scores):
        z[i] = (s - mean[i]) / std[i]
        rank[i] = np.searchsorted(sorted_scores[i], s, side="right") / sorted_scores.shape[1]
    return {"score": np.asarray(scores, dtype=np.float64), "z": z, "rank": rank}


def visual_pairs(
    bank: NDArray[Any],
    image_emb: NDArray[Any],
    text_emb: NDArray[Any],
    caption_to_image: Sequence[int],
    absent_emb: NDArray[Any],
    seed: int,
) -> Pairs:
    """Present: each caption with its own photo. Absent: with a random other photo and with the best of
    ``HARD_POOL`` random others; each absent query with 10 random photos and 10 bests of ``HARD_POOL``."""
    rng = np.random.default_rng(seed)
    n = len(image_emb)
    c2i = np.asarray(caption_to_image)
    sims = text_emb @ image_emb.T
    queries, images, labels = [], [], []
    pool = min(HARD_POOL, n - 1)
    for c, own in enumerate(c2i):
        others = rng.choice(np.delete(np.arange(n), own), size=pool, replace=False)
        queries += [c, c, c]
        images += [own, others[0], others[np.argmax(sims[c, others])]]
        labels += [1.0, 0.0, 0.0]
    q_all = [text_emb[i] for i in queries]
    scores = [sims[c, i] for c, i in zip(queries, images, strict=True)]
    if len(absent_emb):
        absent_sims = absent_emb @ image_emb.T
        for a in range(len(absent_emb)):
            for _ in range(10):
                anyone, hard = rng.integers(n), rng.choice(n, pool, False)
                picked = [anyone, hard[np.argmax(absent_sims[a, hard])]]
                q_all += [absent_emb[a], absent_emb[a]]
                images += picked
                scores += [absent_sims[a, i] for i in picked]
                labels += [0.0, 0.0]
    columns = bank_features(bank, np.stack(q_all), np.asarray(scores))
    return Pairs(columns, np.asarray(labels), np.asarray(images, dtype=np.int64))


def fit_logistic(pairs: Pairs, features: tuple[str, ...], l2: float = L2) -> Logistic:
    """Maximum-likelihood logistic regression (Newton steps, a small L2 on the weights)."""
    x = np.stack([pairs.columns[f] for f in features], axis=1)
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    xs = np.concatenate([(x - mu) / sd, np.ones((len(x), 1))], axis=1)
    y = pairs.labels
    w = np.zeros(xs.shape[1])
    reg = np.full(xs.shape[1], l2 * len(x))
    reg[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(xs @ w, -60, 60)))
        grad = xs.T @ (p - y) + reg * w
        hess = (xs * (p * (1 - p))[:, None]).T @ xs + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    weights = w[:-1] / sd
    bias = float(w[-1] - (w[:-1] * mu / sd).sum())
    return Logistic(tuple(float(v) for v in weights), bias, features)


def choose_features(
    pairs: Pairs, seed: int, folds: int = 4, sets: Sequence[tuple[str, ...]] = FEATURE_SETS
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The feature set with the lowest cross-validated log loss on ``pairs`` (the fitting data only), among
    those whose fitted weights are all positive: confidence must rise with the frame's score (a negative
    ``rank`` weight, for one, makes it dip at every bank photo it passes)."""
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, size=len(pairs.labels))
    results: dict[str, Any] = {}
    best: tuple[float, tuple[str, ...]] | None = None
    for features in sets:
        if min(fit_logistic(pairs, features).weights) <= 0:
            results["+".join(features)] = "not monotonic"
            continue
        losses = []
        for k in range(folds):
            train = Pairs({n: c[fold != k] for n, c in pairs.columns.items()}, pairs.labels[fold != k])
            test = {n: c[fold == k] for n, c in pairs.columns.items()}
            p = np.clip(fit_logistic(train, features)(test).astype(np.float64), 1e-6, 1 - 1e-6)
            y = pairs.labels[fold == k]
            losses.append(float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()))
        loss = float(np.mean(losses))
        results["+".join(features)] = round(loss, 4)
        if best is None or loss < best[0] - 1e-4:
            best = (loss, features)
    return (best[1] if best is not None else ("score",)), results


def informative(model: Logistic, labels: NDArray[Any]) -> Logistic:
    """``model`` if its confidence rises with every feature, else a constant at the share present (a
    model whose scores do not separate the pairs says so, instead of inverting them)."""
    if min(model.weights) > 0:
        return model
    share = float(np.clip(np.mean(labels), 1e-3, 1 - 1e-3))
    return Logistic(tuple(0.0 for _ in model.features), float(np.log(share / (1 - share))), model.features)


def keyword_query(caption: str) -> str:
    """The caption's two longest content words: a keyword query a user might type."""
    words = [w for w in re.findall(r"[a-z]+", caption.lower()) if w not in _STOP and len(w) > 2]
    return " ".join(sorted(set(words), key=lambda w: (-len(w), w))[:2]) or caption


def text_pairs(
    groups: Sequence[Sequence[str]],
    encode_sentences: Callable[[list[str]], NDArray[Any]],
    absent: Sequence[str],
    seed: int,
    queries_per_group: int = 5,
) -> Pairs:
    """``SpanMatcher`` scores of queries against groups of spans (one group = one scene's captions).

    Present: a caption against its group's other captions, and its keyword query against them. Absent: the
    same two queries against another group's captions, and every absent query against a few groups."""
    rng = random.Random(seed)
    texts = sorted({t for g in groups for t in g} | set(absent))
    index = {t: i for i, t in enumerate(texts)}
    chosen: list[tuple[int, int]] = []  # (group, caption position)
    for g, group in enumerate(groups):
        for pos in rng.sample(range(len(group)), min(queries_per_group, len(group))):
            chosen.append((g, pos))
    keywords = sorted({keyword_query(groups[g][p]) for g, p in chosen} - set(index))
    for k in keywords:
        index[k] = len(texts)
        texts.append(k)
    emb = np.asarray(encode_sentences(texts), dtype=np.float32)
    scores, labels, lexical, cosine = [], [], [], []

    def score(query: str, g: int, skip: str | None) -> float:
        spans = [t for t in groups[g] if t != skip]
        if not spans:
            lexical.append(0.0)
            cosine.append(-1.0)
            return 0.0
        rows = emb[[index[t] for t in spans]]
        matcher = SpanMatcher(
            [TextSpan(float(i), float(i + 1), t) for i, t in enumerate(spans)],
            embeddings=rows,
            multilingual=None,  # ``encode_sentences`` scores every pair, whatever its language
        )
        lexical.append(float(matcher.lexical_scores(query).max()))
        cosine.append(float((rows @ emb[index[query]]).max()))
        return float(matcher.scores(query, query_embedding=emb[index[query]]).max())

    for g, pos in chosen:
        caption = groups[g][pos]
        other = rng.choice([h for h in range(len(groups)) if h != g])
        for query in (caption, keyword_query(caption)):
            scores += [score(query, g, caption), score(query, other, None)]
            labels += [1.0, 0.0]
    for query in absent:
        for g in rng.sample(range(len(groups)), min(5, len(groups))):
            scores.append(score(query, g, None))
            labels.append(0.0)
    columns = {"score": scores, "lexical": lexical, "cosine": cosine}
    out = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
    out["level"] = semantic_level(out["cosine"], SEMANTIC_FLOOR, SEMANTIC_CEILING)
    return Pairs(out, np.asarray(labels))


def rescaled_level(pairs: Pairs, floor: float, ceiling: float) -> NDArray[np.float64]:
    """A pair's semantic level had its cosine been rescaled by ``floor`` / ``ceiling`` (unclipped)."""
    return semantic_level(pairs.columns["cosine"], floor, ceiling)


def rescaled_score(pairs: Pairs, floor: float, ceiling: float) -> NDArray[np.float64]:
    """A pair's ``SpanMatcher`` score had its semantic channel's cosine been rescaled by ``floor`` /
    ``ceiling``: ``max(lexical, SEMANTIC_WEIGHT · clip((cos - floor) / (ceiling - floor), 0, 1))``."""
    return fused_score(pairs.columns["lexical"], rescaled_level(pairs, floor, ceiling))


def fit_multilingual_range(
    text_sets: Sequence[tuple[Sequence[Sequence[str]], int]],
    text_model: Logistic,
    encode: Callable[[list[str]], NDArray[Any]] | None = None,
    seed: int = 0,
) -> tuple[float, float, dict[str, Any]]:
    """``MULTILINGUAL_FLOOR`` / ``CEILING`` for the multilingual encoder (``encode``: the packaged one):
    the rescaling under which the text tracks' fitted logistic (``text_model``, fitted over the English
    encoder's scores) has the least log loss on ``text_sets``' pairs scored through the multilingual
    encoder, so that one score means one confidence whichever encoder gave it. Pairs are English captions
    (no translated captions of non-TEST photos are stored here): a translation of a span scores like a
    close paraphrase (cosine 0.81-0.89, ``text.multilingual``)."""
    from frameseek.text.multilingual import encode_multilingual

    encode = encode or encode_multilingual
    pairs = Pairs.join(
        [
            text_pairs(groups, encode, ABSENT_FIT if i == 0 else (), seed, per_group)
            for i, (groups, per_group) in enumerate(text_sets)
        ]
    )
    y = pairs.labels
    best: tuple[float, float, float] | None = None
    for floor in np.arange(0.0, 0.62, 0.02):
        for ceiling in np.arange(floor + 0.1, 1.001, 0.02):
            p = np.clip(text_model({"score": rescaled_score(pairs, floor, ceiling)}), 1e-6, 1 - 1e-6)
            loss = float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
            if best is None or loss < best[0] - 1e-6:
                best = (loss, round(float(floor), 2), round(float(ceiling), 2))
    assert best is not None
    info = {
        "log_loss": round(best[0], 4),
        "present": int(y.sum()),
        "absent": int((1 - y).sum()),
    }
    return best[1], best[2], info


def measure_multilingual(
    calibration: Calibration,
    groups: Sequence[Sequence[str]],
    floor: float,
    ceiling: float,
    encode: Callable[[list[str]], NDArray[Any]] | None = None,
    seed: int = 1,
) -> dict[str, Any]:
    """ECE / AUROC of the text tracks' confidence with the multilingual encoder's scores rescaled by
    ``floor`` / ``ceiling``: the held-out pairs of ``measure_text``."""
    from frameseek.text.multilingual import encode_multilingual

    pairs = text_pairs(groups, encode or encode_multilingual, ABSENT_HELD_OUT, seed, queries_per_group=1)
    p = calibration.text_confidence(
        "speech",
        rescaled_score(pairs, floor, ceiling),
        lexical=pairs.columns["lexical"],
        level=rescaled_level(pairs, floor, ceiling),
    )
    return {"multilingual": scored(p, pairs.labels)}


def fit_calibration(
    model: Any,
    bank_images: Sequence[Path],
    fit: CaptionGroups,
    text_sets: Sequence[tuple[Sequence[Sequence[str]], int]],
    *,
    seed: int = 0,
    info: dict[str, Any] | None = None,
) -> Calibration:
    """The model's calibration: the bank from ``bank_images``, visual and text models from ``fit``'s
    pairs and ``text_sets`` (caption groups, queries per group; plus ``ABSENT_FIT``)."""
    bank = embed_image_files(model, bank_images)
    bank = bank.astype(np.float16).astype(np.float32)  # as it will be stored
    image_emb = embed_image_files(model, fit.images)
    text_emb = np.asarray(model.encode_texts(list(fit.captions)), dtype=np.float32)
    absent_emb = np.asarray(model.encode_texts(list(ABSENT_FIT)), dtype=np.float32)
    pairs = visual_pairs(bank, image_emb, text_emb, fit.caption_to_image, absent_emb, seed)
    features, cv = choose_features(pairs, seed)
    visual = informative(fit_logistic(pairs, features), pairs.labels)
    tpairs = Pairs.join(
        [
            text_pairs(groups, model.encode_sentences, ABSENT_FIT if i == 0 else (), seed, per_group)
            for i, (groups, per_group) in enumerate(text_sets)
        ]
    )
    text_features, text_cv = choose_features(tpairs, seed, sets=TEXT_FEATURE_SETS)
    text = informative(fit_logistic(tpairs, text_features), tpairs.labels)
    fused = informative(fit_logistic(tpairs, ("score",)), tpairs.labels)
    details = {
        "bank_images": len(bank),
        "visual_pairs": {"present": int(pairs.labels.sum()), "absent": int((1 - pairs.labels).sum())},
        "visual_features_cv_logloss": cv,
        "text_pairs": {"present": int(tpairs.labels.sum()), "absent": int((1 - tpairs.labels).sum())},
        "text_features_cv_logloss": text_cv,
        "absent_fit_queries": len(ABSENT_FIT),
        "seed": seed,
        **(info or {}),
    }
    return Calibration(
        bank=bank, visual=visual, text={"speech": text, "screen": text, "score": fused}, info=details
    )


def calibrate_flickr(
    model: Any,
    data: Path,
    msrvtt: Path | None = None,
    seed: int = 0,
    bank_size: int = BANK_SIZE,
    fit_images: int | None = None,
) -> Calibration:
    """``frameseek calibrate``: Flickr8k DEV FIT half (+ MSR-VTT captions for text, if given);
    ``fit_images``: only the first N photos of the FIT half (a quick, rougher fit)."""
    flickr = load_flickr(data, seed, bank_size)
    if fit_images is not None:
        flickr.fit = flickr.fit.subset(list(range(min(fit_images, len(flickr.fit.images)))))
    text_sets: list[tuple[Sequence[Sequence[str]], int]] = [(flickr.fit.groups(), 1)]
    if msrvtt is not None:  # a second kind of scene (video clips, 20 captions each): text fitted on both
        text_sets.insert(0, ([c.captions for c in load_msrvtt_groups(msrvtt)], 5))
    info = {
        "data": "flickr8k DEV FIT half (seeded) + absent-object queries; bank: flickr8k TRAIN sample",
        "text_data": ("msrvtt captions + " if msrvtt is not None else "") + "flickr8k DEV FIT captions",
        **flickr.info,
    }
    return fit_calibration(model, flickr.bank_images, flickr.fit, text_sets, seed=seed, info=info)


def calibrate_checkpoint(
    model: Any, folder: Path, train_images: Sequence[Path], held: CaptionGroups, seed: int = 0
) -> Calibration:
    """``frameseek train``: fitted on the selection holdout (never trained on), bank from TRAIN photos;
    saved into the checkpoint ``folder``."""
    if len(held.images) < 2 or not train_images:
        raise InputError("calibration needs at least 2 held-out photos and some training photos")
    rng = random.Random(seed + 1)
    bank = [
        train_images[i]
        for i in sorted(rng.sample(range(len(train_images)), min(BANK_SIZE, len(train_images))))
    ]
    info = {"data": "the training run's selection holdout + absent-object queries; bank: its TRAIN photos"}
    calibration = fit_calibration(model, bank, held, [(held.groups(), 1)], seed=seed, info=info)
    calibration.save(folder)
    return calibration


# ---- measuring ---------------------------------------------------------------------------------------
def expected_calibration_error(p: NDArray[Any], y: NDArray[Any], bins: int = 15) -> float:
    """Σ_bins (n_b / n) · |mean confidence − share present| over equal-width bins of [0, 1]."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() / len(p) * abs(p[mask].mean() - y[mask].mean())
    return float(total)


def auroc(p: NDArray[Any], y: NDArray[Any]) -> float:
    """Area under the ROC curve: the chance a present case outscores an absent one (ties count half)."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y) > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return float("nan")
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # average ranks, 1-based
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def scored(p: NDArray[Any], y: NDArray[Any]) -> dict[str, Any]:
    """ECE, AUROC, the counts, and the share of present / absent cases that a search would call found
    (confidence ≥ ``FOUND_AT``)."""
    p, present = np.asarray(p, dtype=np.float64), np.asarray(y) > 0.5
    found = p >= FOUND_AT
    return {
        "ece": round(expected_calibration_error(p, y), 4),
        "auroc": round(auroc(p, y), 4),
        "present": int(present.sum()),
        "absent": int((~present).sum()),
        "found": {
            "present": round(float(found[present].mean()), 4) if present.any() else None,
            "absent": round(float(found[~present].mean()), 4) if (~present).any() else None,
        },
    }


def measure_images(
    calibration: Calibration, model: Any, held: CaptionGroups, seed: int = 1
) -> dict[str, Any]:
    """ECE / AUROC on held-out photos: the same pair construction as fitting, held-out absent queries."""
    image_emb = embed_image_files(model, held.images)
    text_emb = np.asarray(model.encode_texts(list(held.captions)), dtype=np.float32)
    absent_emb = np.asarray(model.encode_texts(list(ABSENT_HELD_OUT)), dtype=np.float32)
    pairs = visual_pairs(calibration.bank, image_emb, text_emb, held.caption_to_image, absent_emb, seed)
    p = calibration.visual(pairs.columns)
    return {"visual": scored(p, pairs.labels)}


def measure_text(
    calibration: Calibration, model: Any, groups: Sequence[Sequence[str]], seed: int = 1
) -> dict[str, Any]:
    """ECE / AUROC of the text tracks' confidence: one query per held-out group, held-out absent queries."""
    pairs = text_pairs(groups, model.encode_sentences, ABSENT_HELD_OUT, seed, queries_per_group=1)
    columns = pairs.columns
    p = calibration.text_confidence(
        "speech", columns["score"], lexical=columns["lexical"], level=columns["level"]
    )
    return {"text": scored(p, pairs.labels)}


def measure_videos(
    calibration: Calibration,
    model: Any,
    clips: Sequence[Any],
    frames: Sequence[NDArray[Any]],
    captions_per_clip: int = 5,
    seed: int = 1,
    frame_confidence: FrameConfidence | None = None,
    clip_confidence: Callable[[NDArray[Any]], float] = np.max,
) -> dict[str, Any]:
    """Per clip: its best frame's confidence for its own captions (present), for captions of the clips least
    like it (by caption similarity, absent) and for the held-out absent queries (absent).

    ``frame_confidence(query, frames)`` (default: the calibration's visual confidence of the frames'
    cosines) and ``clip_confidence`` (default: the best frame's) are there to measure alternatives."""

    def shipped(query: NDArray[Any], frames: NDArray[Any]) -> NDArray[Any]:
        return calibration.visual_confidence(query, frames @ query)

    confidence_of = frame_confidence or shipped
    rng = random.Random(seed)
    sentences = [np.asarray(model.encode_sentences(list(c.captions)), dtype=np.float32) for c in clips]
    centres = np.stack([s.mean(axis=0) / np.linalg.norm(s.mean(axis=0)) for s in sentences])
    similarity = centres @ centres.T
    picked = [rng.sample(list(c.captions), min(captions_per_clip, len(c.captions))) for c in clips]
    queries = [q for qs in picked for q in qs] + list(ABSENT_HELD_OUT)
    owner = [i for i, qs in enumerate(picked) for _ in qs] + [-1] * len(ABSENT_HELD_OUT)
    q_emb = np.asarray(model.encode_texts(queries), dtype=np.float32)
    far = max(1, len(clips) // 3)
    conf, labels = [], []
    for v, emb in enumerate(frames):
        unlike = set(np.argsort(similarity[v])[:far].tolist())
        for q, o in enumerate(owner):
            if o == v:
                label = 1.0
            elif o == -1 or o in unlike:
                label = 0.0
            else:
                continue  # a clip like this one: its captions may well match
            conf.append(float(clip_confidence(confidence_of(q_emb[q], emb))))
            labels.append(label)
    return {"video": scored(np.asarray(conf), np.asarray(labels))}
