"""ViLT (``dandelin/vilt-b32-mlm``) as MAP and FedPrime use it (methods.md §0-1, data.md §2.1).

Sequence: ``[text [CLS] ... [SEP] pad | image [CLS] patches]``, text with modality type 0 and image
with type 1, one joint attention mask. Methods prepend their prompts through ``run_layers``'s
prompter (MAP: 16 tokens before each of layers 0-5, accumulating; FedPrime: its pools before
layer 0) and the head reads the text [CLS] behind them (``readout``), after ViLT's final LayerNorm,
through a pooler initialised from the checkpoint's.

Missing inputs as MAP: a missing text is the empty string (``[CLS][SEP]``), a missing image the
all-ones tensor after normalisation. Images are resized once to a square ``image_size`` and cached
as uint8 (MAP keeps the aspect ratio, shorter side 384 and longer <= 640, and pads batches;
a fixed square keeps batches dense and the cache small). ``max_text_tokens`` beyond the checkpoint's
40 positions interpolates the position table bilinearly, as MAP does; ``max_image_len`` > 0 keeps
that many random patches per image (FedPrime's 40), -1 all of them (MAP).

Capabilities: ``prompts``, ``multimodal`` and ``text_tokens`` (the text's word pieces are tokens of
the joint sequence, with ``text_ids`` in the batch and ``text_embeddings``: what FedPrime's
official padded query needs). ``modality_features`` serves feature-level methods (FedMVP).

The embeddings are computed here rather than by ``ViltEmbeddings``, whose ``visual_embed``
interpolates positions and shuffles patches per sample in Python loops; for a fixed square size
the two are equal up to the order of the patches (tests/test_backbone_hf_vilt.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fedbench.backbones.base import Backbone, Prompter
from fedbench.backbones.hf_common import (
    block_parts,
    checked_size,
    drop_missing_text,
    encoder_layers,
    image_stats,
    load_model,
    load_tokenizer,
    make_bundle,
    run_prenorm,
)
from fedbench.backbones.pixels import PixelNorm, cached_pixels
from fedbench.backbones.registry import BackboneSpec, register_backbone
from fedbench.backbones.tokens import cached_tokens
from fedbench.data.base import ModalData
from fedbench.data.bundle import DataBundle
from fedbench.errors import ConfigError

VILT_MEAN_STD = ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])


@dataclass
class ViltOptions:
    """model: an HF id or a folder; local_files_only: never touch the network (default);
    image_size: square side in pixels (0 = the checkpoint's, 384); max_text_tokens: word pieces
    per text (MAP 1024/512/128, FedPrime 128/40); max_image_len: random patches kept per image
    (-1 all, as MAP; FedPrime 40)."""

    model: str = "dandelin/vilt-b32-mlm"
    local_files_only: bool = True
    image_size: int = 0
    max_text_tokens: int = 40
    max_image_len: int = -1

    def validate(self) -> None:
        if not 2 <= self.max_text_tokens <= 4096:
            raise ConfigError(
                f"backbone.options.max_text_tokens: {self.max_text_tokens} is outside [2, 4096] (try 40)"
            )
        if self.max_image_len == 0 or self.max_image_len < -1:
            raise ConfigError(
                f"backbone.options.max_image_len: {self.max_image_len}; use -1 (all patches) or a positive "
                "count (try 40)"
            )
        if self.image_size < 0:
            raise ConfigError(
                f"backbone.options.image_size: {self.image_size}; use 0 (the checkpoint's) or a positive size"
            )


class ViltBackbone(Backbone):
    """A frozen ``ViltModel``; see the module docstring."""

    def __init__(
        self, vilt, tokenizer, options: ViltOptions, mean_std=VILT_MEAN_STD, pooler_loaded: bool = True
    ):
        super().__init__()
        cfg = vilt.config
        self.vilt, self.tokenizer, self.options = vilt, tokenizer, options
        self.hidden_size, self.num_layers, self.num_heads = (
            cfg.hidden_size,
            cfg.num_hidden_layers,
            cfg.num_attention_heads,
        )
        self.patch = cfg.patch_size
        self.image_size = checked_size(options.image_size, cfg.image_size, self.patch)
        self.pooler_loaded = pooler_loaded and vilt.pooler is not None
        self.parts = [block_parts(layer) for layer in encoder_layers(vilt)]
        self.norm = PixelNorm(*mean_std)
        emb = vilt.embeddings
        self.register_buffer(
            "text_positions",
            _stretch(emb.text_embeddings.position_embeddings.weight.detach(), options.max_text_tokens),
        )
        self.register_buffer(
            "image_positions", self._grid_positions(emb.position_embeddings.detach()[0], cfg.image_size)
        )
        empty = tokenizer("", truncation=True, max_length=options.max_text_tokens)["input_ids"]
        self.register_buffer("empty_text", torch.tensor(empty, dtype=torch.long))
        self.freeze()

    def _grid_positions(self, table: torch.Tensor, trained_size: int) -> torch.Tensor:
        """[1 + g*g, H]: the [CLS] position, then the patch grid's positions interpolated from the
        pretraining grid as ``visual_embed`` does (bilinear, align_corners)."""
        g0, g = trained_size // self.patch, self.image_size // self.patch
        grid = table[1:].T.reshape(1, -1, g0, g0)
        grid = F.interpolate(grid, size=(g, g), mode="bilinear", align_corners=True)
        return torch.cat([table[:1], grid.flatten(2)[0].T])

    # ----- featurising a dataset ------------------------------------------------------------------
    def featurize(self, data: ModalData) -> DataBundle:
        ids, keep = cached_tokens(self.tokenizer, data.texts, self.options.max_text_tokens, data.name)
        pixels, absent = cached_pixels(data, self.image_size, "squash", "bicubic")
        info = {"backbone": "vilt", "image_size": self.image_size, "rows_without_image": absent}
        return make_bundle(
            data,
            {"text_ids": ids, "text_keep": keep, "pixels": pixels},
            info,
            padded=("text_keep", "text_ids"),
        )

    # ----- frozen input tokens --------------------------------------------------------------------
    def text_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        """BERT-style text embeddings (positions interpolated to max_text_tokens) + modality type 0."""
        emb = self.vilt.embeddings
        te = emb.text_embeddings
        x = te.word_embeddings(ids) + self.text_positions[: ids.shape[1]] + te.token_type_embeddings.weight[0]
        return te.LayerNorm(x) + emb.token_type_embeddings.weight[0]

    def image_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B, 1 + patches, H]: image [CLS] and patches with positions, before the modality type."""
        emb = self.vilt.embeddings
        w = emb.patch_embeddings.projection.weight
        x = emb.patch_embeddings.projection(pixels.to(w.dtype)).flatten(2).transpose(1, 2)
        x = torch.cat([emb.cls_token.expand(x.shape[0], -1, -1), x], 1)
        return x + self.image_positions

    def sample_patches(self, image: torch.Tensor) -> torch.Tensor:
        """Keep the [CLS] and ``max_image_len`` random patches per image (ViLT's visual_embed)."""
        k, n = self.options.max_image_len, image.shape[1] - 1
        if k < 0 or k >= n:
            return image
        pick = torch.rand(image.shape[0], n, device=image.device).argsort(1)[:, :k] + 1
        pick = torch.cat([torch.zeros_like(pick[:, :1]), pick], 1)
        return image.gather(1, pick[..., None].expand(-1, -1, image.shape[2]))

    @torch.no_grad()
    def embed(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        code = batch["code"]
        ids, keep = drop_missing_text(batch["text_ids"], batch["text_keep"].bool(), code, self.empty_text)
        image = self.sample_patches(self.image_tokens(self.norm(batch["pixels"], code)))
        image = image + self.vilt.embeddings.token_type_embeddings.weight[1]
        tokens = torch.cat([self.text_embeddings(ids).float(), image.float()], 1)  # fp32 in, autocast inside
        image_keep = torch.ones(image.shape[:2], dtype=torch.bool, device=keep.device)
        return tokens, torch.cat([keep, image_keep], 1)

    def run_layers(
        self, tokens: torch.Tensor, keep: torch.Tensor, prompter: Prompter | None = None
    ) -> torch.Tensor:
        return self.vilt.layernorm(run_prenorm(self.parts, tokens, keep, self.num_heads, prompter))

    def batch_rows(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return batch["row"]

    @torch.no_grad()
    def modality_features(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each modality through the frozen transformer on its own (feature-level methods such as
        FedMVP), missing inputs as in ``embed``: ``text`` [B, H] the mean of the text's hidden
        states, ``text_tokens`` / ``text_pad`` those states and their padding; ``image`` [B, H]
        the mean of the image's hidden states (its [CLS] and patches), ``image_tokens`` them."""
        tokens, keep = self.embed(batch)
        n_text = batch["text_ids"].shape[1]
        text_keep = keep[:, :n_text]
        text = self.run_layers(tokens[:, :n_text], text_keep)
        weight = text_keep[..., None].to(text.dtype)
        image = self.run_layers(tokens[:, n_text:], keep[:, n_text:])
        return {
            "text": (text * weight).sum(1) / weight.sum(1).clamp_min(1),
            "text_tokens": text,
            "text_pad": ~text_keep,
            "image": image.mean(1),
            "image_tokens": image,
        }

    def pooler_state(self) -> dict[str, torch.Tensor] | None:
        if not self.pooler_loaded:  # a checkpoint without a pooler: the method initialises its own
            return None
        dense = self.vilt.pooler.dense
        return {"weight": dense.weight.detach().clone(), "bias": dense.bias.detach().clone()}


def _stretch(table: torch.Tensor, length: int) -> torch.Tensor:
    """[P, H] position table -> [length, H]: unchanged when it is long enough, else MAP's bilinear
    interpolation of the whole table to the new length."""
    if length <= table.shape[0]:
        return table.clone()
    return F.interpolate(table[None, None], size=(length, table.shape[1]), mode="bilinear")[0, 0]


def build_vilt(options: ViltOptions) -> ViltBackbone:
    from transformers import ViltModel

    vilt, missing = load_model(ViltModel, options.model, options.local_files_only)
    tokenizer = load_tokenizer(options.model, options.local_files_only)
    mean_std = image_stats(options.model, options.local_files_only, *VILT_MEAN_STD)
    pooler_loaded = not any(k.startswith("pooler.") for k in missing)
    return ViltBackbone(vilt, tokenizer, options, mean_std, pooler_loaded)


register_backbone(
    BackboneSpec(
        "vilt",
        build_vilt,
        ViltOptions,
        "ViLT-B/32 (dandelin/vilt-b32-mlm) single-stream transformer, as MAP and FedPrime (transformers; "
        "weights from the HF cache or a folder)",
        capabilities=frozenset({"prompts", "multimodal", "text_tokens", "modality_features"}),
    )
)
