"""Tests for frameseek.lab.losses against values worked out by hand on 2 images × 2 texts in 2-d."""

from __future__ import annotations

import copy
import itertools
import math
import threading
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from frameseek.lab.losses import InfoNCELoss, SoftTargetLoss, build_loss


def lse(*xs: float) -> float:
    """log(sum(exp(x))) written out, so expected values never go through torch."""
    return math.log(sum(math.exp(x) for x in xs))


def t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# ---------------------------------------------------------------------------------- SoftTargetLoss


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_soft_target_symmetric_example(temperature: float) -> None:
    # images I0 = (1, 0), I1 = (0, 1); texts T0 = (0.8, 0.6), T1 = (0.6, 0.8); temperature T.
    # logits = text·imageᵀ / T          = [[0.8, 0.6], [0.6, 0.8]] / T
    # image·imageᵀ = [[1, 0], [0, 1]];  text·textᵀ = [[1, 0.96], [0.96, 1]]   (0.8·0.6 + 0.6·0.8 = 0.96)
    # their mean = [[1, 0.48], [0.48, 1]]; targets = softmax(mean · T) by row:
    #   row 0 = (a, b) with a = e^T / (e^T + e^0.48T) = 1 / (1 + e^(-0.52 T)), b = 1 - a;  row 1 = (b, a)
    # texts→images, row 0: CE = -(a·log_softmax₀ + b·log_softmax₁) = lse(0.8/T, 0.6/T) - (0.8a + 0.6b)/T
    # row 1 is the mirror image (logits (0.6, 0.8)/T, targets (b, a)): the same value.
    # logits and targets are symmetric, so images→texts gives the same rows; the mean is that value.
    T = temperature
    a = 1 / (1 + math.exp(-0.52 * T))
    b = 1 - a
    expected = lse(0.8 / T, 0.6 / T) - (0.8 * a + 0.6 * b) / T
    images = t([[1.0, 0.0], [0.0, 1.0]])
    texts = t([[0.8, 0.6], [0.6, 0.8]])
    loss = SoftTargetLoss(temperature=T).double()(images, texts)
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_soft_target_asymmetric_example_uses_both_directions() -> None:
    # images I0 = (1, 0), I1 = (0.6, 0.8); texts T0 = (1, 0), T1 = (0, 1); T = 1.
    # logits[t][i] = t·i = [[1, 0.6], [0, 0.8]]      logitsᵀ = [[1, 0], [0.6, 0.8]]
    # image·imageᵀ = [[1, 0.6], [0.6, 1]]; text·textᵀ = I; mean = [[1, 0.3], [0.3, 1]]
    # targets: row 0 = (p, q), p = 1 / (1 + e^(-0.7)), q = 1 - p; row 1 = (q, p)   (symmetric: targetsᵀ = targets)
    # texts→images:  row 0 logits (1, 0.6),  targets (p, q): lse(1, 0.6) - (p·1 + q·0.6)
    #                row 1 logits (0, 0.8),  targets (q, p): lse(0, 0.8) - (q·0 + p·0.8)
    # images→texts:  row 0 logits (1, 0),    targets (p, q): lse(1, 0) - p
    #                row 1 logits (0.6, 0.8), targets (q, p): lse(0.6, 0.8) - (q·0.6 + p·0.8)
    # loss = mean over rows of (images + texts) / 2 = (sum of the four) / 4
    p = 1 / (1 + math.exp(-0.7))
    q = 1 - p
    text_rows = [lse(1, 0.6) - (p + 0.6 * q), lse(0, 0.8) - 0.8 * p]
    image_rows = [lse(1, 0) - p, lse(0.6, 0.8) - (0.6 * q + 0.8 * p)]
    expected = (sum(text_rows) + sum(image_rows)) / 4
    images = t([[1.0, 0.0], [0.6, 0.8]])
    texts = t([[1.0, 0.0], [0.0, 1.0]])
    loss = SoftTargetLoss(temperature=1.0).double()(images, texts)
    assert loss.item() == pytest.approx(expected, rel=1e-9)
    # the two directions differ here, so a wrong transpose would change the value
    assert text_rows != pytest.approx(image_rows)


def test_soft_target_gradient_reaches_temperature() -> None:
    loss_fn = SoftTargetLoss(temperature=1.0)
    images = F.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    texts = F.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(1)), dim=-1)
    loss_fn(images, texts).backward()
    grad = loss_fn.log_temperature.grad
    assert grad is not None and torch.isfinite(grad) and grad.abs().item() > 0
    assert loss_fn.temperature.item() == pytest.approx(1.0)


def test_soft_target_fixed_temperature_is_not_trainable() -> None:
    loss_fn = SoftTargetLoss(temperature=0.5, learnable=False)
    assert not loss_fn.log_temperature.requires_grad
    assert loss_fn.temperature.item() == pytest.approx(0.5)


# ---------------------------------------------------------------------------------- InfoNCELoss


