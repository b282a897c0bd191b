"""A random-weight stand-in for torchvision's ``vit_b_32-d86f8d99.pth`` (PPT's official backbone,
read by :mod:`fedbench.backbones.tv_vit`): the same key layout, shapes and dtype as torchvision's
``VisionTransformer.state_dict()`` for ViT-B/32 at 224 px (hidden 768, 12 layers, MLP 3072, a
1000-way head), saved with ``torch.save`` as torchvision's file is. About 353 MB."""

from __future__ import annotations

from pathlib import Path

import torch

VIT_B_32 = dict(hidden=768, layers=12, mlp=3072, patch=32, image=224, head=1000)


def tv_vit_state(
    seed: int = 0,
    hidden: int = 768,
    layers: int = 12,
    mlp: int = 3072,
    patch: int = 32,
    image: int = 224,
    head: int = 1000,
) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 0.02) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    def ones(n: int) -> torch.Tensor:
        return torch.ones(n)

    tokens = (image // patch) ** 2 + 1
    state = {
        "class_token": torch.zeros(1, 1, hidden),
        "conv_proj.weight": rand(hidden, 3, patch, patch),
        "conv_proj.bias": torch.zeros(hidden),
        "encoder.pos_embedding": rand(1, tokens, hidden),
    }
    for i in range(layers):
        pre = f"encoder.layers.encoder_layer_{i}."
        state |= {
            pre + "ln_1.weight": ones(hidden),
            pre + "ln_1.bias": torch.zeros(hidden),
            pre + "self_attention.in_proj_weight": rand(3 * hidden, hidden),
            pre + "self_attention.in_proj_bias": torch.zeros(3 * hidden),
            pre + "self_attention.out_proj.weight": rand(hidden, hidden),
            pre + "self_attention.out_proj.bias": torch.zeros(hidden),
            pre + "ln_2.weight": ones(hidden),
            pre + "ln_2.bias": torch.zeros(hidden),
            pre + "mlp.0.weight": rand(mlp, hidden),
            pre + "mlp.0.bias": torch.zeros(mlp),
            pre + "mlp.3.weight": rand(hidden, mlp),
            pre + "mlp.3.bias": torch.zeros(hidden),
        }
    state |= {
        "encoder.ln.weight": ones(hidden),
        "encoder.ln.bias": torch.zeros(hidden),
        "heads.head.weight": rand(head, hidden),
        "heads.head.bias": torch.zeros(head),
    }
    return state


def write_tv_vit(path: str | Path, seed: int = 0) -> Path:
    """Write the stand-in checkpoint to ``path`` (its folders made); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(tv_vit_state(seed, **VIT_B_32), path)
    return path
