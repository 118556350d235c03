"""Under CI (``CI=true``), a skip whose reason is not on conftest.py's allow-list fails the run.

Each test writes a tiny test file beside a copy of the repository's conftest.py and runs pytest on it in a
subprocess, with and without CI=true.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

SAMPLE = """
import pytest

def test_passes():
    assert 1 + 1 == 2

def test_skips_for_a_missing_video():
    pytest.skip("sample video /nowhere/bikes.mp4 is not available")

@pytest.mark.skipif(True, reason="shared Flickr8k data not available")
def test_skipped_by_a_mark_for_missing_data():
    pass

@pytest.fixture
def data():
    pytest.skip("shared data folder not found")

def test_skipped_by_a_fixture(data):
    pass

def test_skips_without_cuda():
    pytest.skip("no CUDA: needs a GPU")

@pytest.mark.skipif(True, reason="a CUDA GPU is there")
def test_skipped_when_a_gpu_is_there():
    pass

def test_skips_for_the_hub_cache():
    pytest.skip("CLIP ViT-B/32 is in the local hub cache")

@pytest.mark.xfail(strict=True, reason="a known bug")
def test_known_bug():
    assert False
"""


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    shutil.copy(REPO_ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SAMPLE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _outcomes(out: str) -> dict[str, str]:
    """test name -> PASSED / FAILED / ERROR / SKIPPED / XFAIL, from pytest's verbose lines."""
    found: dict[str, str] = {}
    for match in re.finditer(r"test_sample\.py::(\w+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL)", out):
        found.setdefault(match[1], match[2])
    return found


def test_a_skip_for_a_missing_input_fails_the_run_under_ci(tmp_path: Path) -> None:
    proc = _run(tmp_path, "true")
    outcomes = _outcomes(proc.stdout)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert outcomes["test_passes"] == "PASSED"
    for name in (
        "test_skips_for_a_missing_video",
        "test_skipped_by_a_mark_for_missing_data",
        "test_skipped_by_a_fixture",
    ):
        assert outcomes[name] in {"FAILED", "ERROR"}, (name, proc.stdout[-3000:])
    assert "not on tests/conftest.py's CI_ALLOWED_SKIPS: sample video /nowhere/bikes.mp4" in proc.stdout


def test_a_skip_on_the_allow_list_stays_a_skip_under_ci(tmp_path: Path) -> None:
    outcomes = _outcomes(_run(tmp_path, "true").stdout)
    assert outcomes["test_skips_without_cuda"] == "SKIPPED"
    assert outcomes["test_skipped_when_a_gpu_is_there"] == "SKIPPED"
    assert outcomes["test_skips_for_the_hub_cache"] == "SKIPPED"
    assert outcomes["test_known_bug"] == "XFAIL"


def test_every_skip_stays_a_skip_outside_ci(tmp_path: Path) -> None:
    proc = _run(tmp_path, None)
    outcomes = _outcomes(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-3000:]
    skipped = [n for n, o in outcomes.items() if o == "SKIPPED"]
    assert len(skipped) == 6, outcomes
