"""Where the editors' exports are written: a folder that can be written into, a file written whole.

An output folder that cannot be made (a file is in the way, no permission) or a file that cannot be written
is one InputError naming it (exit 2 at the command line), never an OSError's traceback or a half file.
"""

from __future__ import annotations

import os
from pathlib import Path

from frameseek.errors import InputError
from frameseek.system.atomic import write_text_atomic


def writable_folder(folder: Path) -> Path:
    """``folder``, made where missing; one InputError when it cannot be made or written into."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot write into the folder {folder}: {err.strerror or err}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write into the folder {folder}: permission denied")
    return folder


def write_markers(target: Path, text: str) -> Path:
    """``text`` saved as ``target`` whole or not at all (temp file + rename); one InputError on failure."""
    writable_folder(target.parent)
    try:
        write_text_atomic(target, text)
    except OSError as err:
        raise InputError(f"cannot write {target}: {err.strerror or err}") from None
    return target
