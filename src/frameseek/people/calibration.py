"""From a face distance to the probability that two faces are one person (the confidence scale).

``p(same | d) = 1 / (1 + exp(-(A + B·d)))``, a logistic fitted once on real footage that no test uses:
the MSR-VTT clips of the shared data, all but ``video236``, ``video4382`` and ``video1672`` (the test
montage's). Labels come from the footage, not from the embeddings: two faces of one clip are the same
person when a face track links them (boxes overlapping, IoU > 0.4, on samples 0.5 s apart); faces of two
different clips are different people. Both classes weigh the same (a balanced prior), so p = 0.5 where a
distance is as likely for one person as for two. Refit with::

    python -m frameseek.people.calibration /path/to/msrvtt/videos --exclude video236,video4382,video1672

Fitted 2026-12-06 on 18 clips (16 with faces): 1,527 same-person pairs (distance mean 0.27, 99th percentile 0.53),
12,971 different-person pairs (mean 0.75, 1st percentile 0.54).
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

A = 21.26
B = -40.13
"""The fitted logistic (see the module's docstring)."""

SAME_AT = -A / B
"""The distance at which p = 0.5 (≈ 0.53): faces closer than this are taken as one person."""


def same_person(distance: float | np.ndarray) -> np.ndarray:
    """p(same person) for face distances (L2 between 128-d embeddings)."""
    z = A + B * np.asarray(distance, dtype=np.float64)
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))))


def fit(same: Sequence[float], different: Sequence[float], steps: int = 100) -> tuple[float, float]:
    """(A, B) of a logistic on distance, each class weighted to the same total (Newton's method)."""
    x = np.concatenate([np.asarray(same, float), np.asarray(different, float)])
    y = np.concatenate([np.ones(len(same)), np.zeros(len(different))])
    w = np.concatenate([np.full(len(same), 0.5 / len(same)), np.full(len(different), 0.5 / len(different))])
    X = np.stack([np.ones_like(x), x], axis=1)
    theta = np.zeros(2)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(X @ theta)))
        grad = X.T @ (w * (y - p))
        hess = (X * (w * p * (1 - p))[:, None]).T @ X + 1e-9 * np.eye(2)
        theta = theta + np.linalg.solve(hess, grad)
    return float(theta[0]), float(theta[1])


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def clip_tracks(path: Path, fps: float = 2.0) -> list[list[np.ndarray]]:
    """The face tracks of one clip (embeddings of boxes linked from sample to sample), two faces or more."""
    import av

    from frameseek.people.faces import faces_in_frames
    from frameseek.video.decode import Frame

    tracks: list[list[tuple[float, tuple[int, int, int, int], np.ndarray]]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = []
        wanted = 0.0
        for frame in container.decode(stream):
            t = float(frame.time) if frame.time is not None else wanted
            if t + 1e-6 >= wanted:
                frames.append(Frame(t, frame.to_ndarray(format="rgb24")))
                wanted = t + 1.0 / fps
    for _frame, faces in faces_in_frames(frames):
        for face in faces:
            linked = [
                tr
                for tr in tracks
                if 0 < face.time - tr[-1][0] <= 1.2 / fps and _iou(tr[-1][1], face.box) > 0.4
            ]
            if linked:
                linked[-1].append((face.time, face.box, face.embedding))
            else:
                tracks.append([(face.time, face.box, face.embedding)])
    return [[e for _, _, e in tr] for tr in tracks if len(tr) >= 2]


def pairs(clips: Iterable[list[list[np.ndarray]]], per_track: int = 3) -> tuple[list[float], list[float]]:
    """Same-person distances (within a track) and different-person ones (tracks of different clips)."""
    clips = list(clips)
    same = [
        float(np.linalg.norm(a - b))
        for tracks in clips
        for track in tracks
        for a, b in itertools.combinations(track, 2)
    ]
    different = [
        float(np.linalg.norm(a - b))
        for one, two in itertools.combinations(clips, 2)
        for t1 in one
        for t2 in two
        for a in t1[:per_track]
        for b in t2[:per_track]
    ]
    return same, different


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fit the face-distance calibration on a folder of clips.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--exclude", default="", help="comma-separated clip stems to leave out (test clips)")
    args = parser.parse_args(argv)
    skip = {s.strip() for s in args.exclude.split(",") if s.strip()}
    paths = sorted(p for p in args.folder.glob("*.mp4") if p.stem not in skip)
    same, different = pairs(clip_tracks(p) for p in paths)
    a, b = fit(same, different)
    print(f"{len(paths)} clips, {len(same)} same-person pairs, {len(different)} different-person pairs")
    print(f"same: mean {np.mean(same):.3f}, p99 {np.percentile(same, 99):.3f}")
    print(f"different: mean {np.mean(different):.3f}, p1 {np.percentile(different, 1):.3f}")
    print(f"A = {a:.2f}\nB = {b:.2f}\np = 0.5 at distance {-a / b:.3f}")
    if not math.isfinite(a + b):
        raise SystemExit("the fit did not converge")


if __name__ == "__main__":
    main()
