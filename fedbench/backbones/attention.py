"""Scaled dot-product attention for every backbone layer loop, with one CPU precision rule.

Under ``bf16-mixed`` on a CPU, torch's fused attention backward in bfloat16 is several times
slower than in float32 (measured here: a six-layer attention stack at MiniLM's width trains 2x
faster end to end with the attention itself in float32, same batch and sequence). So on a CPU a
bfloat16 attention runs in float32, outside autocast, and its output is cast back: the matmuls
around it stay in bfloat16, and the attention is more precise, not less. On a GPU, and for
float32 inputs, this is ``F.scaled_dot_product_attention`` unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d) + mask) v`` over [B, heads, S, d]; ``mask`` additive or bool."""
    if q.dtype is torch.bfloat16 and q.device.type == "cpu":
        if mask is not None and mask.dtype is not torch.bool:
            mask = mask.float()
        with torch.autocast("cpu", enabled=False):
            out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)
        return out.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
