"""``synthetic``: the embedded backbone's frozen MiniLM transformer and tokenizer, with image tokens
made by a fixed seeded random projection of the pixels (instead of EfficientNet-Lite0 and a
projection pretrained on a held-out split). Featurising 10,000 images then takes milliseconds,
while a client fit costs what it costs on the embedded backbone (same transformer, same prompt
insertion). For scale tests with the ``synthetic`` dataset only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fedbench.backbones.minilm_effnet import EmbeddedOptions, MiniLMEffNetBackbone, load_minilm
from fedbench.backbones.registry import BackboneSpec, register_backbone
from fedbench.data.base import ModalData
from fedbench.errors import ConfigError

PROJECTION_SEED = 7


@dataclass
class SyntheticBackboneOptions:
    """cells: image tokens per image; max_text_tokens: word pieces kept per text."""

    cells: int = 4
    max_text_tokens: int = 16

    def validate(self) -> None:
        if not 1 <= self.cells <= 64:
            raise ConfigError(f"backbone.options.cells: {self.cells} is outside [1, 64] (try 4)")
        if not 4 <= self.max_text_tokens <= 512:
            raise ConfigError(
                f"backbone.options.max_text_tokens: {self.max_text_tokens} is outside [4, 512] (try 16)"
            )


class SyntheticBackbone(MiniLMEffNetBackbone):
    """MiniLM with random-projection image tokens; see the module docstring."""

    def __init__(self, bert, tokenizer, options: SyntheticBackboneOptions):
        super().__init__(
            bert, tokenizer=tokenizer, options=EmbeddedOptions(max_text_tokens=options.max_text_tokens)
        )
        self.cells = options.cells

    def build_image_bank(self, data: ModalData, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """[N + 1, cells, H]: layer-normed random projections of the pixels; the last row is a
        white canvas (the missing-image placeholder)."""
        images = np.stack([data.images[i] for i in range(len(data))])
        pixels = np.concatenate([images, np.full_like(images[:1], 255)])
        flat = torch.as_tensor(pixels.reshape(len(pixels), -1), dtype=torch.float32) / 255.0
        gen = torch.Generator().manual_seed(PROJECTION_SEED)
        proj = torch.randn(flat.shape[1], self.cells * self.hidden_size, generator=gen)
        tokens = (flat @ proj).reshape(len(pixels), self.cells, self.hidden_size)
        self.bank_info = {"image_tokens": "seeded random projection of the pixels", "cells": self.cells}
        return torch.nn.functional.layer_norm(tokens, (self.hidden_size,))


def build_synthetic_backbone(options: SyntheticBackboneOptions) -> SyntheticBackbone:
    bert, tokenizer = load_minilm()
    return SyntheticBackbone(bert, tokenizer, options)


register_backbone(
    BackboneSpec(
        "synthetic",
        build_synthetic_backbone,
        SyntheticBackboneOptions,
        "MiniLM-L6 with random-projection image tokens: the embedded transformer for scale tests (synthetic "
        "data)",
        capabilities=frozenset({"prompts", "multimodal", "text_tokens", "modality_features"}),
    )
)
