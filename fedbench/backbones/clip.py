"""CLIP (ViT-B/32 or B/16, transformers' ``CLIPModel``): frozen features and a prompt-tuning backbone.

**Frozen features** (FedMVP and other feature-level methods): :attr:`ClipBackbone.text_table` and
:attr:`ClipBackbone.image_table` give each row's pooled text and image features and their
joint-space embeddings, plus the features of the placeholders (empty text, constant image) as
their last row, computed once per row on first use and cached on disk.

**Prompt tuning.** CLIP has two towers of different widths, so it cannot be one joint stream as
ViLT is. The prompts go to the image tower (VPT, inserted after ``pre_layrnorm`` as the
literature does); the text tower is frozen and unprompted, so its output is a fixed function of
the text, computed once per row (:attr:`ClipBackbone.text_table`). The text enters the sequence as one token,
``W_v^+ t`` (``t``: CLIP's text embedding, ``W_v^+``: the pseudo-inverse of the visual projection),
that rides beside the image tokens without passing through the image layers:
``[prompts | text | image CLS, patches]``. ``readout`` returns the image tower's pooled output
plus that token, so that CLIP's visual projection maps the read-out to
``image_embeds + text_embeds``: a sum in the joint space the two towers were trained to share,
with no new weights. ``fuse_text=False`` leaves the text out (plain VPT on the image tower).

Missing inputs as MAP: a missing text is the empty string, a missing image the all-ones tensor
after normalisation. Images are resized (shorter side) and centre-cropped as
``CLIPImageProcessor`` does, then cached as uint8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fedbench.backbones.base import Backbone, Prompter
from fedbench.backbones.hf_common import (
    attention_mask,
    block_parts,
    checked_size,
    encoder_layers,
    image_stats,
    load_model,
    load_tokenizer,
    make_bundle,
    prenorm_layer,
    weights_fingerprint,
)
from fedbench.backbones.pixels import PixelNorm, cached_pixels
from fedbench.backbones.registry import BackboneSpec, register_backbone
from fedbench.backbones.tokens import texts_digest, tokenize
from fedbench.batch import COMPLETE, IMAGE_MISSING, TEXT_MISSING
from fedbench.cache.folder import cache_key
from fedbench.cache.frozen import FrozenTable, frozen_chunk
from fedbench.data.base import ModalData
from fedbench.data.bundle import DataBundle
from fedbench.errors import ConfigError

CLIP_MEAN_STD = ([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711])
FROZEN_CHUNK = 64  # rows per block of the frozen text / image tables


@dataclass
class ClipOptions:
    """model: an HF id or a folder (``openai/clip-vit-base-patch16`` for B/16);
    local_files_only: never touch the network (default); image_size: square side in pixels
    (0 = the checkpoint's, 224); max_text_tokens: BPE tokens per text (CLIP's 77 at most);
    fuse_text: add the frozen text embedding to the read-out (False: image tower only);
    text_tokens: the text sequence of the frozen features (FedMVP's joint encoder): "states", the
    text tower's token states [max_text_tokens, text width] with their padding mask (as the
    official FedMVP feeds BERT's ``last_hidden_state``, ``models/fedmvp.py:143-145``), or
    "pooled", the fused text token alone (one key for image->text attention)."""

    model: str = "openai/clip-vit-base-patch32"
    local_files_only: bool = True
    image_size: int = 0
    max_text_tokens: int = 77
    fuse_text: bool = True
    text_tokens: str = "states"

    def validate(self) -> None:
        if not 2 <= self.max_text_tokens <= 77:
            raise ConfigError(
                f"backbone.options.max_text_tokens: {self.max_text_tokens} is outside [2, 77] (CLIP has 77 "
                "positions)"
            )
        if self.image_size < 0:
            raise ConfigError(
                f"backbone.options.image_size: {self.image_size}; use 0 (the checkpoint's) or a positive size"
            )
        if self.text_tokens not in ("states", "pooled"):
            raise ConfigError(
                f"backbone.options.text_tokens: {self.text_tokens!r} is not valid; choose one of states, "
                "pooled"
            )


class ClipBackbone(Backbone):
    """A frozen ``CLIPModel``; see the module docstring."""

    def __init__(self, clip, tokenizer, options: ClipOptions, mean_std=CLIP_MEAN_STD):
        super().__init__()
        vcfg = clip.config.vision_config
        self.clip, self.tokenizer, self.options = clip, tokenizer, options
        self.vision = clip.vision_model
        self.hidden_size, self.num_layers, self.num_heads = (
            vcfg.hidden_size,
            vcfg.num_hidden_layers,
            vcfg.num_attention_heads,
        )
        self.image_size = checked_size(options.image_size, vcfg.image_size, vcfg.patch_size)
        self.interpolate = self.image_size != vcfg.image_size
        self.n_image = 1 + (self.image_size // vcfg.patch_size) ** 2
        self.n_text = 1 if options.fuse_text else 0
        self.parts = [block_parts(layer) for layer in encoder_layers(self.vision)]
        self.norm = PixelNorm(*mean_std)
        # text embedding (joint space) -> the image tower's width, so visual_projection maps it back
        self.register_buffer(
            "text_to_vision", torch.linalg.pinv(clip.visual_projection.weight.detach().double()).float()
        )
        self._texts: list[str] = [""]
        self._pixels = None
        self._text_table: FrozenTable | None = None
        self._image_table: FrozenTable | None = None
        self._fingerprint: str | None = None
        self.freeze()

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.clip)
        return self._fingerprint

    # ----- featurising a dataset ------------------------------------------------------------------
    def featurize(self, data: ModalData) -> DataBundle:
        pixels, absent = cached_pixels(data, self.image_size, "crop", "bicubic")
        self._texts = [*data.texts, ""]  # the text table's rows: the dataset's, then the missing text
        self._pixels = pixels
        self._text_table = self._image_table = None
        info = {
            "backbone": "clip",
            "image_size": self.image_size,
            "rows_without_image": absent,
            "fuse_text": self.options.fuse_text,
        }
        return make_bundle(data, {"pixels": pixels}, info)

    @property
    def text_table(self) -> FrozenTable:
        """Each row's pooled text tower output ``text`` and joint-space ``text_embeds`` (last row:
        the empty text), computed on first use and cached (:mod:`fedbench.cache.frozen`)."""
        if self._text_table is None:
            key = cache_key(
                weights=self.fingerprint,
                texts=texts_digest(self._texts),
                len=self.options.max_text_tokens,
                device=_fastest_device_type(),
                chunk=frozen_chunk(FROZEN_CHUNK),
            )
            self._text_table = FrozenTable(
                "clip-text", key, len(self._texts), self._text_rows, frozen_chunk(FROZEN_CHUNK)
            )
        return self._text_table

    @property
    def image_table(self) -> FrozenTable:
        """Each row's pooled image tower output ``image`` and joint-space ``image_embeds`` (last
        row: MAP's missing-image constant), computed on first use and cached."""
        if self._image_table is None:
            key = cache_key(
                weights=self.fingerprint,
                pixels=self._pixels.key,
                n=len(self._pixels),
                size=self.image_size,
                device=_fastest_device_type(),
                chunk=frozen_chunk(FROZEN_CHUNK),
            )
            self._image_table = FrozenTable(
                "clip-image", key, len(self._pixels) + 1, self._image_rows, frozen_chunk(FROZEN_CHUNK)
            )
        return self._image_table

    def _text_rows(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        ids, keep = tokenize(self.tokenizer, [self._texts[i] for i in rows], self.options.max_text_tokens)
        with _on_fastest_device(self) as dev:
            pooled = self.clip.text_model(
                input_ids=ids.to(dev), attention_mask=keep.long().to(dev)
            ).pooler_output
            return {
                "text": pooled.float().cpu(),
                "text_embeds": self.clip.text_projection(pooled).float().cpu(),
            }

    def _image_rows(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        n = len(self._pixels)
        pixels = self._pixels[np.minimum(rows, n - 1)]
        code = torch.as_tensor(np.where(rows == n, IMAGE_MISSING, COMPLETE))
        with _on_fastest_device(self) as dev:
            pooled = self.vision(
                pixel_values=self.norm(pixels.to(dev), code.to(dev)),
                interpolate_pos_encoding=self.interpolate,
            ).pooler_output
            return {
                "image": pooled.float().cpu(),
                "image_embeds": self.clip.visual_projection(pooled).float().cpu(),
            }

    def frozen_features(self, data: ModalData) -> dict[str, torch.Tensor]:
        """Every row's frozen CLIP features in memory (small datasets; a method at real size reads
        rows of :attr:`text_table` / :attr:`image_table` instead).

        ``text`` [N, Dt] / ``image`` [N, Dv]: pooled outputs of the towers; ``text_embeds`` /
        ``image_embeds`` [N, P]: the same in the joint space. ``*_missing`` ([D]): the features of
        the placeholders (empty text; MAP's constant image), for methods that impute a gap."""
        self.featurize(data)
        feats = {**self.text_table.all_rows(), **self.image_table.all_rows()}
        out = {name: t[:-1] for name, t in feats.items()}
        out.update({f"{name}_missing": t[-1] for name, t in feats.items()})
        return out

    # ----- prompt tuning ----------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        code = batch["code"]
        pixels = self.norm(batch["pixels"], code)
        tokens = self.vision.pre_layrnorm(
            self.vision.embeddings(pixels, interpolate_pos_encoding=self.interpolate)
        ).float()
        if self.n_text:
            tokens = torch.cat([self.text_token(batch)[:, None], tokens], 1)
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)

    def text_token(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, H]: each row's frozen text embedding in the image tower's width ('' when missing)."""
        empty = torch.full_like(batch["row"], self.text_table.n - 1)
        rows = torch.where(batch["code"] == TEXT_MISSING, empty, batch["row"])
        embeds = self.text_table.rows(rows)["text_embeds"].to(self.text_to_vision.device)
        return embeds @ self.text_to_vision.T

    def batch_rows(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return batch["row"]

    @property
    def feature_layout(self) -> str | None:
        """What FedMVP's feature cache must tell apart beyond the weights (None: the first layout)."""
        return "text-states" if self.options.text_tokens == "states" else None

    def modality_feature_dims(self) -> dict[str, int]:
        text_tokens = (
            self.clip.config.text_config.hidden_size
            if self.options.text_tokens == "states"
            else self.hidden_size
        )
        return {
            "text": self.hidden_size,
            "image": self.hidden_size,
            "text_tokens": text_tokens,
            "image_tokens": self.hidden_size,
        }

    @torch.no_grad()
    def modality_features(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-modality frozen features (FedMVP): ``text`` [B, H] the text token in the image
        tower's width, as the read-out sums it; ``text_tokens`` [B, L, Dt] the text tower's token
        states with ``text_pad`` [B, L] (True = padding; ``text_tokens="pooled"``: the text token
        alone); ``image`` [B, H] the image tower's pooled output, ``image_tokens`` [B, 1 + patches,
        H] its hidden states; missing inputs as in ``embed`` (a missing text is '')."""
        if not self.n_text:
            raise ConfigError(
                "backbone.options.fuse_text: false leaves CLIP without text features; set it true"
            )
        tokens, keep = self.embed(batch)
        hidden = self.run_layers(tokens, keep)
        text = tokens[:, 0]
        out = {
            "text": text,
            "text_tokens": text[:, None],
            "text_pad": torch.zeros_like(keep[:, :1]),
            "image": self.vision.post_layernorm(hidden[:, 1]),
            "image_tokens": hidden[:, 1:],
        }
        if self.options.text_tokens == "states":
            rows, code = batch["row"].cpu().tolist(), batch["code"].cpu().tolist()
            texts = ["" if c == TEXT_MISSING else self._texts[r] for r, c in zip(rows, code, strict=True)]
            ids, real = tokenize(self.tokenizer, texts, self.options.max_text_tokens)
            device = tokens.device
            states = self.clip.text_model(
                input_ids=ids.to(device), attention_mask=real.long().to(device)
            ).last_hidden_state
            out["text_tokens"], out["text_pad"] = states.float(), ~real.to(device)
        return out

    def run_layers(
        self, tokens: torch.Tensor, keep: torch.Tensor, prompter: Prompter | None = None
    ) -> torch.Tensor:
        """The image tower's layers over ``[prefix | image]``; the text token (if any) rides along."""
        x, tail, mask, mask_of = tokens, self.n_text + self.n_image, None, None
        for i, parts in enumerate(self.parts):
            if prompter is not None:
                x, keep = prompter(i, x, keep)
            n_prefix = x.shape[1] - tail
            if keep is not mask_of:  # rebuilt only when the prompter changed the keep mask
                mask, mask_of = (
                    attention_mask(torch.cat([keep[:, :n_prefix], keep[:, n_prefix + self.n_text :]], 1)),
                    keep,
                )
            text = x[:, n_prefix : n_prefix + self.n_text]
            seen = prenorm_layer(
                parts, torch.cat([x[:, :n_prefix], x[:, n_prefix + self.n_text :]], 1), mask, self.num_heads
            )
            x = torch.cat([seen[:, :n_prefix], text.to(seen.dtype), seen[:, n_prefix:]], 1)
        return x

    def readout(self, hidden: torch.Tensor, n_prefix: int) -> torch.Tensor:
        pooled = self.vision.post_layernorm(hidden[:, n_prefix + self.n_text])
        return pooled + hidden[:, n_prefix] if self.n_text else pooled


def _fastest_device_type() -> str:  # GPU and CPU features differ in the last bits: cached apart
    return "cuda" if torch.cuda.is_available() else "cpu"


class _on_fastest_device:
    """Run a frozen pass on the GPU when one is visible (featurising happens before the federation
    moves the backbone), then put the backbone back where it was."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.home = next(module.parameters()).device

    def __enter__(self) -> torch.device:
        dev = torch.device("cuda") if torch.cuda.is_available() else self.home
        self.module.to(dev)
        self._grad = torch.is_grad_enabled()
        torch.set_grad_enabled(False)
        self._autocast = torch.autocast(
            dev.type, enabled=False
        )  # frozen features in float32, whatever runs them
        self._autocast.__enter__()
        return dev

    def __exit__(self, *exc) -> None:
        self._autocast.__exit__(*exc)
        torch.set_grad_enabled(self._grad)
        self.module.to(self.home)


def build_clip(options: ClipOptions) -> ClipBackbone:
    from transformers import CLIPModel

    clip, _ = load_model(CLIPModel, options.model, options.local_files_only)
    tokenizer = load_tokenizer(options.model, options.local_files_only)
    mean_std = image_stats(options.model, options.local_files_only, *CLIP_MEAN_STD)
    return ClipBackbone(clip, tokenizer, options, mean_std)


register_backbone(
    BackboneSpec(
        "clip",
        build_clip,
        ClipOptions,
        "CLIP ViT-B/32 or B/16: prompts in the image tower, frozen text embedding fused at the read-out; "
        "frozen features for FedMVP (transformers; weights from the HF cache or a folder)",
        capabilities=frozenset({"prompts", "multimodal", "modality_features"}),
    )
)