@pytest.mark.parametrize("scale", [1.0, 10.0, 1 / 0.07])
def test_infonce_hand_worked(scale: float) -> None:
    # images I0 = (1, 0), I1 = (0, 1); texts T0 = (1, 0), T1 = (0.6, 0.8); logit scale s.
    # image·textᵀ = [[1, 0.6], [0, 0.8]], logits = s × that; the right pair sits on the diagonal.
    # images→texts: row 0 = (s, 0.6s), label 0: lse - s    = log(1 + e^(-0.4s))
    #               row 1 = (0, 0.8s), label 1: lse - 0.8s = log(1 + e^(-0.8s))
    # texts→images: column 0 = (s, 0),       label 0: log(1 + e^(-s))
    #               column 1 = (0.6s, 0.8s), label 1: log(1 + e^(-0.2s))
    # loss = (mean of the images→texts rows + mean of the texts→images rows) / 2
    loss_fn = InfoNCELoss(init_scale=scale).double()
    assert loss_fn.scale.item() == pytest.approx(scale, rel=1e-6)
    s = loss_fn.scale.item()  # log(scale) is stored as a float32 parameter: use the value in use
    image_to_text = (math.log(1 + math.exp(-0.4 * s)) + math.log(1 + math.exp(-0.8 * s))) / 2
    text_to_image = (math.log(1 + math.exp(-s)) + math.log(1 + math.exp(-0.2 * s))) / 2
    expected = (image_to_text + text_to_image) / 2
    images = t([[1.0, 0.0], [0.0, 1.0]])
    texts = t([[1.0, 0.0], [0.6, 0.8]])
    assert loss_fn(images, texts).item() == pytest.approx(expected, rel=1e-9)


def test_infonce_scale_is_clamped() -> None:
    # init 1000 > max 100: the scale in use is 100, so the identical-pair example gives
    # per row log(1 + e^(-100·(1 - 0))) ≈ e^-100 for 2 orthogonal pairs.
    loss_fn = InfoNCELoss(init_scale=1000.0, max_scale=100.0)
    assert loss_fn.scale.item() == pytest.approx(100.0)
    eye = torch.eye(2)
    assert loss_fn(eye, eye).item() == pytest.approx(math.log(1 + math.exp(-100.0)), abs=1e-12)


def test_infonce_symmetric_in_its_arguments() -> None:
    gen = torch.Generator().manual_seed(0)
    images = F.normalize(torch.randn(6, 5, generator=gen), dim=-1)
    texts = F.normalize(torch.randn(6, 5, generator=gen), dim=-1)
    loss_fn = InfoNCELoss(init_scale=7.0)
    assert loss_fn(images, texts).item() == pytest.approx(loss_fn(texts, images).item(), rel=1e-6)


def test_infonce_gradient_reaches_logit_scale() -> None:
    gen = torch.Generator().manual_seed(0)
    images = F.normalize(torch.randn(4, 8, generator=gen), dim=-1)
    texts = F.normalize(torch.randn(4, 8, generator=gen), dim=-1)
    loss_fn = InfoNCELoss()
    loss_fn(images, texts).backward()
    grad = loss_fn.logit_scale.grad
    assert grad is not None and torch.isfinite(grad) and grad.abs().item() > 0


@pytest.mark.parametrize("name", ["infonce", "soft"])
def test_perfect_alignment_beats_shuffled(name: str) -> None:
    gen = torch.Generator().manual_seed(3)
    emb = F.normalize(torch.randn(8, 16, generator=gen), dim=-1)
    shuffled = emb[torch.tensor([1, 2, 3, 4, 5, 6, 7, 0])]  # every text paired with a wrong image
    loss_fn = build_loss(name)
    assert loss_fn(emb, emb).item() < loss_fn(emb, shuffled).item()


# ---------------------------------------------------------------------------------- build_loss


def test_build_loss() -> None:
    infonce = build_loss("infonce", temperature=0.05)
    assert isinstance(infonce, InfoNCELoss)
    assert infonce.scale.item() == pytest.approx(20.0)
    soft = build_loss("soft", temperature=2.0)
    assert isinstance(soft, SoftTargetLoss)
    assert soft.temperature.item() == pytest.approx(2.0)
    assert isinstance(build_loss("infonce"), InfoNCELoss)
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss("triplet")


# ---------------------------------------------------------------------------------- gathered (data parallel)


class _ThreadGroup:
    """N "ranks" as threads of one process: exchange() is an all_gather through a barrier."""

    def __init__(self, world: int):
        self.world = world
        self.barrier = threading.Barrier(world, timeout=30)
        self.slots: list[torch.Tensor | None] = [None] * world

    def exchange(self, rank: int, tensor: torch.Tensor) -> list[torch.Tensor]:
        self.slots[rank] = tensor
        self.barrier.wait()
        parts = [t for t in self.slots if t is not None]
        self.barrier.wait()  # nobody overwrites a slot before everyone has read it
        return parts


