"""A BERT encoder layer's forward written against its weights, not its ``forward`` signature.

transformers 5.x changed layer call signatures and return types; prompt insertion must not
depend on them. This reads the standard BERT sub-modules (query/key/value, output dense and
LayerNorms) and runs them with scaled dot-product attention (:mod:`.attention`). ``tests/test_backbone.py``
checks it against ``BertModel`` itself.
"""

from __future__ import annotations

import torch
from torch import nn

from fedbench.backbones.attention import attention


def bert_layer_forward(layer: nn.Module, x: torch.Tensor, keep: torch.Tensor, num_heads: int) -> torch.Tensor:
    """One post-LN BERT layer in inference mode (no dropout). ``keep`` is [B, S] bool."""
    b, s, h = x.shape
    att = layer.attention
    d = h // num_heads

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.view(b, s, num_heads, d).transpose(1, 2)

    q = heads(att.self.query(x))
    k = heads(att.self.key(x))
    v = heads(att.self.value(x))
    bias = torch.zeros(b, 1, 1, s, dtype=q.dtype, device=x.device)
    bias = bias.masked_fill(~keep[:, None, None, :], torch.finfo(q.dtype).min)
    ctx = attention(q, k, v, bias)
    ctx = ctx.transpose(1, 2).reshape(b, s, h)
    x = att.output.LayerNorm(att.output.dense(ctx) + x)
    inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(x))
    return layer.output.LayerNorm(layer.output.dense(inner) + x)
