"""FedMVP's client network over frozen features (methods.md §4a-b).

The official model reads raw pixels and BERT token states; in fedbench the frozen backbone has
already featurised both (cached), so the trainable parts start from feature tensors:

- ``text_mapping`` / ``image_mapping``: pooled text [B, d_text] / image [B, d_image] -> latent;
- :class:`JointEncoder`: text and image token sequences -> image self-attention, cross-attention
  image->text and text->image, fused, ``joint_layers`` transformer layers, LayerNorm;
- :class:`CommonEncoder` E: one Linear + L2 normalisation shared by the three branches;
- :class:`ResidualClassifier`: h + proj2(dropout(relu(proj1(h)))) -> Linear to the classes.

The official joint encoder embeds raw 16x16 pixel patches with a trainable convolution
(``joint_image="pixels"``); by default a trainable Linear embeds the backbone's frozen image tokens
instead. A backbone with pooled vectors only passes them as one-token sequences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedbench.methods.fedmvp.config import FedMVPOptions
from fedbench.methods.fedmvp.losses import mcm_loss, ram_loss

__all__ = [
    "CommonEncoder",
    "FedMVPNetwork",
    "FedMVPOutput",
    "JointEncoder",
    "ResidualClassifier",
    "sinusoidal",
]


def sinusoidal(length: int, dim: int, device=None) -> Tensor:
    """[length, dim] fairseq-style positions 1..length: sin in the first half, cos in the second."""
    half = dim // 2
    freq = torch.exp(
        torch.arange(half, dtype=torch.float32, device=device) * -(math.log(10000.0) / max(half - 1, 1))
    )
    angle = torch.arange(1, length + 1, dtype=torch.float32, device=device)[:, None] * freq[None, :]
    table = torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)
    return F.pad(table, (0, dim - 2 * half))


class AttentionBlock(nn.Module):
    """Pre-LayerNorm attention + ReLU MLP (4x), each with a residual; queries x, keys/values kv.

    One LayerNorm normalises the queries and the keys/values, as the MulT layer the official
    code uses.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Linear(4 * dim, dim))

    def forward(self, x: Tensor, kv: Tensor | None = None, kv_pad: Tensor | None = None) -> Tensor:
        q = self.norm_attn(x)
        kv = q if kv is None else self.norm_attn(kv)
        if kv_pad is not None:  # a row with every key padded would give NaN: let it attend to all
            kv_pad = kv_pad & ~kv_pad.all(dim=1, keepdim=True)
        x = x + self.attn(q, kv, kv, key_padding_mask=kv_pad, need_weights=False)[0]
        return x + self.mlp(self.norm_mlp(x))


