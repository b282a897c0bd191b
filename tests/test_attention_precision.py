"""The backbones' attention under bf16-mixed on a CPU runs in float32 (it is 2x faster there, see
fedbench/backbones/attention.py): checked against a float64 computation written out here, not
against torch's kernel."""

import math

import torch

from fedbench.backbones.attention import attention


def reference(q, k, v, bias):
    """softmax(q k^T / sqrt(d) + bias) v in float64, by hand."""
    q, k, v, bias = (t.double() for t in (q, k, v, bias))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias
    return torch.softmax(scores, dim=-1) @ v


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, 3, 7, 8, generator=g) for _ in range(3))
    bias = torch.zeros(2, 1, 1, 7)
    bias[1, ..., 5:] = -1e30  # the second sample's last two tokens are padding
    return q, k, v, bias


def test_float32_inputs_match_the_formula():
    q, k, v, bias = inputs()
    assert torch.allclose(attention(q, k, v, bias).double(), reference(q, k, v, bias), atol=1e-5)


def test_bf16_on_cpu_is_computed_in_float32_and_returned_in_bf16():
    q, k, v, bias = inputs(1)
    qb, kb, vb = (t.bfloat16() for t in (q, k, v))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attention(qb, kb, vb, bias.bfloat16())
    assert out.dtype is torch.bfloat16
    want = reference(qb, kb, vb, bias)  # the exact attention of the bf16-rounded inputs
    # float32 inside: the only error left is the final rounding to bf16 (relative 2^-8)
    assert torch.allclose(out.double(), want, rtol=2**-8, atol=2**-8 * want.abs().max().item())


def test_bool_mask_and_gradients_flow_in_bf16():
    q, k, v, _ = inputs(2)
    keep = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    keep[0, ..., 6] = False
    qb = q.bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attention(qb, k.bfloat16(), v.bfloat16(), keep)
    out.float().sum().backward()
    assert qb.grad is not None and qb.grad.dtype is torch.bfloat16 and torch.isfinite(qb.grad.float()).all()
    bias = torch.zeros(2, 1, 1, 7).masked_fill(~keep, -1e30)
    assert torch.allclose(out.double(), reference(q.bfloat16(), k.bfloat16(), v.bfloat16(), bias), atol=2e-2)
