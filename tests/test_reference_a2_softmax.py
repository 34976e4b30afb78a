"""The a2_softmax reference agrees with PyTorch: softmax with torch.softmax, softmax_backward
with autograd through torch.softmax, on many shapes, dims and dtypes, extremes included."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autograder.course import load_assignment, reference_namespace

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"

SHAPES_AND_DIMS = [
    ((7,), 0), ((7,), -1), ((4, 10), -1), ((4, 10), 0), ((5, 3), 1), ((2, 5, 3), 1),
    ((2, 5, 3), -2), ((2, 5, 3), 0), ((2, 3, 4, 5), 2), ((2, 3, 4, 5), -1), ((3, 1, 4), 1),
]
DTYPES = [torch.float32, torch.float64]


@pytest.fixture(scope="module")
def ref():
    return reference_namespace(load_assignment("a2_softmax", SOLUTIONS))


def _logits(shape, dtype, scale, seed):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=generator, dtype=torch.float64) * scale).to(dtype)


def _tolerance(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-14}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dim", SHAPES_AND_DIMS)
@pytest.mark.parametrize("scale", [1.0, 30.0, 1000.0])
def test_softmax_matches_torch(ref, shape, dim, dtype, scale):
    z = _logits(shape, dtype, scale, seed=len(shape) * 100 + dim)
    got = ref["softmax"](z, dim)
    want = torch.softmax(z, dim)
    assert got.dtype == dtype and got.shape == z.shape
    assert torch.isfinite(got).all()
    # At |z| ~ 1000 in float32 the shift itself rounds (ulp(1000) = 6e-5): compare loosely there.
    tol = {"rtol": 2e-4, "atol": 1e-6} if (dtype == torch.float32 and scale > 100) else _tolerance(dtype)
    torch.testing.assert_close(got, want, **tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_extremes_match_torch(ref, dtype):
    z = torch.tensor([[1000.0, 0.0, -1000.0],
                      [-1000.0, -999.0, -1000.0],
                      [1000.0, 999.0, 1000.0],
                      [1e-3, 2e-3, -1e-3]], dtype=dtype)
    torch.testing.assert_close(ref["softmax"](z), torch.softmax(z, -1), **_tolerance(dtype))
    torch.testing.assert_close(ref["softmax"](z, 0), torch.softmax(z, 0), **_tolerance(dtype))


def test_softmax_rows_of_different_scale(ref):
    generator = torch.Generator().manual_seed(0)
    z = torch.cat([torch.randn(1, 8, generator=generator) * 1e-3,
                   torch.randn(1, 8, generator=generator) * 100 + 500,
                   torch.randn(1, 8, generator=generator) * 100 - 500])
    got = ref["softmax"](z)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.sum(-1), torch.ones(3))
    torch.testing.assert_close(got, torch.softmax(z, -1), rtol=2e-4, atol=1e-6)


def test_softmax_uses_no_builtin(ref):
    from autograder.probes import CallRecorder

    recorder = CallRecorder()
    with recorder:
        ref["softmax"](torch.randn(3, 4), 0)
        ref["softmax_backward"](torch.rand(3, 4), torch.randn(3, 4), 0)
    assert not recorder.names & {"softmax", "log_softmax", "_softmax", "backward", "grad"}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dim", SHAPES_AND_DIMS)
def test_softmax_backward_matches_autograd(ref, shape, dim, dtype):
    z = _logits(shape, dtype, 2.0, seed=len(shape) * 10 + dim).requires_grad_(True)
    g = _logits(shape, dtype, 1.0, seed=len(shape) * 10 + dim + 1000)
    q = torch.softmax(z, dim)
    (want,) = torch.autograd.grad(q, z, g)
    got = ref["softmax_backward"](q.detach(), g, dim)
    assert got.dtype == dtype and got.shape == z.shape
    torch.testing.assert_close(got, want, **_tolerance(dtype))


def test_softmax_backward_cross_entropy_is_q_minus_onehot(ref):
    z = _logits((5, 4), torch.float64, 1.0, seed=7)
    labels = torch.tensor([0, 3, 1, 1, 2])
    q = torch.softmax(z, -1)
    onehot = torch.nn.functional.one_hot(labels, 4).double()
    grad_q = -onehot / q                       # d(-log q_y)/dq for each row
    torch.testing.assert_close(ref["softmax_backward"](q, grad_q, -1), q - onehot)
