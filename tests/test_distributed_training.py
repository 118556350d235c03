"""Data-parallel training: 2 CPU processes (gloo, through the real launchers) match 1 process on the same
global batches, only rank 0 writes files, and a run resumes with N processes.

Stage 1 runs ``frameseek train --nproc 2`` (torchrun's agent, started from the CLI in-process), stage 2
resumes it with ``torchrun --nproc-per-node 2 -m frameseek train --resume`` (a subprocess). Each is compared
with one process (in-process ``Trainer``) on the same config. Which process wrote what is recorded by an
audit hook that a ``sitecustomize`` on PYTHONPATH installs in every launched interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from conftest import WORDS, TinyHubModels
from frameseek.cli import main
from frameseek.errors import InputError
from frameseek.lab import distributed
from frameseek.lab.losses import build_loss
from frameseek.lab.training import TrainConfig, Trainer
from frameseek.models.dual_encoder import DualEncoder

N_TRAIN, N_DEV, HOLDOUT, CAPTIONS = 36, 8, 6, 2
TOLERANCE = 1e-4  # float32 weights after a few Adam steps at lr 1e-2 (differences are rounding only)

AUDIT_HOOK = """
import os, sys

def _audit(event, args):
    watched = [p for p in os.environ.get("FS_AUDIT_DIRS", "").split(os.pathsep) if p]
    log = os.environ.get("FS_AUDIT_LOG")
    if not watched or not log:
        return
    if event == "open":
        path, mode, flags = args
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND)
        )
        paths = [path] if writes else []
    elif event in ("os.rename", "os.mkdir", "os.remove", "os.rmdir", "os.symlink", "os.link"):
        paths = [args[0]] + ([args[1]] if event == "os.rename" else [])
    else:
        return
    for path in paths:
        if isinstance(path, (str, bytes, os.PathLike)):
            real = os.path.realpath(os.fsdecode(path))
            if any(real == w or real.startswith(w + os.sep) for w in watched):
                with open(log, "a", encoding="utf-8") as handle:
                    handle.write(f"{os.environ.get('RANK', 'launcher')} {event} {real}\\n")

