"""MSR-VTT text→video retrieval: sample frames per clip, mean-pool them, rank clips for every caption."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from frameseek.errors import InputError
from frameseek.lab import evaluation
from frameseek.lab.data.msrvtt import VideoCaptions
from frameseek.search import Searcher


def evaluate_msrvtt(
    searcher: Searcher, clips: Sequence[VideoCaptions], split: str, progress: bool = True
) -> dict[str, Any]:
    """Text→video on MSR-VTT: frames sampled per clip, mean-pooled per clip, every caption ranks all clips."""
    if not clips:
        raise InputError("no MSR-VTT clips found (check the annotation JSON and the videos folder)")
    frame_emb, groups, captions, c2v = [], [], [], []
    for i, clip in enumerate(tqdm(clips, desc="clips", unit="clip", disable=not progress, leave=False)):
        (outcome,) = searcher.index(clip.path)
        index = outcome.index
        assert index is not None
        frame_emb.append(index.embeddings)
        groups.extend([i] * len(index))
        captions.extend(clip.captions)
        c2v.extend([i] * len(clip.captions))
    video_emb = evaluation.mean_pool(np.concatenate(frame_emb), np.asarray(groups), len(clips))
    text_emb = searcher.model.encode_texts(captions)
    result = evaluation.text_to_video(text_emb, video_emb, np.asarray(c2v))
    return {
        "dataset": "msrvtt",
        "split": split,
        "model": searcher.model.name,
        "videos": len(clips),
        "captions": len(captions),
        "sampling": {"fps": searcher.sampling.fps, "scene": searcher.sampling.scene},
        "standard": {"text_to_video": result.as_dict()},
    }