class _ThreadGatherRows(torch.autograd.Function):
    """The same contract as distributed._GatherRows: forward concatenates every rank's rows, backward sums
    the gradient of the concatenation over ranks and returns this rank's rows of it."""

    @staticmethod
    def forward(ctx: Any, local: torch.Tensor, gather: _ThreadGather) -> torch.Tensor:
        parts = gather.group.exchange(gather.rank, local.detach())
        ctx.group, ctx.rank = gather.group, gather.rank
        ctx.sizes = gather.sizes = [len(p) for p in parts]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        total = torch.stack(ctx.group.exchange(ctx.rank, grad)).sum(0)
        start = sum(ctx.sizes[: ctx.rank])
        return total[start : start + ctx.sizes[ctx.rank]], None


class _ThreadGather:
    def __init__(self, group: _ThreadGroup, rank: int):
        self.group, self.rank, self.world_size = group, rank, group.world
        self.sizes: list[int] = []

    def __call__(self, local: torch.Tensor) -> tuple[torch.Tensor, int]:
        gathered = _ThreadGatherRows.apply(local, self)
        return gathered, sum(self.sizes[: self.rank])


def _data_parallel(
    loss_fn: torch.nn.Module, images: torch.Tensor, texts: torch.Tensor, sizes: list[int]
) -> tuple[float, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """What DDP computes with a gathered loss: mean of the ranks' losses, and the gradients — each rank
    back-propagates its loss / N (DDP's averaging) into its own rows and its own copy of the loss."""
    world = len(sizes)
    group = _ThreadGroup(world)
    bounds = np.cumsum([0, *sizes])
    leaves = [
        (images[a:b].clone().requires_grad_(), texts[a:b].clone().requires_grad_())
        for a, b in itertools.pairwise(bounds)
    ]
    copies = [copy.deepcopy(loss_fn) for _ in range(world)]
    losses: list[float] = [0.0] * world
    errors: list[BaseException] = []

    def run(rank: int) -> None:
        try:
            image, text = leaves[rank]
            loss = copies[rank](image, text, gather=_ThreadGather(group, rank))
            (loss / world).backward()
            losses[rank] = loss.item()
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)
            group.barrier.abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(world)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    image_grad = torch.cat([i.grad for i, _ in leaves])  # type: ignore[misc]
    text_grad = torch.cat([t.grad for _, t in leaves])  # type: ignore[misc]
    param_grads = [
        torch.stack([dict(c.named_parameters())[name].grad for c in copies]).sum(0)  # type: ignore[misc]
        for name, _ in loss_fn.named_parameters()
    ]
    return sum(losses) / world, image_grad, text_grad, param_grads


@pytest.mark.parametrize("name", ["infonce", "soft"])
@pytest.mark.parametrize("sizes", [[4, 4], [5, 3, 1], [1, 1]])
def test_gathered_loss_matches_one_process_on_the_global_batch(name: str, sizes: list[int]) -> None:
    # the mean over ranks of the gathered losses is the global loss, and DDP-style gradients (each rank's
    # loss / N, gradients summed over ranks through the gather) are the global loss's gradients, for even
    # and uneven shards.
    gen = torch.Generator().manual_seed(5)
    n = sum(sizes)
    images = F.normalize(torch.randn(n, 6, generator=gen, dtype=torch.float64), dim=-1)
    texts = F.normalize(torch.randn(n, 6, generator=gen, dtype=torch.float64), dim=-1)
    loss_fn = build_loss(name, temperature=0.3).double()

    single = copy.deepcopy(loss_fn)
    image_leaf, text_leaf = images.clone().requires_grad_(), texts.clone().requires_grad_()
    expected = single(image_leaf, text_leaf)
    expected.backward()

    value, image_grad, text_grad, param_grads = _data_parallel(loss_fn, images, texts, sizes)
    assert value == pytest.approx(expected.item(), rel=1e-12)
    torch.testing.assert_close(image_grad, image_leaf.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(text_grad, text_leaf.grad, rtol=1e-10, atol=1e-12)
    for (param_name, param), grad in zip(single.named_parameters(), param_grads, strict=True):
        torch.testing.assert_close(grad, param.grad, rtol=1e-10, atol=1e-12, msg=param_name)


def test_gathered_loss_with_one_rank_is_the_plain_loss() -> None:
    gen = torch.Generator().manual_seed(6)
    images = F.normalize(torch.randn(5, 4, generator=gen), dim=-1)
    texts = F.normalize(torch.randn(5, 4, generator=gen), dim=-1)

    class Alone:
        world_size = 1

        def __call__(self, local: torch.Tensor) -> tuple[torch.Tensor, int]:
            return local, 0

    for name in ("infonce", "soft"):
        loss_fn = build_loss(name)
        plain = loss_fn(images, texts).item()
        assert loss_fn(images, texts, gather=Alone()).item() == pytest.approx(plain, rel=1e-6)
