"""Calibrated confidence: the probability that a moment matches the query, per model and per track.

A raw cosine means nothing on its own: a query of common words scores high everywhere, a rare one low.
So a frame's cosine is compared with what the same query scores on a fixed **reference bank** of generic
image embeddings that ships with the model (``calibration-bank.safetensors``): its z-score against the
bank and the share of the bank it beats. A logistic model over those features, fitted on data the model
was not trained on (``frameseek.lab.calibration``), turns them into a probability. Text tracks (speech,
screen) calibrate a span the same way, each with its own logistic model: over the ``SpanMatcher``'s two
channels (its lexical score and its semantic level, the cosine rescaled but not clipped) where the fit
chose them, with a model over the fused score alone (``text["score"]``) for callers that have only that.

The calibration lives beside the model's weights (``calibration.json`` + the bank): numpy only, so a
repeat query that needs no torch needs none here either. A model without one (a hub model, a fresh
checkpoint before calibration) gets ``Calibration.uncalibrated()``, whose numbers are a rough logistic
on the raw score and say so (``calibrated`` is False).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

CALIBRATION_FILE = "calibration.json"
BANK_FILE = "calibration-bank.safetensors"
FOUND_AT = 0.5
"""A video "contains" the query when one of its moments reaches this confidence."""

Floats = NDArray[np.float32]


@dataclass(frozen=True)
class Logistic:
    """p = sigmoid(w · features + b); ``features`` names what each weight multiplies."""

    weights: tuple[float, ...]
    bias: float
    features: tuple[str, ...]

    def __call__(self, columns: dict[str, NDArray[Any]]) -> Floats:
        z = np.full(np.shape(next(iter(columns.values()))), self.bias, dtype=np.float64)
        for w, name in zip(self.weights, self.features, strict=True):
            z = z + w * np.asarray(columns[name], dtype=np.float64)
        return (1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))).astype(np.float32)

    def as_dict(self) -> dict[str, Any]:
        return {"weights": list(self.weights), "bias": self.bias, "features": list(self.features)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Logistic:
        return cls(tuple(float(w) for w in data["weights"]), float(data["bias"]), tuple(data["features"]))


@dataclass(frozen=True)
class QueryStats:
    """What one query scores on the reference bank: mean, spread, and the sorted scores (for ranks)."""

    mean: float
    std: float
    sorted_scores: Floats


@dataclass(frozen=True)
class Calibration:
    """A model's confidence calibration: the reference bank and one logistic model per track."""

    bank: Floats
    """(N, D) unit embeddings of generic images (empty for an uncalibrated model)."""
    visual: Logistic
    text: dict[str, Logistic] = field(default_factory=dict)
    """Per text track kind (``speech``, ``screen``): over the ``SpanMatcher``'s channels (``lexical``,
    ``level``) or its fused ``score``; ``"score"``: the fused-score model, for callers with only a score."""
    calibrated: bool = True
    info: dict[str, Any] = field(default_factory=dict)
    """How it was fitted (data, sizes, held-out ECE / AUROC), as stored in ``calibration.json``."""

    # ---- scoring ------------------------------------------------------------------------------
    def query_stats(self, query: NDArray[Any]) -> QueryStats | None:
        """The query's scores on the bank (None without a bank)."""
        if not len(self.bank):
            return None
        scores = self.bank @ np.asarray(query, dtype=np.float32)
        return QueryStats(float(scores.mean()), float(scores.std()) + 1e-6, np.sort(scores))

    def visual_confidence(self, query: NDArray[Any], scores: NDArray[Any]) -> Floats:
        """Confidence of each frame score (cosine with ``query``) in [0, 1]."""
        s = np.asarray(scores, dtype=np.float32)
        stats = self.query_stats(query)
        if stats is None:
            return self.visual({"score": s})
        columns = {
            "score": s,
            "z": (s - stats.mean) / stats.std,
            "rank": np.searchsorted(stats.sorted_scores, s, side="right") / len(stats.sorted_scores),
        }
        return self.visual(columns)

    def text_confidence(
        self,
        kind: str,
        scores: NDArray[Any],
        lexical: NDArray[Any] | None = None,
        level: NDArray[Any] | None = None,
    ) -> Floats:
        """Confidence of each span of a text track of ``kind`` in [0, 1], from its fused ``SpanMatcher``
        score and, when given, its two channels (``lexical`` score, semantic ``level``)."""
        columns = {"score": np.asarray(scores, dtype=np.float32)}
        if lexical is not None and level is not None:
            columns["lexical"] = np.asarray(lexical, dtype=np.float32)
            columns["level"] = np.asarray(level, dtype=np.float32)
        model = self.text.get(kind) or self.text.get("text") or _UNCALIBRATED_TEXT
        if not set(model.features) <= set(columns):  # a channel model, asked with the score alone
            model = self.text.get("score") or _UNCALIBRATED_TEXT
        return model(columns)

    # ---- storage ------------------------------------------------------------------------------
    @classmethod
    def uncalibrated(cls) -> Calibration:
        """A stand-in for a model with no calibration: a rough logistic on the raw score."""
        return cls(
            bank=np.zeros((0, 0), dtype=np.float32),
            visual=_UNCALIBRATED_VISUAL,
            text={"speech": _UNCALIBRATED_TEXT, "screen": _UNCALIBRATED_TEXT},
            calibrated=False,
        )

    @classmethod
    def load(cls, folder: Path) -> Calibration:
        """The calibration stored in a model folder, else ``uncalibrated()``."""
        path = Path(folder) / CALIBRATION_FILE
        if not path.is_file():
            return cls.uncalibrated()
        from safetensors.numpy import load_file

        data = json.loads(path.read_text(encoding="utf-8"))
        bank_path = Path(folder) / BANK_FILE
        bank = load_file(str(bank_path))["bank"].astype(np.float32) if bank_path.is_file() else None
        return cls(
            bank=bank if bank is not None else np.zeros((0, 0), dtype=np.float32),
            visual=Logistic.from_dict(data["visual"]),
            text={k: Logistic.from_dict(v) for k, v in data.get("text", {}).items()},
            calibrated=True,
            info=dict(data.get("info", {})),
        )

    def save(self, folder: Path) -> None:
        """Write ``calibration.json`` and the bank into ``folder`` (each atomically)."""
        from safetensors.numpy import save_file

        from frameseek.system.atomic import atomic_path, write_text_atomic

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / BANK_FILE) as tmp:
            save_file({"bank": np.ascontiguousarray(self.bank.astype(np.float16))}, str(tmp))
        data = {
            "visual": self.visual.as_dict(),
            "text": {k: v.as_dict() for k, v in self.text.items()},
            "info": self.info,
        }
        write_text_atomic(folder / CALIBRATION_FILE, json.dumps(data, indent=2) + "\n")
        for name in (BANK_FILE, CALIBRATION_FILE):  # readable like the weights (temp files are 0600)
            (folder / name).chmod(0o644)


_UNCALIBRATED_VISUAL = Logistic((25.0,), -7.5, ("score",))
"""Without a bank: 0.5 at a cosine of 0.30, rising fast above it (lite's good matches measure 0.25-0.55)."""
_UNCALIBRATED_TEXT = Logistic((12.0,), -6.0, ("score",))
"""0.5 at a SpanMatcher score of 0.5 (1.0 is the exact phrase, ~0 unrelated)."""
