"""Every benchmark runs end to end in its smoke mode (tiny sizes, one round), each in its own process with
a scratch FRAMESEEK_HOME and FRAMESEEK_BENCH_DIR: a benchmark that breaks fails here, not in BENCHMARKS.md.

The numbers a smoke run prints mean nothing; only that it finishes (exit 0, one JSON object) is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH = REPO_ROOT / "benchmarks"

SMOKE_ARGS: dict[str, list[str]] = {
    "app_first_search": ["--rounds", "1"],
    "breakdown": ["--models", "lite", "--seconds", "4"],
    "calibration": [],
    "calibration_variants": [],
    "decode_limit": ["--seconds", "4", "--agreement-resolutions", "360p"],
    "encoder_throughput": ["--models", "lite", "--batches", "1,2", "--threads", "1", "--multi-thread-batches", "1"],
    "first_results": ["--minutes", "0.1"],
    "gpu": [],
    "index_speed": ["--models", "lite", "--resolutions", "360p", "--seconds", "4"],
    "memory_vs_length": ["--minutes", "1"],
    "moment_queries": [],
    "multilingual": [],
    "quality": [],
    # 1000 frames exercise the end-to-end part that crashed at --sizes 1000000 (issue 23, item 5)
    "query_latency": ["--sizes", "1000", "--queries", "5"],
    "repeat_query": ["--runs", "1"],
    "scale": [
        "--frames", "20000", "--dim", "64", "--queries", "5", "--truth-queries", "5", "--cold-queries", "5",
        "--commit-every", "10000", "--nprobes", "8", "--candidates", "100",
    ],
    "text_tracks": ["--seconds", "6", "--every", "4"],
    "tracks_speed": [],
}  # fmt: skip
"""Arguments of each benchmark's smoke run (``--smoke --json`` is added); every script is listed."""

NO_JSON = {"run_all"}
"""Scripts whose smoke mode prints markdown, not JSON (run_all renders BENCHMARKS.md to stdout)."""

NEEDS_CUDA = {"gpu"}
"""The allow-list of benchmarks that skip on a machine without CUDA (nothing else may skip)."""

HELPERS = {"common", "baseline_original"}
"""Modules the benchmarks import; not scripts."""


def _scripts() -> list[str]:
    return sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in HELPERS)


def test_every_benchmark_script_has_smoke_arguments() -> None:
    """A new benchmark must be added to SMOKE_ARGS (or NO_JSON), so it is smoke-tested too."""
    assert _scripts(), "no benchmark scripts found"
    assert set(_scripts()) == set(SMOKE_ARGS) | NO_JSON


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.slow
@pytest.mark.parametrize("name", _scripts())
def test_benchmark_runs_in_its_smoke_mode(name: str, tmp_path: Path, _joined_mpnet: Path | None) -> None:
    """``python benchmarks/<name>.py --smoke --json`` exits 0 and prints one JSON object."""
    if name in NEEDS_CUDA and not _cuda_available():
        pytest.skip("no CUDA: the GPU benchmark needs a GPU")
    home = tmp_path / "home"
    if _joined_mpnet is not None:  # the 419 MB packaged mpnet, joined once per session (conftest.py)
        (home / "models").mkdir(parents=True)
        (home / "models" / _joined_mpnet.name).symlink_to(_joined_mpnet, target_is_directory=True)
    env = {
        **os.environ,
        "FRAMESEEK_HOME": str(home),
        "FRAMESEEK_BENCH_DIR": str(tmp_path / "bench"),
        "PYTHONUNBUFFERED": "1",
    }
    json_flag = [] if name in NO_JSON else ["--json"]
    cmd = [sys.executable, str(BENCH / f"{name}.py"), "--smoke", *json_flag, *SMOKE_ARGS.get(name, [])]
    proc = subprocess.run(
        cmd, cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, f"{' '.join(cmd[1:])} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    out = proc.stdout.strip()
    if name in NO_JSON:
        assert out.startswith("#"), out[:500]
        return
    result = json.loads(out.splitlines()[-1])
    assert isinstance(result, dict)
    assert result.get("benchmark", name) == name