class JointEncoder(nn.Module):
    """Text tokens [B, Nt, dt] and image tokens [B, Ni, di] -> fused tokens [B, N, latent] and
    their padding mask [B, N] (True = padding), as ``Transformer_JointEncoder``: inputs scaled
    (``embed_scale``: sqrt(width) as MulT, or 1/sqrt(width) as the official joint encoder) plus
    sinusoidal positions."""

    def __init__(self, text_dim: int, image_dim: int, opts: FedMVPOptions):
        super().__init__()
        e, latent = opts.embed_dim, opts.latent_dim
        self.fusion, self.joint_kv = opts.fusion, opts.joint_kv
        self.inverse_scale = opts.embed_scale == "inverse_sqrt"
        self.text_in = nn.Linear(text_dim, e)  # official text_input_mapping (768 -> 256)
        if (
            opts.joint_image == "pixels"
        ):  # the official PatchEmbedding: a conv trained from scratch on [-1, 1] pixels
            self.image_in = nn.Conv2d(3, e, opts.patch_size, stride=opts.patch_size)
        else:  # the backbone's frozen image tokens, in place of the conv patch embedding
            self.image_in = nn.Linear(image_dim, e)
        self.image_self = AttentionBlock(e, opts.num_heads)
        self.image_to_text = AttentionBlock(e, opts.num_heads)
        self.text_to_image = AttentionBlock(e, opts.num_heads)
        if self.fusion == "sequence":
            self.fuse_image = nn.Linear(e, latent)
            self.fuse_text = nn.Linear(e, latent)
        self.layers = nn.ModuleList(
            AttentionBlock(latent, 2 * opts.num_heads) for _ in range(opts.joint_layers)
        )
        self.norm = nn.LayerNorm(latent)

    def _embed(self, x: Tensor) -> Tensor:
        scale = math.sqrt(x.shape[-1])
        x = x / scale if self.inverse_scale else x * scale
        return x + sinusoidal(x.shape[1], x.shape[-1], x.device).to(x.dtype)

    def forward(
        self, text: Tensor, image: Tensor, text_pad: Tensor | None = None, image_pad: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        t = self._embed(self.text_in(text))
        if (
            image.ndim == 4
        ):  # pixels [B, 3, S, S] -> patch tokens [B, (S / patch)^2, e], row-major as the official
            image = self.image_in(image).flatten(2).transpose(1, 2)
            i = self._embed(image)
        else:
            i = self._embed(self.image_in(image))
        i = self.image_self(i, kv_pad=image_pad)
        vt = self.image_to_text(i, kv=t, kv_pad=text_pad)  # image queries text: [B, Ni, e]
        tv = self.text_to_image(t, kv=i, kv_pad=image_pad)  # text queries image: [B, Nt, e]
        b, ni, nt = image.shape[0], image.shape[1], text.shape[1]
        no_pad = torch.zeros(b, 1, dtype=torch.bool, device=text.device)
        image_pad = no_pad.expand(b, ni) if image_pad is None else image_pad
        text_pad = no_pad.expand(b, nt) if text_pad is None else text_pad
        if self.fusion == "tokens":
            if ni != nt:
                raise ValueError(
                    f"JointEncoder: fusion=tokens needs as many image tokens as text tokens, got {ni} and "
                    f"{nt} (use method.options.fusion=sequence)"
                )
            fused, pad = torch.cat([vt, tv], dim=-1), image_pad & text_pad
        else:
            fused = torch.cat([self.fuse_image(vt), self.fuse_text(tv)], dim=1)
            pad = torch.cat([image_pad, text_pad], dim=1)
        x0 = self._embed(fused)
        x = x0
        for layer in self.layers:
            x = layer(x, kv=x0 if self.joint_kv == "input" else None, kv_pad=pad)
        return self.norm(x), pad


class CommonEncoder(nn.Module):
    """E(x) = normalise(Linear(x)): the one encoder shared by image, text and joint features."""

    def __init__(self, dim: int):
        super().__init__()
        self.encode = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.encode(x), dim=-1)


class ResidualClassifier(nn.Module):
    """logits = fc(h + proj2(dropout(relu(proj1(h))))); ``fc`` alone is g in the RAM loss."""

    def __init__(self, dim: int, num_classes: int, dropout: float):
        super().__init__()
        self.proj1, self.proj2 = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.fc = nn.Linear(dim, num_classes)
        self.dropout = dropout

    def forward(self, h: Tensor) -> Tensor:
        return self.fc(h + self.proj2(F.dropout(F.relu(self.proj1(h)), self.dropout, self.training)))


@dataclass
class FedMVPOutput:
    logits: Tensor  # [B, C] from the joint branch through the residual classifier
    h_image: Tensor  # [B, latent], unit rows
    h_text: Tensor  # [B, latent], unit rows
    h_joint: Tensor  # [B, latent]; unit rows only with joint_pool=mean_then_normalise


