"""Tests for frameseek.models.heads: the projection head's structure, dropout and the identity head."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from frameseek.models.heads import IdentityHead, ProjectionHead, build_head


def _features(n: int = 5, dim: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def test_projection_head_shape_and_parts() -> None:
    head = ProjectionHead(12, 8, dropout=0.1)
    assert head(_features()).shape == (5, 8)
    assert (head.in_dim, head.out_dim) == (12, 8)
    assert head.projection.weight.shape == (8, 12)
    assert head.fc.weight.shape == (8, 8)
    assert head.layer_norm.normalized_shape == (8,)
    # parameters: projection 12·8 + 8, fc 8·8 + 8, LayerNorm 2·8
    assert sum(p.numel() for p in head.parameters()) == 12 * 8 + 8 + 8 * 8 + 8 + 2 * 8


def test_zeroed_fc_leaves_layernorm_of_projection() -> None:
    # With fc = 0 the residual branch adds nothing: output = LayerNorm(projection(x)).
    head = ProjectionHead(12, 8, dropout=0.0).eval()
    with torch.no_grad():
        head.fc.weight.zero_()
        head.fc.bias.zero_()
    x = _features()
    expected = F.layer_norm(head.projection(x), (8,), head.layer_norm.weight, head.layer_norm.bias)
    torch.testing.assert_close(head(x), expected)


def test_residual_structure_matches_manual_forward() -> None:
    head = ProjectionHead(12, 8, dropout=0.0).eval()
    x = _features()
    projected = x @ head.projection.weight.T + head.projection.bias
    hidden = F.gelu(projected) @ head.fc.weight.T + head.fc.bias
    expected = head.layer_norm(hidden + projected)
    torch.testing.assert_close(head(x), expected)
    # LayerNorm output: zero mean, unit variance per row (default affine is the identity)
    out = head(x)
    torch.testing.assert_close(out.mean(dim=-1), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(dim=-1, unbiased=False), torch.ones(5), atol=1e-3, rtol=0)


def test_dropout_only_in_train_mode() -> None:
    head = ProjectionHead(12, 8, dropout=0.5, input_dropout=0.5)
    x = _features()
    head.eval()
    torch.testing.assert_close(head(x), head(x))
    head.train()
    torch.manual_seed(0)
    first = head(x)
    torch.manual_seed(1)
    second = head(x)
    assert not torch.allclose(first, second)


def test_dropout_zero_is_deterministic_in_train_mode() -> None:
    head = ProjectionHead(12, 8, dropout=0.0, input_dropout=0.0).train()
    x = _features()
    torch.testing.assert_close(head(x), head(x))


def test_identity_head() -> None:
    head = IdentityHead(8)
    x = _features(dim=8)
    assert head(x) is x
    assert (head.in_dim, head.out_dim) == (8, 8)
    assert list(head.parameters()) == []


def test_build_head() -> None:
    projection = build_head("projection", 12, 8, dropout=0.2, input_dropout=0.1)
    assert isinstance(projection, ProjectionHead)
    assert isinstance(projection.dropout, nn.Dropout) and projection.dropout.p == 0.2
    assert projection.input_dropout.p == 0.1
    assert isinstance(build_head("none", 8, 8, dropout=0.0, input_dropout=0.0), IdentityHead)


def test_build_head_errors() -> None:
    with pytest.raises(ValueError, match="unknown head kind"):
        build_head("mlp", 12, 8, dropout=0.0, input_dropout=0.0)
    with pytest.raises(ValueError, match="12 != 8"):
        build_head("none", 12, 8, dropout=0.0, input_dropout=0.0)
