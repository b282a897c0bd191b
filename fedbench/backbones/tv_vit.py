"""torchvision's ``vit_b_32`` (IMAGENET1K_V1) from a local checkpoint file: PPT's official backbone.

PFPT builds every model on ``torchvision.models.vit_b_32(weights='IMAGENET1K_V1')`` with the
ImageNet transform (resize 256, centre crop 224, mean/std (0.485, 0.456, 0.406) / (0.229, 0.224,
0.225); ``main.py:88-91``), and its adaptor head reads the frozen 1000-way ImageNet head
(``L2P_heuristic_model.py:136-140``, ``Prompted_models.py:126-128``). torchvision is not a
dependency of fedbench (its wheels pin a torch of their own), and nothing downloads at run time,
so the checkpoint is read from a file the user supplies (``torch.load(weights_only=True)`` of
torchvision's ``vit_b_32-d86f8d99.pth``, or a ``.safetensors`` of the same keys) and mapped onto
transformers' ``ViTModel`` (pre-LN, LayerNorm eps 1e-6, exact GELU, as torchvision's), which
:class:`~fedbench.backbones.vit.ViTBackbone` already runs with prompts.

torchvision's keys (``VisionTransformer.state_dict()``): ``class_token``, ``conv_proj.*``,
``encoder.pos_embedding``, ``encoder.layers.encoder_layer_{i}.{ln_1, self_attention.in_proj_*,
self_attention.out_proj.*, ln_2, mlp.0, mlp.3}`` (``mlp.linear_1`` / ``linear_2`` in older
files), ``encoder.ln.*``, ``heads.head.*``. The query, key and value of a layer are the three
row blocks of ``in_proj_weight``.

Pixels are cached once at 256 (shorter side, bilinear, centre square) and the centre 224 is cut
per batch, which is torchvision's Resize(256) + CenterCrop(224) up to the resampler (Pillow's
bilinear here, torchvision's antialiased tensor resize there) and the rounding of an odd margin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fedbench.backbones.hf_common import block_parts, encoder_layers, make_bundle
from fedbench.backbones.pixels import cached_pixels
from fedbench.backbones.registry import BackboneSpec, register_backbone
from fedbench.backbones.vit import ViTBackbone, ViTOptions
from fedbench.data.base import ModalData
from fedbench.data.bundle import DataBundle
from fedbench.errors import ConfigError, DataError

IMAGENET_MEAN_STD = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
LAYER = re.compile(r"encoder\.layers\.encoder_layer_(\d+)\.")


@dataclass
class TorchvisionViTOptions:
    """weights: path of torchvision's ``vit_b_32`` checkpoint (``.pth`` state dict or
    ``.safetensors``); resize, crop: the transform's shorter side and centre crop (256, 224);
    frozen_head: the adaptor of PPT's methods reads the checkpoint's frozen 1000-way head (the
    code) instead of the [CLS] state; heads: attention heads (0: width / 64, torchvision's
    ViT-B and ViT-L; a state dict does not say)."""

    weights: str = ""
    resize: int = 256
    crop: int = 224
    frozen_head: bool = True
    heads: int = 0

    def validate(self) -> None:
        if self.heads < 0:
            raise ConfigError(f"backbone.options.heads must be >= 0, got {self.heads} (0: width / 64)")
        if not 0 < self.crop <= self.resize:
            raise ConfigError(
                f"backbone.options.crop must be in (0, resize={self.resize}], got {self.crop} (try 224)"
            )


def load_state_dict(path: str) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, without running any pickled code (``weights_only``)."""
    if not path:
        raise ConfigError(
            "backbone.options.weights: give the path of torchvision's vit_b_32 checkpoint "
            "(vit_b_32-d86f8d99.pth of torchvision's IMAGENET1K_V1, copied to this machine; nothing "
            "downloads)"
        )
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(
            f"backbone.options.weights: {str(file)!r} does not exist; copy torchvision's vit_b_32 "
            "IMAGENET1K_V1 checkpoint (vit_b_32-d86f8d99.pth) there from a machine with internet"
        )
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(file))
    state = torch.load(str(file), map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def vit_config(state: dict[str, torch.Tensor], image_size: int, heads: int = 0):
    """transformers' ViTConfig with the checkpoint's shapes (patch, width, depth, MLP width)."""
    from transformers import ViTConfig

    conv = state["conv_proj.weight"]  # [H, 3, P, P]
    hidden, patch = conv.shape[0], conv.shape[-1]
    layers = 1 + max(int(m.group(1)) for k in state if (m := LAYER.match(k)))
    fc1 = _mlp(state, 0, 1)
    return ViTConfig(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads or max(1, hidden // 64),
        intermediate_size=fc1.shape[0],
        image_size=image_size,
        patch_size=patch,
        layer_norm_eps=1e-6,
        hidden_act="gelu",
        qkv_bias=True,
    )


def _mlp(state: dict[str, torch.Tensor], layer: int, which: int) -> torch.Tensor:
    base = f"encoder.layers.encoder_layer_{layer}.mlp."
    new, old = ("0", "linear_1") if which == 1 else ("3", "linear_2")
    return state.get(base + new + ".weight", state.get(base + old + ".weight"))


def _mlp_bias(state: dict[str, torch.Tensor], layer: int, which: int) -> torch.Tensor:
    base = f"encoder.layers.encoder_layer_{layer}.mlp."
    new, old = ("0", "linear_1") if which == 1 else ("3", "linear_2")
    return state.get(base + new + ".bias", state.get(base + old + ".bias"))


@torch.no_grad()
def load_into(vit: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy torchvision's tensors into a transformers ViTModel of the same shapes."""
    emb = vit.embeddings
    emb.cls_token.copy_(state["class_token"])
    emb.position_embeddings.copy_(state["encoder.pos_embedding"])
    emb.patch_embeddings.projection.weight.copy_(state["conv_proj.weight"])
    emb.patch_embeddings.projection.bias.copy_(state["conv_proj.bias"])
    for i, layer in enumerate(encoder_layers(vit)):
        p, pre = block_parts(layer), f"encoder.layers.encoder_layer_{i}."
        w, b = state[pre + "self_attention.in_proj_weight"], state[pre + "self_attention.in_proj_bias"]
        for lin, rows in zip((p.q, p.k, p.v), w.chunk(3), strict=True):
            lin.weight.copy_(rows)
        for lin, rows in zip((p.q, p.k, p.v), b.chunk(3), strict=True):
            lin.bias.copy_(rows)
        p.o.weight.copy_(state[pre + "self_attention.out_proj.weight"])
        p.o.bias.copy_(state[pre + "self_attention.out_proj.bias"])
        for norm, name in ((p.ln1, "ln_1"), (p.ln2, "ln_2")):
            norm.weight.copy_(state[pre + name + ".weight"])
            norm.bias.copy_(state[pre + name + ".bias"])
        p.fc1.weight.copy_(_mlp(state, i, 1))
        p.fc1.bias.copy_(_mlp_bias(state, i, 1))
        p.fc2.weight.copy_(_mlp(state, i, 2))
        p.fc2.bias.copy_(_mlp_bias(state, i, 2))
    vit.layernorm.weight.copy_(state["encoder.ln.weight"])
    vit.layernorm.bias.copy_(state["encoder.ln.bias"])


class TorchvisionViTBackbone(ViTBackbone):
    """The checkpoint on transformers' ViT, its frozen ImageNet head, torchvision's transform."""

    def __init__(self, vit, head: nn.Linear, options: TorchvisionViTOptions):
        super().__init__(
            vit,
            ViTOptions(model="torchvision:vit_b_32", image_size=options.crop),
            IMAGENET_MEAN_STD,
            pooler_loaded=False,
        )
        self.tv_options = options
        self.head = head
        self.head_width = head.out_features if options.frozen_head else None
        self.freeze()

    def featurize(self, data: ModalData) -> DataBundle:
        pixels, absent = cached_pixels(data, self.tv_options.resize, "crop", "bilinear")
        info = {
            "backbone": "torchvision-vit",
            "image_size": self.tv_options.crop,
            "resize": self.tv_options.resize,
            "rows_without_image": absent,
        }
        return make_bundle(data, {"pixels": pixels}, info)

    @torch.no_grad()
    def embed(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return super().embed({**batch, "pixels": centre(batch["pixels"], self.tv_options.crop)})

    def head_logits(self, readout: torch.Tensor) -> torch.Tensor:
        """The frozen 1000-way ImageNet head on the read-out (the adaptor's input in the code)."""
        return self.head(readout.to(self.head.weight.dtype)) if self.head_width else readout


def centre(pixels: torch.Tensor, crop: int) -> torch.Tensor:
    """The centre ``crop`` x ``crop`` of square images [B, 3, S, S] (offset (S - crop) // 2)."""
    top = (pixels.shape[-1] - crop) // 2
    return pixels[..., top : top + crop, top : top + crop]


def build_torchvision_vit(options: TorchvisionViTOptions) -> TorchvisionViTBackbone:
    from transformers import ViTModel

    state = load_state_dict(options.weights)
    missing = [
        k
        for k in (
            "class_token",
            "conv_proj.weight",
            "encoder.pos_embedding",
            "encoder.ln.weight",
            "heads.head.weight",
        )
        if k not in state
    ]
    if missing:
        raise DataError(
            f"backbone.options.weights: {options.weights} is not a torchvision ViT state dict (no "
            f"{missing[0]})"
        )
    vit = ViTModel(vit_config(state, options.crop, options.heads), add_pooling_layer=False).eval()
    load_into(vit, state)
    weight = state["heads.head.weight"]
    head = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(state["heads.head.bias"])
    return TorchvisionViTBackbone(vit, head, options)


register_backbone(
    BackboneSpec(
        "torchvision-vit",
        build_torchvision_vit,
        TorchvisionViTOptions,
        "torchvision's vit_b_32 (IMAGENET1K_V1) from a local checkpoint file, ImageNet transform and frozen "
        "1000-way head (PPT's official backbone)",
        capabilities=frozenset({"prompts"}),
    )
)