class FedMVPNetwork(nn.Module):
    """All of FedMVP's trainable tensors; see the module docstring for the layout."""

    def __init__(
        self,
        text_dim: int,
        image_dim: int,
        num_classes: int,
        opts: FedMVPOptions | None = None,
        text_token_dim: int | None = None,
        image_token_dim: int | None = None,
    ):
        super().__init__()
        self.opts = (opts or FedMVPOptions()).validate()
        latent = self.opts.latent_dim
        self.text_mapping = nn.Linear(text_dim, latent)
        self.image_mapping = nn.Linear(image_dim, latent)  # the official ViT's new head (768 -> 512)
        self.joint = JointEncoder(text_token_dim or text_dim, image_token_dim or image_dim, self.opts)
        self.common = CommonEncoder(latent)
        self.classifier = ResidualClassifier(latent, num_classes, self.opts.dropout)

    def forward(
        self,
        text: Tensor,
        image: Tensor,
        text_tokens: Tensor | None = None,
        image_tokens: Tensor | None = None,
        text_pad: Tensor | None = None,
        image_pad: Tensor | None = None,
    ) -> FedMVPOutput:
        """Pooled text [B, d_text] and image [B, d_image]; optional token sequences [B, N, d]
        (default: the pooled vectors as one token) with padding masks [B, N] (True = padding)."""
        text_tokens = text[:, None] if text_tokens is None else text_tokens
        image_tokens = image[:, None] if image_tokens is None else image_tokens
        tokens, pad = self.joint(text_tokens, image_tokens, text_pad, image_pad)
        keep = (~pad).unsqueeze(-1).to(tokens.dtype)
        if self.opts.joint_pool == "normalise_then_mean":
            h_joint = (self.common(tokens) * keep).sum(1) / keep.sum(1).clamp_min(1)
        else:
            h_joint = self.common((tokens * keep).sum(1) / keep.sum(1).clamp_min(1))
        return FedMVPOutput(
            logits=self.classifier(h_joint),
            h_image=self.common(self.image_mapping(image)),
            h_text=self.common(self.text_mapping(text)),
            h_joint=h_joint,
        )

    def trained_parameters(self) -> list[nn.Parameter]:
        """What the local optimiser updates: everything but a frozen image head (image_head=frozen,
        the official code's random head, which still travels with the state and averages to itself)."""
        frozen = (
            {id(p) for p in self.image_mapping.parameters()} if self.opts.image_head == "frozen" else set()
        )
        return [p for p in self.parameters() if id(p) not in frozen]

    def representation(self, out: FedMVPOutput, kind: str | None = None) -> Tensor:
        """What the server compares with CKA (options.cka_representation)."""
        kind = kind or self.opts.cka_representation
        if kind == "joint":
            return out.h_joint
        if kind == "all":
            return torch.cat([out.h_image, out.h_text, out.h_joint], dim=1)
        if kind == "logits":
            return out.logits
        raise ValueError(f"FedMVPNetwork.representation: unknown kind {kind!r}")

    def training_loss(self, out: FedMVPOutput, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """L = CE(head(h_J), y) + L_MCM + L_RAM (each switched by use_mcm / use_ram)."""
        ce = F.cross_entropy(out.logits, labels)
        extra, parts = self.auxiliary_loss(out, labels, ce)
        return (ce if extra is None else ce + extra), {"ce": ce.detach(), **parts}

    def auxiliary_loss(
        self, out: FedMVPOutput, labels: Tensor, ce: Tensor | None = None
    ) -> tuple[Tensor | None, dict[str, Tensor]]:
        """L_MCM + L_RAM as switched by use_mcm / use_ram (None when both are off), and each part.
        ``ce`` is the joint branch's cross-entropy that RAM compares the unimodal ones with."""
        parts: dict[str, Tensor] = {}
        loss = None
        unimodal = [out.h_image, out.h_text]
        if self.opts.use_mcm:
            mcm = mcm_loss(out.h_joint.float(), [h.float() for h in unimodal], self.opts.alpha, self.opts.tau)
            loss, parts["mcm"] = mcm, mcm.detach()
        if self.opts.use_ram:
            ce = F.cross_entropy(out.logits.float(), labels) if ce is None else ce
            ce_uni = [F.cross_entropy(self.classifier.fc(h).float(), labels) for h in unimodal]
            ram = ram_loss(out.h_joint, unimodal, ce, ce_uni, self.opts.beta)
            loss, parts["ram"] = (ram if loss is None else loss + ram), ram.detach()
        return loss, parts