sys.addaudithook(_audit)
"""


@pytest.fixture(autouse=True)
def restore_torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _synthetic_flickr(root: Path) -> Path:
    """A Flickr8k-layout folder of small generated images, each with captions in the tiny vocabulary."""
    rng = np.random.default_rng(0)
    colours = ["red", "blue", "black", "white", "brown", "green", "yellow"]
    things = ["dog", "cat", "man", "woman", "boy", "girl", "ball", "bike", "car"]
    places = ["grass", "water", "beach", "snow", "street", "field", "park", "rock"]
    assert set(colours + things + places) <= set(WORDS)
    (root / "images").mkdir(parents=True)
    names, lines = [], ["image,caption"]
    for i in range(N_TRAIN + N_DEV):
        name = f"{i:03d}.png"
        pixels = rng.integers(0, 256, size=(3, 3, 3), dtype=np.uint8).repeat(16, 0).repeat(16, 1)
        Image.fromarray(pixels).save(root / "images" / name)
        names.append(name)
        for _ in range(CAPTIONS):
            colour, thing, place = rng.choice(colours), rng.choice(things), rng.choice(places)
            lines.append(f"{name},a {colour} {thing} on the {place}")
    (root / "captions.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "Flickr_8k.trainImages.txt").write_text("\n".join(names[:N_TRAIN]) + "\n", encoding="utf-8")
    (root / "Flickr_8k.devImages.txt").write_text("\n".join(names[N_TRAIN:]) + "\n", encoding="utf-8")
    return root


def _options(data: Path, model: Path, out: Path, epochs: int, resume: bool = False) -> dict[str, Any]:
    """One run's settings: frozen tiny backbones, no dropout (so 1 and 2 processes can agree), mirrors on
    (every process draws the same views), a batch of 9 splits 5 + 4 (uneven shards), lr high enough that
    the weights move far from where they started."""
    return {
        "data": str(data),
        "out": str(out),
        "model": str(model),
        "mode": "frozen",
        "epochs": epochs,
        "batch_size": 9,
        "lr_heads": 1e-2,
        "holdout_images": HOLDOUT,
        "head_dropout": 0.0,
        "input_dropout": 0.0,
        "seed": 3,
        "threads": 1,
        "resume": resume,
    }


def _cli_args(options: dict[str, Any]) -> list[str]:
    args = ["train"]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args += [flag] if value else []
        else:
            args += [flag, str(value)]
    return args


def _trained_tensors(out: Path) -> dict[str, torch.Tensor]:
    """The trainable state after the last epoch: heads and temperature (from the resume state)."""
    tensors = load_file(str(out / "resume.safetensors"))
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "loss."))}


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def _audit_lines(log: Path) -> list[tuple[str, str, str]]:
    if not log.is_file():
        return []
    return [tuple(line.split(" ", 2)) for line in log.read_text(encoding="utf-8").splitlines()]  # type: ignore[misc]


@pytest.mark.slow
def test_two_processes_match_one_then_resume(
    tmp_path: Path, tiny_hub_models: TinyHubModels, fs_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _synthetic_flickr(tmp_path / "data")
    torch.manual_seed(0)
    model = DualEncoder.from_config(tiny_hub_models.dual_config(embed_dim=16)).save_pretrained(
        tmp_path / "tiny-start"
    )
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(AUDIT_HOOK, encoding="utf-8")
    audit_log = tmp_path / "audit.log"
    parallel, single = tmp_path / "two", tmp_path / "one"
    parallel.mkdir()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("FS_AUDIT_DIRS", os.pathsep.join(os.path.realpath(p) for p in (parallel, fs_home)))
    monkeypatch.setenv("FS_AUDIT_LOG", str(audit_log))

    # ---- stage 1: `frameseek train --nproc 2`; rank 0 caches the features (fresh FRAMESEEK_HOME)
    with pytest.raises(SystemExit) as done:
        main([*_cli_args(_options(data, model, parallel, epochs=2)), "--nproc", "2", "--json"])
    assert done.value.code in (0, None)
    Trainer(TrainConfig(**_options(data, model, single, epochs=2))).run()

    difference = _max_difference(_trained_tensors(parallel), _trained_tensors(single))
    print(f"max |w(2 processes) - w(1 process)| after 2 epochs: {difference:.3g}")
    assert difference < TOLERANCE
    start = DualEncoder.from_pretrained(model).state_dict()
    trained = {
        k.removeprefix("model."): v for k, v in _trained_tensors(single).items() if k.startswith("model.")
    }
    moved = max(float((start[k] - v).abs().max()) for k, v in trained.items())
    print(f"max |w(trained) - w(start)|: {moved:.3g}")
    assert moved > 100 * TOLERANCE  # the comparison is not between two barely trained models

    history = json.loads((parallel / "log.json").read_text())
    reference = json.loads((single / "log.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    for row, ref in zip(history, reference, strict=True):
        assert row["train_loss"] == pytest.approx(ref["train_loss"], abs=1e-4)
        assert row["train-holdout_R@1"] == ref["train-holdout_R@1"]
    report = json.loads((parallel / "report.json").read_text())
    assert report["processes"] == 2 and report["best_epoch"] in (1, 2)
    assert report["evaluation"]["images"] == N_DEV

    # only rank 0 wrote: the run folder and the feature cache
    lines = _audit_lines(audit_log)
    assert {rank for rank, _, _ in lines} == {"0"}, [line for line in lines if line[0] != "0"]
    written = {Path(path).name for _, _, path in lines}
    assert {"report.json", "log.json", "resume.json", "curves.png"} <= written
    assert any(path.startswith(os.path.realpath(fs_home)) for _, _, path in lines)  # the features
    assert not [p for p in parallel.rglob("*") if p.name.startswith(".")]  # no temporaries left behind

    # ---- stage 2: resume to epoch 3 under torchrun itself
    audit_log.unlink()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command += ["-m", "frameseek", *_cli_args(_options(data, model, parallel, epochs=3, resume=True))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    Trainer(TrainConfig(**_options(data, model, single, epochs=3, resume=True))).run()

    assert json.loads((parallel / "resume.json").read_text())["epoch"] == 3
    assert [row["epoch"] for row in json.loads((parallel / "log.json").read_text())] == [1, 2, 3]
    difference = _max_difference(_trained_tensors(parallel), _trained_tensors(single))
    print(f"max |w(2 processes) - w(1 process)| after resuming to epoch 3: {difference:.3g}")
    assert difference < TOLERANCE
    lines = _audit_lines(audit_log)
    assert lines and {rank for rank, _, _ in lines} == {"0"}, [line for line in lines if line[0] != "0"]


@pytest.mark.slow
@pytest.mark.usefixtures("fs_home")
def test_one_process_installs_its_checkpoint_and_prints_its_tables(
    tmp_path: Path, tiny_hub_models: TinyHubModels, fs_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the train command's ending, shared by one process, --nproc and torchrun's rank 0 (_finish_training)
    data = _synthetic_flickr(tmp_path / "data")
    model = DualEncoder.from_config(tiny_hub_models.dual_config(embed_dim=16)).save_pretrained(tmp_path / "m")
    installed = tmp_path / "installed"
    installed.mkdir()
    (installed / "MODEL_CARD.md").write_text("card", encoding="utf-8")
    with pytest.raises(SystemExit) as done:
        main([*_cli_args(_options(data, model, tmp_path / "out", epochs=1)), "--install-as", str(installed)])
    assert done.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "best epoch 1 of 1" in printed and printed.count("R@1") >= 2, printed
    assert (installed / "MODEL_CARD.md").read_text(encoding="utf-8") == "card"
    best = tmp_path / "out" / "best"
    assert sorted(f.name for f in installed.iterdir()) == sorted(
        [*(f.name for f in best.iterdir()), "MODEL_CARD.md"]
    )
    assert all((installed / f.name).read_bytes() == f.read_bytes() for f in best.iterdir() if f.is_file())


def test_worker_errors_come_back_as_one_line(tmp_path: Path, tiny_hub_models: TinyHubModels) -> None:
    # a user error in the workers (too many holdout images) is the launcher's error, with its exit code
    data = _synthetic_flickr(tmp_path / "data")
    torch.manual_seed(0)
    model = DualEncoder.from_config(tiny_hub_models.dual_config(embed_dim=16)).save_pretrained(
        tmp_path / "tiny-start"
    )
    from frameseek.lab.training import launch_training

    config = TrainConfig(**{**_options(data, model, tmp_path / "out", epochs=1), "holdout_images": 10_000})
    with pytest.raises(distributed.WorkerError, match="holdout_images must be between") as failed:
        launch_training(config, nproc=2, progress=False)
    assert failed.value.exit_code == 2


def test_a_worker_stopped_after_writing_its_error_keeps_the_errors_exit_code(tmp_path: Path) -> None:
    # both workers hit the same user error; the agent stopped rank 0 (SIGTERM) while it was exiting, after
    # it had written its error file: the launcher's error is still the user error with its exit code (2)
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    def error_file(rank: int, payload: dict[str, Any]) -> str:
        path = tmp_path / f"error-{rank}.json"
        path.write_text(json.dumps(payload), encoding="utf-8")
        return str(path)

    message = "holdout_images must be between 1 and 35, got 10000"
    ours = {"message": message, "timestamp": 100, "exit_code": 2}
    stopped = ProcessFailure(local_rank=0, pid=10, exitcode=-15, error_file=error_file(0, ours))
    exited = ProcessFailure(local_rank=1, pid=11, exitcode=2, error_file=error_file(1, ours))
    error = distributed.worker_error(ChildFailedError("train", {0: stopped, 1: exited}), nproc=2)
    assert (str(error), error.exit_code) == (f"worker 0 of 2 failed: {message}", 2)

    # a worker that died without our error file (a crash, a kill): torch's first failure, exit code ≥ 1
    crashed = ProcessFailure(local_rank=0, pid=12, exitcode=-9, error_file=str(tmp_path / "none.json"))
    error = distributed.worker_error(ChildFailedError("train", {0: crashed}), nproc=2)
    assert str(error).startswith("worker 0 of 2 failed: ") and "SIGKILL" in str(error)
    assert error.exit_code == 1


def _loss_worker(sizes: list[int]) -> dict[str, dict[str, Any]]:
    """One rank: both losses on its rows through the real gloo gather; what DDP would see, gathered."""
    assert distributed.init()
    world, rank = distributed.world_size(), distributed.rank()
    images, texts = _pairs(sum(sizes))
    rows = distributed.shard(sum(sizes), world, rank)
    found: dict[str, dict[str, Any]] = {}
    for name, known in (("infonce", sizes), ("soft", None)):  # row counts given / exchanged
        loss_fn = build_loss(name, temperature=0.3).double()
        image, text = images[rows].clone().requires_grad_(), texts[rows].clone().requires_grad_()
        loss = loss_fn(image, text, gather=distributed.RowGather(known))
        (loss / world).backward()  # DDP averages the gradients over the processes
        (param,) = loss_fn.parameters()
        assert image.grad is not None and text.grad is not None and param.grad is not None
        found[name] = {
            "loss": distributed.all_reduce_sum(loss.item()) / world,
            "image_grad": distributed.gather_with_grad(image.grad, sizes),
            "text_grad": distributed.gather_with_grad(text.grad, sizes),
            "param_grad": distributed.all_reduce_sum(param.grad.item()),
        }
    distributed.barrier()  # both ranks done before either leaves the group (else gloo may abort the other)
    distributed.cleanup()
    return found


def _pairs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(11)
    images = torch.nn.functional.normalize(torch.randn(n, 6, generator=gen, dtype=torch.float64), dim=-1)
    texts = torch.nn.functional.normalize(torch.randn(n, 6, generator=gen, dtype=torch.float64), dim=-1)
    return images, texts


@pytest.mark.slow
def test_gloo_gather_gives_the_global_loss_and_gradients() -> None:
    # uneven shards (3 + 2 rows): the padded all_gather, the summed backward, the second (log-norm)
    # gather of the soft loss and the exchanged row counts, on a real 2-process gloo group
    sizes = [3, 2]
    found = distributed.launch(2, _loss_worker, sizes)
    images, texts = _pairs(sum(sizes))
    assert set(found) == {"infonce", "soft"}
    for name, result in found.items():
        loss_fn = build_loss(name, temperature=0.3).double()
        image, text = images.clone().requires_grad_(), texts.clone().requires_grad_()
        loss = loss_fn(image, text)
        loss.backward()
        (param,) = loss_fn.parameters()
        assert result["loss"] == pytest.approx(loss.item(), rel=1e-12), name
        torch.testing.assert_close(result["image_grad"], image.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(result["text_grad"], text.grad, rtol=1e-10, atol=1e-12)
        assert result["param_grad"] == pytest.approx(param.grad.item(), rel=1e-10), name


def _aborts_at_teardown(value: int) -> int:
    """A worker whose work is done but whose interpreter teardown aborts, as gloo's threads can make it."""
    import atexit

    atexit.register(os.abort)  # runs after anything registered later: only if the process tears down
    return value * 2


