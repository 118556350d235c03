"""Helpers shared by the test_reliability_*.py files: the CLI as a subprocess, the lite model, cache audits."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:
    from frameseek.models.dual_encoder import DualEncoder

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
CLEARED_VARS = (*PROXY_VARS, "FORCE_COLOR", "CLICOLOR_FORCE", "COLUMNS", "LINES", "FRAMESEEK_DEBUG")
FRAMESEEK_LIMIT_VARS = (
    "FRAMESEEK_MAX_DOWNLOAD_MB",
    "FRAMESEEK_CONNECT_TIMEOUT",
    "FRAMESEEK_DOWNLOAD_TIMEOUT",
    "FRAMESEEK_MAX_UPLOAD_MB",
    "FRAMESEEK_MAX_QUERY_CHARS",
    "FRAMESEEK_MAX_FRAMES",
    "FRAMESEEK_MAX_PIXELS",
)
CLI_TIMEOUT_S = 240.0
"""Generous: a CLI run is a few seconds, but the machine may be shared with training jobs."""


def lite_model_ref(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``"lite"`` when its trained heads ship with the package, else a lite checkpoint with fresh heads.

    The fallback is written once per test session (``save_pretrained`` is atomic: a folder with a config
    is complete) and passed as ``--model <folder>`` / ``Searcher(<folder>)``.
    """
    from frameseek.models.factory import build_preset
    from frameseek.models.registry import packaged_weights

    if packaged_weights("lite") is not None:
        return "lite"
    folder = tmp_path_factory.getbasetemp() / "lite-fresh-heads"
    if not (folder / "config.json").is_file():
        build_preset("lite").save_pretrained(folder)
    return str(folder)


_loaded: dict[str, Any] = {}


def shared_lite_model(tmp_path_factory: pytest.TempPathFactory) -> DualEncoder:
    """The lite model, loaded once per test session for all the reliability modules (read-only use)."""
    ref = lite_model_ref(tmp_path_factory)
    if ref not in _loaded:
        from frameseek.models.factory import create_model

        _loaded[ref] = create_model(ref)
    return cast("DualEncoder", _loaded[ref])


def cli_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI subprocess: a private FRAMESEEK_HOME, no proxies, no forced colours."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_VARS and k not in FRAMESEEK_LIMIT_VARS}
    env["FRAMESEEK_HOME"] = str(home)
    env["NO_COLOR"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def cli_command(*args: str) -> list[str]:
    """``python -m frameseek.cli ARGS``: the real entry point in a fresh interpreter."""
    return [sys.executable, "-m", "frameseek.cli", *args]


def run_cli(
    args: Sequence[str],
    home: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = CLI_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion (stdin closed) and capture its output as text."""
    return subprocess.run(
        cli_command(*args),
        env=cli_env(home, env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class CliCall:
    """One CLI invocation of a batch: its arguments, cache folder and extra environment."""

    args: tuple[str, ...]
    home: Path
    env: tuple[tuple[str, str], ...] = ()


def run_cli_batch(
    calls: Mapping[str, CliCall], workers: int = 3
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run many CLI invocations, a few at a time (each one mostly imports torch and loads a model)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(run_cli, c.args, c.home, dict(c.env)) for name, c in calls.items()}
        return {name: future.result() for name, future in futures.items()}


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Non-zero exit; stderr is exactly one line ``error: ...`` naming the problem; no traceback."""
    stderr = proc.stderr
    assert proc.returncode != 0, f"exit 0, stdout={proc.stdout!r} stderr={stderr!r}"
    assert "Traceback" not in stderr and "Traceback" not in proc.stdout, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {stderr!r}"
    line = lines[0]
    assert line.startswith("error: "), line
    assert not line.startswith("error: unexpected"), f"an unexpected exception reached the user: {line}"
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not in {line!r}"
    return line


# ------------------------------------------------------------------------------------- cache audit

TEMP_MARKERS = (".tmp", ".part", ".ytdl")


def leftovers(home: Path) -> list[str]:
    """Half-written things under FRAMESEEK_HOME: temporary files and folders, incomplete index folders."""
    found: list[str] = []
    if not home.exists():
        return found
    for dirpath, dirnames, filenames in os.walk(home):
        for name in [*dirnames, *filenames]:
            if name.endswith(TEMP_MARKERS) or name.startswith(".thumbs-") or ".old-" in name:
                found.append(str(Path(dirpath, name).relative_to(home)))
    for folder in index_dirs(home):
        if not ((folder / "meta.json").is_file() and (folder / "embeddings.safetensors").is_file()):
            found.append(f"incomplete index {folder.relative_to(home)}")
    return sorted(found)


def index_dirs(home: Path) -> list[Path]:
    """Every visible visual-track folder: ``indexes/<sha[:2]>/<sha>/visual/<model>-<sampling>``."""
    root = home / "indexes"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("*/*/visual/*") if p.is_dir() and not p.name.startswith("."))


def complete_indexes(home: Path) -> list[Path]:
    """Index folders that were published (have their metadata)."""
    return [p for p in index_dirs(home) if (p / "meta.json").is_file()]


def downloaded_files(home: Path) -> list[str]:
    """Files in the download cache other than lock files."""
    root = home / "downloads"
    if not root.is_dir():
        return []
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock")
    )


def assert_nothing_half_written(home: Path, *, allow_index: bool) -> None:
    """No temporary leftovers; when the run failed, no index and no downloaded file either."""
    assert leftovers(home) == []
    if not allow_index:
        assert complete_indexes(home) == []
        assert downloaded_files(home) == []
