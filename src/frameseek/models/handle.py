"""A model named by preset or folder, loaded only as far as a call needs it.

``Searcher`` holds a ``ModelHandle``. What a text query on an indexed video asks of the model — its name,
config, fingerprint, and text embeddings — comes without importing torch: the config from ``config.json``,
the fingerprint from the fingerprint cache (``frameseek.models.fingerprint``), the embeddings from the
exported query engine (``frameseek.models.query_engine``). Everything else (indexing, image queries,
refining, a first query before any export) creates the ``DualEncoder`` through ``create_model`` once, and
from then on the handle answers with it. Either way the numbers are the model's (the engine's outputs
equal its fp32 text path up to float rounding).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from frameseek.models import fingerprint as fingerprints
from frameseek.models import registry
from frameseek.models.config import DualEncoderConfig, read_config
from frameseek.models.multilingual import MultilingualTower
from frameseek.models.query_engine import GRAPH_FILE, QueryEngine, engine_path, export_query_engine
from frameseek.models.registry import AUTO_MODEL, PRESETS
from frameseek.moments.confidence import Calibration

if TYPE_CHECKING:
    from frameseek.models.dual_encoder import DualEncoder

log = logging.getLogger(__name__)


class ModelHandle:
    """``name_or_path`` (a preset, ``auto`` or a checkpoint folder) on ``device``, or a loaded model."""

    def __init__(self, model: str | DualEncoder, device: str | None = None) -> None:
        self._lock = threading.RLock()
        self._device = device
        self._model: DualEncoder | None = None
        self._spec: str | None = None
        self._folder: Path | None = None
        self._config: DualEncoderConfig | None = None
        self._fingerprint: str | None = None
        self._engine: QueryEngine | None = None
        self._engine_checked = False
        self._calibration: Calibration | None = None
        self._multilingual: MultilingualTower | None = None
        self._multilingual_checked = False
        if isinstance(model, str):
            self._spec = model
            self._light_setup(model)
        else:
            self._model = model

    def _light_setup(self, name: str) -> None:
        """The folder and config of a packaged preset or a checkpoint folder (json only, no torch); a
        name needing more (``auto`` picking a hub preset, a preset without packaged weights, an error to
        report) is left for ``create_model``."""
        if name == AUTO_MODEL:
            # resolved here, once, as create_model would: every key then names the chosen preset
            name, note = registry.resolve_auto()
            log.warning(note)  # the command line shows it as one ``note:`` line
            self._spec = name
        # looked up at call time, as create_model does (tests replace it)
        folder = registry.packaged_weights(name) if name in PRESETS else Path(name).expanduser()
        if folder is None or not (folder / "config.json").is_file():
            return
        try:
            self._config = read_config(folder)
        except Exception:  # reported, one line, when the model is created
            return
        self._folder = folder

    # ---- the loaded model ------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        """Whether the DualEncoder has been created."""
        return self._model is not None

    @property
    def model(self) -> DualEncoder:
        """The DualEncoder, created now if it was not yet (imports torch)."""
        with self._lock:
            if self._model is None:
                from frameseek.system.startup import heavy_imports

                with heavy_imports():  # torch and the model code, without cycle-collector passes over them
                    from frameseek.models.factory import create_model
                assert self._spec is not None
                self._model = create_model(self._spec, device=self._device)
                self._model.eval()
            return self._model

    # ---- what a query needs, without the model where possible ----------------------------------------
    @property
    def config(self) -> DualEncoderConfig:
        if self._model is not None or self._config is None:
            return self.model.config
        return self._config

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def fingerprint(self) -> str:
        """The model's fingerprint: from the cache when its files are unchanged, else from the model."""
        if self._model is not None:
            return self._model.fingerprint
        found = self._cached_fingerprint()
        return found if found is not None else self.model.fingerprint

    def _cached_fingerprint(self) -> str | None:
        """The fingerprint from the cache, looked up once (None: unknown without creating the model)."""
        with self._lock:
            if self._fingerprint is None and self._config is not None and self._folder is not None:
                key = fingerprints.source_key(self._config, self._folder)
                self._fingerprint = fingerprints.cached(key) if key is not None else None
            return self._fingerprint

    @property
    def calibration(self) -> Calibration:
        """The model's confidence calibration (``calibration.json`` beside its weights; numpy only, no
        torch): ``Calibration.uncalibrated()`` for a model without one (a hub model, a changed model)."""
        with self._lock:
            if self._calibration is not None:
                return self._calibration
            folder = self._model.source_folder if self._model is not None else self._folder
            if folder is None and self._model is None:
                return Calibration.uncalibrated()  # not known before the model is created: asked again then
            self._calibration = Calibration.load(folder) if folder is not None else Calibration.uncalibrated()
            return self._calibration

    def query_engine(self) -> QueryEngine | None:
        """The exported query engine, while the model is not loaded and one has been exported for it."""
        if self._model is not None:
            return None
        with self._lock:
            if not self._engine_checked:
                self._engine_checked = True
                found = self._cached_fingerprint()
                if found is not None and self._config is not None:  # only ever under a known fingerprint
                    self._engine = QueryEngine.open(found, self._config)
            return self._engine if self._model is None else None

    def multilingual(self) -> MultilingualTower | None:
        """The model's multilingual tower (``multilingual.json`` beside its weights), or None; numpy only."""
        with self._lock:
            if not self._multilingual_checked:
                model_folder = getattr(self._model, "source_folder", None)  # a bare encoder has none
                folder = model_folder if self._model is not None else self._folder
                if folder is None and self._model is None:
                    return None  # not known before the model is created: asked again then
                self._multilingual_checked = True
                self._multilingual = MultilingualTower.load(folder)
            return self._multilingual

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Unit text embeddings; a query that is not English goes through the multilingual tower where the
        model has one (``frameseek.models.multilingual``), English keeps the model's own path."""

        def english(batch: list[str]) -> np.ndarray:
            engine = self.query_engine()
            return engine.encode_texts(batch) if engine is not None else self.model.encode_texts(batch)

        tower = self.multilingual()
        return tower.route(texts, english) if tower is not None else english(texts)

    def encode_sentences(self, texts: list[str]) -> np.ndarray:
        engine = self.query_engine()
        return engine.encode_sentences(texts) if engine is not None else self.model.encode_sentences(texts)

    def prepare_query_engine(self) -> Path | None:
        """Export the query engine for later processes if the model is loaded and has none yet (a few
        seconds, once per model and FRAMESEEK_HOME); returns its file, or None where unsupported or
        when the export failed (logged: the engine only saves later processes time)."""
        if self._model is None:
            return None
        try:
            path = engine_path(self._model.fingerprint)
            return path if (path / GRAPH_FILE).is_file() else export_query_engine(self._model)
        except Exception as exc:
            log.warning("could not export the query engine (%s); later queries load the model", exc)
            return None

    def __getattr__(self, name: str) -> Any:
        """Anything else is the model's (created now if needed)."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.model, name)