def _returns_what_does_not_pickle(value: int) -> Any:
    return lambda: value


@pytest.mark.slow
def test_a_finished_worker_leaves_before_the_interpreters_teardown() -> None:
    # the result is handed over, then the teardown would abort (SIGABRT): the launch still succeeds
    assert distributed.launch(2, _aborts_at_teardown, 21) == 42
    # a result the agent cannot hand over is still a failure (no silent exit 0 without a result)
    with pytest.raises(distributed.WorkerError, match=r"worker \d of 2 failed"):
        distributed.launch(2, _returns_what_does_not_pickle, 1)


_UNDER_TORCHRUN = """
import atexit, os, sys
from frameseek.lab import distributed
if sys.argv[1] == "finish":
    atexit.register(os.abort)  # a teardown that aborts, as gloo's threads can make it (runs last)
with distributed.exit_without_teardown():
    if sys.argv[1] == "fail":
        sys.exit(3)  # not registered: exits 3 (it would abort too with the hazard above)
"""


@pytest.mark.parametrize(
    ("env", "outcome", "code"),
    [
        ({"WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "r"}, "finish", 0),  # leaves before the teardown
        ({"WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "r"}, "fail", 3),  # a failure keeps its own status
        ({}, "finish", -6),  # not one of torchrun's processes: left alone (the teardown aborts here)
    ],
)
def test_a_torchrun_process_that_finished_leaves_before_the_teardown(
    env: dict[str, str], outcome: str, code: int
) -> None:
    clean = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "TORCHELASTIC_RUN_ID")}
    done = subprocess.run(
        [sys.executable, "-c", _UNDER_TORCHRUN, outcome],
        env={**clean, **env},
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr.decode()[-2000:]


def test_shards_cover_the_batch_in_order() -> None:
    for n in range(2, 12):
        for world in (1, 2, 3, 4):
            slices = [distributed.shard(n, world, r) for r in range(world)]
            rows = [i for s in slices for i in range(n)[s]]
            assert rows == list(range(n))
            sizes = distributed.shard_sizes(n, world)
            assert [len(range(n)[s]) for s in slices] == sizes
            assert max(sizes) - min(sizes) <= 1


def test_helpers_alone_are_no_ops() -> None:
    assert not distributed.is_initialized()
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    assert distributed.all_reduce_sum(2.5) == 2.5
    distributed.barrier()
    x = torch.randn(3, 2)
    assert distributed.gather_with_grad(x) is x
    with distributed.session() as active:
        assert not active
    assert distributed.backend_for("cpu") == "gloo" and distributed.backend_for("cuda:1") == "nccl"


def test_nproc_inside_a_launch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert distributed.launched() and not distributed.is_main()
    with pytest.raises(InputError, match="already one of several"):
        distributed.launch(2, print)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is there")
def test_a_missing_or_unknown_training_device_is_refused_first(tmp_path: Path) -> None:
    """Before any data is read (the data folder here is empty)."""
    with pytest.raises(InputError, match="no CUDA GPU is available"):
        Trainer(TrainConfig(data=str(tmp_path), out=str(tmp_path / "out"), device="cuda"))
    with pytest.raises(InputError, match="--device must be auto, cpu, cuda, cuda:N or mps"):
        Trainer(TrainConfig(data=str(tmp_path), out=str(tmp_path / "out"), device="toaster"))
