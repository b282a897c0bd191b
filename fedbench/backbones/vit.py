"""A uni-modal ViT (ViT-B/32 or B/16, transformers' ``ViTModel``) for PPT-style prompt tuning.

PPT prompts a frozen ViT-B/32 with shallow prompts *after* the [CLS] token (methods.md §3).
Methods here prepend prompts through the prompter; since the positions were added in the
embeddings and a ViT layer treats its tokens as a set, ``[prompts, CLS, patches]`` gives exactly
the hidden states of ``[CLS, prompts, patches]`` (tests/test_backbone_hf_vit.py checks it), and
``readout`` reads the [CLS] behind the prompts, after the final LayerNorm.

The backbone sees images only (capability ``prompts``, not ``multimodal``), so multimodal methods
refuse it with one line; texts of a dataset are ignored and a missing image is MAP's constant.
Images are squashed to ``image_size`` (bilinear, as ``ViTImageProcessor``) and cached as uint8;
a size other than the checkpoint's interpolates the position table (``interpolate_pos_encoding``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fedbench.backbones.base import Backbone, Prompter
from fedbench.backbones.hf_common import (
    block_parts,
    checked_size,
    encoder_layers,
    image_stats,
    load_model,
    make_bundle,
    run_prenorm,
)
from fedbench.backbones.pixels import PixelNorm, cached_pixels
from fedbench.backbones.registry import BackboneSpec, register_backbone
from fedbench.data.base import ModalData
from fedbench.data.bundle import DataBundle
from fedbench.errors import ConfigError

VIT_MEAN_STD = ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])


@dataclass
class ViTOptions:
    """model: an HF id or a folder (B/32 default as PPT; ``google/vit-base-patch16-224-in21k``
    for B/16); local_files_only: never touch the network (default); image_size: square side in
    pixels (0 = the checkpoint's, 224)."""

    model: str = "google/vit-base-patch32-224-in21k"
    local_files_only: bool = True
    image_size: int = 0

    def validate(self) -> None:
        if self.image_size < 0:
            raise ConfigError(
                f"backbone.options.image_size: {self.image_size}; use 0 (the checkpoint's) or a positive size"
            )


class ViTBackbone(Backbone):
    """A frozen ``ViTModel``; see the module docstring."""

    def __init__(self, vit, options: ViTOptions, mean_std=VIT_MEAN_STD, pooler_loaded: bool = True):
        super().__init__()
        cfg = vit.config
        self.vit, self.options = vit, options
        self.hidden_size, self.num_layers, self.num_heads = (
            cfg.hidden_size,
            cfg.num_hidden_layers,
            cfg.num_attention_heads,
        )
        self.image_size = checked_size(options.image_size, cfg.image_size, cfg.patch_size)
        self.interpolate = self.image_size != cfg.image_size
        pooler = getattr(vit, "pooler", None)
        self.pooler_loaded = (  # usable as a method's Linear(H, H) + tanh pooler
            pooler_loaded
            and pooler is not None
            and pooler.dense.out_features == cfg.hidden_size
            and getattr(cfg, "pooler_act", "tanh") == "tanh"
        )
        self.parts = [block_parts(layer) for layer in encoder_layers(vit)]
        self.norm = PixelNorm(*mean_std)
        self.freeze()

    def featurize(self, data: ModalData) -> DataBundle:
        pixels, absent = cached_pixels(data, self.image_size, "squash", "bilinear")
        info = {"backbone": "vit", "image_size": self.image_size, "rows_without_image": absent}
        return make_bundle(data, {"pixels": pixels}, info)

    @torch.no_grad()
    def embed(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = self.norm(batch["pixels"], batch["code"])
        tokens = self.vit.embeddings(pixels, interpolate_pos_encoding=self.interpolate).float()
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)

    def run_layers(
        self, tokens: torch.Tensor, keep: torch.Tensor, prompter: Prompter | None = None
    ) -> torch.Tensor:
        return self.vit.layernorm(run_prenorm(self.parts, tokens, keep, self.num_heads, prompter))

    def pooler_state(self) -> dict[str, torch.Tensor] | None:
        if not self.pooler_loaded:
            return None
        dense = self.vit.pooler.dense
        return {"weight": dense.weight.detach().clone(), "bias": dense.bias.detach().clone()}


def build_vit(options: ViTOptions) -> ViTBackbone:
    from transformers import ViTModel

    vit, missing = load_model(ViTModel, options.model, options.local_files_only)
    mean_std = image_stats(options.model, options.local_files_only, *VIT_MEAN_STD)
    return ViTBackbone(
        vit, options, mean_std, pooler_loaded=not any(k.startswith("pooler.") for k in missing)
    )


register_backbone(
    BackboneSpec(
        "vit",
        build_vit,
        ViTOptions,
        "ViT-B/32 or B/16 image-only transformer for PPT-style prompts (transformers; weights from the HF "
        "cache or a folder)",
        capabilities=frozenset({"prompts"}),
    )
)
