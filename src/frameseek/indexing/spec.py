"""What an index runner is made of, as plain picklable data: the one place a runner is built.

```
Searcher / a distributor ──▶ RunnerSpec (model name or folder, device, limits, defaults, threads)
                                  │  travels (pickled to a Ray worker, kept by the Searcher)
                                  ▼
                        RunnerSpec.build()  ──▶  ModelHandle → FrameEncoder → IndexRunner, where it runs
```

A distributor ships the spec, never a live runner (clip-retrieval's ``worker_args``). In this process a
``Searcher`` builds its runner from the same spec with the model it already holds (``build(model)``), and
hands that runner to an in-process distributor as ``local`` so the model is not loaded twice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from frameseek import settings
from frameseek.errors import InputError
from frameseek.indexing.text_tracks import TrackOptions
from frameseek.models.registry import AUTO_MODEL, PRESETS
from frameseek.video.sampling import Sampling

if TYPE_CHECKING:
    from frameseek.indexing.runner import IndexRunner
    from frameseek.models.dual_encoder import DualEncoder
    from frameseek.models.handle import ModelHandle


def portable_model(model: str) -> str:
    """A preset name (or ``auto``) as is; a checkpoint folder as an absolute path (a worker does not share
    our working directory)."""
    if model in PRESETS or model == AUTO_MODEL:
        return model
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


@dataclass(frozen=True)
class RunnerSpec:
    """Everything an ``IndexRunner`` is built from, and the defaults of the jobs it runs.

    ``model``: a preset name or a checkpoint folder (absolute: see ``portable_model``); ``device``: as
    ``create_model`` takes it (None: its default). ``batch_size`` / ``encode_threads``: None decides them
    where the runner runs (``FrameEncoder``), so a GPU worker gets a GPU batch. ``sampling`` and
    ``tracks`` are the defaults for jobs that name none.
    """

    model: str
    device: str | None = None
    limits: settings.Limits = field(default_factory=settings.limits)
    sampling: Sampling = field(default_factory=Sampling)
    tracks: TrackOptions = field(default_factory=lambda: TrackOptions(subtitles=False))
    batch_size: int | None = None
    encode_threads: int | None = None
    decode_threads: int = 1

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise InputError("a runner needs a model: a preset name or a checkpoint folder")
        if self.batch_size is not None and self.batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {self.batch_size}")
        if self.encode_threads is not None and self.encode_threads < 1:
            raise InputError(f"encode threads must be >= 1, got {self.encode_threads}")
        if self.decode_threads < 1:
            raise InputError(f"decode threads must be >= 1, got {self.decode_threads}")
        object.__setattr__(self, "model", portable_model(self.model))

    def but(self, **changes: object) -> RunnerSpec:
        """This spec with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def runner_key(self) -> RunnerSpec:
        """The fields that make one runner differ from another (the job defaults left out): two specs
        with the same key can share a runner, a worker pool, a loaded model."""
        return self.but(sampling=Sampling(), tracks=TrackOptions(subtitles=False))

    def build(self, model: DualEncoder | ModelHandle | None = None) -> IndexRunner:
        """The runner this spec describes. ``model``: the one this process already holds for
        ``self.model`` (not loaded again); None: a handle that creates it on first use."""
        from frameseek.indexing.encoder import FrameEncoder
        from frameseek.indexing.runner import IndexRunner
        from frameseek.models.handle import ModelHandle

        handle = model if model is not None else ModelHandle(self.model, device=self.device)
        encoder = FrameEncoder(
            handle,
            threads=self.encode_threads,
            batch_size=self.batch_size,
            decode_threads=self.decode_threads,
        )
        return IndexRunner(encoder, self.limits, decode_threads=self.decode_threads)
