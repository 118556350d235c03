"""dlib's face models, located inside ``face_recognition_models`` without importing it (its ``__init__``
imports ``pkg_resources``) and loaded once per process, on first use."""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frameseek.errors import ModelError

LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
"""The 5-point landmark model: the 68-point one's training data excludes commercial use."""
EMBEDDER_FILE = "dlib_face_recognition_resnet_model_v1.dat"
FACE_MODEL_ID = "dlib-hog+5pt+resnet128-v1"
"""Names the detector, landmarks and embedder: part of every stored faces track's key."""


def models_folder() -> Path:
    """The ``models/`` folder of the installed ``face_recognition_models`` (ModelError when missing)."""
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelError("face models are not installed: pip install face_recognition_models==0.3.0")
    folder = Path(locations[0]) / "models"
    for name in (LANDMARKS_FILE, EMBEDDER_FILE):
        if not (folder / name).is_file():
            raise ModelError(f"face model file {name} is missing from {folder}")
    return folder


@dataclass(frozen=True)
class FaceModels:
    """The HOG detector, the 5-point shape predictor and the 128-d embedder (dlib objects)."""

    detector: Any
    landmarks: Any
    embedder: Any


_LOCK = threading.Lock()
_MODELS: FaceModels | None = None


def face_models() -> FaceModels:
    """The process's face models, loaded on first use (ModelError when dlib or the weights are missing)."""
    global _MODELS
    with _LOCK:
        if _MODELS is None:
            try:
                import dlib  # type: ignore[import-untyped]
            except ImportError:
                raise ModelError("dlib is not installed: pip install dlib-bin==20.0.1.post1") from None
            folder = models_folder()
            try:
                _MODELS = FaceModels(
                    dlib.get_frontal_face_detector(),
                    dlib.shape_predictor(str(folder / LANDMARKS_FILE)),
                    dlib.face_recognition_model_v1(str(folder / EMBEDDER_FILE)),
                )
            except RuntimeError as err:
                raise ModelError(f"cannot load the face models from {folder}: {err}") from None
        return _MODELS
