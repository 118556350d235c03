"""``--device``: resolving it, one clear error for a device that is not there, a model placed on a device
without building its deferred backbones, and GPU decoding falling back to the CPU decoder.

This machine has no GPU (a CPU torch wheel): the tests that need one not to be there skip where it is.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from av.codec.hwaccel import HWAccel

from frameseek.errors import InputError
from frameseek.indexing.reader import FrameReader
from frameseek.lab.training import training_device
from frameseek.models.factory import create_model
from frameseek.models.registry import packaged_weights
from frameseek.system.devices import GPU_BATCH_SIZE, Device, check_device_spec, resolve_device
from frameseek.video.sampling import Sampling
from videos import require_bikes

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is there")


def test_device_names_resolve() -> None:
    assert resolve_device("cpu") == Device("cpu") and resolve_device(" CPU ").name == "cpu"
    auto = resolve_device("auto")
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert auto == Device("cpu")
    assert Device("cuda", 1).name == "cuda:1" and Device("cuda", 1).is_gpu and not Device("cpu").is_gpu
    assert Device("cpu").batch_size(8) == 8 and Device("cuda").batch_size(8) == GPU_BATCH_SIZE
    assert Device("cpu").decoder_hwaccel() is None
    for bad in ("gpu", "cuda:", "cuda:x", "tpu", ""):
        if bad:
            with pytest.raises(InputError, match="--device must be auto, cpu, cuda, cuda:N or mps"):
                check_device_spec(bad)
    check_device_spec(None)


def test_the_environment_names_the_default_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMESEEK_DEVICE", "cpu")
    assert resolve_device(None) == Device("cpu")
    monkeypatch.setenv("FRAMESEEK_DEVICE", "quantum")
    with pytest.raises(InputError, match="got 'quantum'"):
        resolve_device(None)
    assert resolve_device("cpu") == Device("cpu")  # an explicit --device wins over the variable


@NO_CUDA
def test_a_gpu_that_is_not_there_is_one_clear_error() -> None:
    with pytest.raises(InputError, match="no CUDA GPU is available"):
        resolve_device("cuda")
    with pytest.raises(InputError, match="no CUDA GPU is available"):
        resolve_device("cuda:3")
    with pytest.raises(InputError, match="no CUDA GPU is available"):
        training_device("cuda")
    if not torch.backends.mps.is_available():
        with pytest.raises(InputError, match="MPS"):
            resolve_device("mps")
    assert training_device("cpu") == torch.device("cpu")


def test_a_placed_model_builds_deferred_backbones_on_its_device(fs_home: Path) -> None:
    """``place`` moves what is built; a deferred backbone is built later where the heads are. The meta
    device stands in for a GPU: tensors move there and nothing is computed."""
    if packaged_weights("lite") is None:
        pytest.skip("lite's weights are not installed")
    model = create_model("lite", device="cpu")
    assert model.device == torch.device("cpu") and not model.image_backbone_built
    model.place("meta")
    assert model.device.type == "meta" and next(model.text_head.parameters()).device.type == "meta"
    assert not model.image_backbone_built and not model.text_backbone_built  # still deferred
    backbone = model.load_image_backbone()
    assert {p.device.type for p in backbone.parameters()} == {"meta"}
    assert model.compute_precision == model.precision  # the meta device is no GPU: CPU precision


@pytest.mark.slow
def test_cpu_device_indexes_and_says_how(fs_home: Path) -> None:
    if packaged_weights("lite") is None:
        pytest.skip("lite's weights are not installed")
    from frameseek.search import Searcher

    searcher = Searcher("lite", device="cpu", sampling=Sampling(fps=0.5, end=6.0))
    assert searcher.model.device == torch.device("cpu")
    response = searcher.search(require_bikes(), "a cyclist wearing a helmet", top_k=2)
    assert response.metrics["image_inference"] in ("onnxruntime fp32", "torch fp32", "torch bf16")
    assert response.metrics["frames_encoded"] >= 3


@NO_CUDA
def test_gpu_decoding_falls_back_to_the_cpu_decoder(caplog: pytest.LogCaptureFixture) -> None:
    """FFmpeg here has NVDEC built in but no GPU to open: the file is decoded in software, the same
    frames at the same times, with one warning."""
    video = require_bikes()
    sampling = Sampling(fps=1.0, end=5.0)
    plain = list(FrameReader(sampling, frame_limit=100, max_pixels=10**8)(video))
    with caplog.at_level(logging.WARNING, logger="frameseek.video.decode"):
        reader = FrameReader(
            sampling, frame_limit=100, max_pixels=10**8, hwaccel=HWAccel("cuda", allow_software_fallback=True)
        )
        fallback = list(reader(video))
    assert [f.time for f in fallback] == [f.time for f in plain] and len(plain) == 5
    assert all((a.image == b.image).all() for a, b in zip(plain, fallback, strict=True))
    warnings = [r.getMessage() for r in caplog.records if "decoding on the CPU" in r.getMessage()]
    assert len(warnings) <= 1  # once per process (an earlier test may have warned already)


@NO_CUDA
@pytest.mark.parametrize(
    "args",
    [
        ["search", "VIDEO", "a dog", "--device", "cuda"],
        ["index", "VIDEO", "--device", "cuda:1"],
        ["eval", "--dataset", "msrvtt", "--data", ".", "--device", "cuda"],
        ["train", "--data", ".", "--out", "OUT", "--device", "cuda", "--epochs", "1"],
        ["serve", "--device", "cuda"],
        ["app", "--device", "cuda"],
        ["search", "VIDEO", "a dog", "--device", "tpu"],
    ],
)
def test_the_commands_refuse_a_missing_device_in_one_line(args: list[str], tmp_path: Path) -> None:
    video = str(require_bikes())
    env = {**os.environ, "FRAMESEEK_HOME": str(tmp_path)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "frameseek.cli",
            *[{"VIDEO": video, "OUT": str(tmp_path / "run")}.get(a, a) for a in args],
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: --device"), proc.stderr
    assert ("no CUDA GPU" in lines[0]) or ("must be auto" in lines[0])
