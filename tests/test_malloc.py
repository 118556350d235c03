"""``import frameseek`` bounds glibc's malloc arenas once, and leaves a user's MALLOC_ARENA_MAX alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from frameseek.system import malloc

PROBE = "import frameseek, frameseek.system.malloc as m; print(m._done)"


def _run(env_extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env_extra
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_import_sets_the_limit_once_unless_the_user_chose() -> None:
    assert _run({}) == "True"
    assert _run({"MALLOC_ARENA_MAX": "4"}) == "False"  # glibc already applied the user's value


def test_second_call_is_a_no_op() -> None:
    malloc.limit_malloc_arenas()  # this process imported frameseek already
    assert malloc.limit_malloc_arenas() is False
