"""Process start-up for one-shot commands: heavy imports without cycle-collector passes over them.

Importing torch (and the search stack) creates about a million long-lived objects. The cycle collector
runs full passes over all of them while they are created and once more at interpreter exit — about a
third of torch's import cost in CPU time (measured on 2 shared cores: ``python -c "import torch"`` 2.06 s
CPU, 1.46 s with the collector paused during the import and the result frozen; ``os._exit`` instead of
a normal exit: 1.45 s). ``heavy_imports`` pauses the collector for the block, then ``gc.freeze()`` moves
what exists into the permanent generation, which later passes (and the one at exit) skip. Nothing is
skipped at exit: atexit handlers and finalizers run as always; reference counting frees memory as always.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def heavy_imports() -> Iterator[None]:
    """Run the block (imports that create long-lived objects) with the cycle collector paused, then freeze
    everything alive so no later pass walks it again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
