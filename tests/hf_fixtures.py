"""Tiny randomly initialised ViLT, CLIP and ViT models for offline tests.

Each is built from a config with a fixed seed, saved with ``save_pretrained`` (weights, tokenizer
and a preprocessor_config.json) into a folder, and loaded by the real ``build_vilt`` /
``build_clip`` / ``build_vit`` from that folder: the same ``from_pretrained`` path real weights
take, with only the id swapped for a local directory (data.md §2.5). The ViLT folder holds a
``ViltForMaskedLM`` checkpoint, as ``dandelin/vilt-b32-mlm`` does, so the prefix stripping of the
real load is exercised too.

Registered stand-ins (``register_hf_tiny``): ``vilt-tiny``, ``clip-tiny``, ``vit-tiny`` and
``tv-vit-tiny`` (a random state dict in torchvision's key layout, read from a .pth file), each
with the capabilities of the backbone it stands in for, fed by the ``tiny`` dataset of
``fixtures.py`` (texts of number words, 4x4 images resized to the model's size).
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from fedbench.backbones.registry import BACKBONES, BackboneSpec

HIDDEN, LAYERS, HEADS = 32, 2, 2
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [str(i) for i in range(100)]
STAND_INS = {"vilt": "vilt-tiny", "clip": "clip-tiny", "vit": "vit-tiny", "torchvision-vit": "tv-vit-tiny"}
TV_HEAD = 12  # the tiny torchvision checkpoint's "ImageNet" head width

_ROOT: Path | None = None


def _root() -> Path:
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="fedbench-hf-tiny-"))
        atexit.register(shutil.rmtree, _ROOT, True)
    return _ROOT


def _processor_config(path: Path, kind: str, mean, std) -> None:
    (path / "preprocessor_config.json").write_text(
        json.dumps({"image_processor_type": kind, "image_mean": mean, "image_std": std})
    )


def tiny_vilt_dir(root: Path | None = None, seed: int = 0, pooler: bool = True) -> Path:
    from transformers import BertTokenizer, ViltConfig, ViltForMaskedLM, ViltModel

    path = (root or _root()) / f"vilt-{seed}-{int(pooler)}"
    if not (path / "config.json").exists():
        torch.manual_seed(seed)
        cfg = ViltConfig(
            hidden_size=HIDDEN,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            intermediate_size=64,
            image_size=64,
            patch_size=32,
            max_position_embeddings=40,
            vocab_size=len(WORDS),
        )
        model = ViltForMaskedLM(cfg) if pooler else ViltModel(cfg, add_pooling_layer=False)
        model.save_pretrained(path)
        BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(path)
        _processor_config(path, "ViltImageProcessor", [0.5] * 3, [0.5] * 3)
    return path


def clip_vocab() -> dict[str, int]:
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "0123456789abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    return vocab


def tiny_clip_dir(root: Path | None = None, seed: int = 0) -> Path:
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    path = (root or _root()) / f"clip-{seed}"
    if not (path / "config.json").exists():
        torch.manual_seed(seed)
        vocab = clip_vocab()
        cfg = CLIPConfig(
            text_config=dict(
                hidden_size=24,
                num_hidden_layers=LAYERS,
                num_attention_heads=HEADS,
                intermediate_size=48,
                vocab_size=len(vocab),
                max_position_embeddings=32,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            ),
            vision_config=dict(
                hidden_size=HIDDEN,
                num_hidden_layers=LAYERS,
                num_attention_heads=HEADS,
                intermediate_size=64,
                image_size=32,
                patch_size=16,
            ),
            projection_dim=16,
        )
        CLIPModel(cfg).save_pretrained(path)
        CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(path)
        _processor_config(
            path,
            "CLIPImageProcessor",
            [0.48145466, 0.4578275, 0.40821073],
            [0.26862954, 0.26130258, 0.27577711],
        )
    return path


def tiny_vit_dir(root: Path | None = None, seed: int = 0) -> Path:
    from transformers import ViTConfig, ViTModel

    path = (root or _root()) / f"vit-{seed}"
    if not (path / "config.json").exists():
        torch.manual_seed(seed)
        cfg = ViTConfig(
            hidden_size=HIDDEN,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            intermediate_size=64,
            image_size=32,
            patch_size=16,
        )
        ViTModel(cfg).save_pretrained(path)
        _processor_config(path, "ViTImageProcessor", [0.5] * 3, [0.5] * 3)
    return path


def torchvision_vit_state(
    seed: int = 0,
    hidden: int = HIDDEN,
    layers: int = LAYERS,
    patch: int = 16,
    image: int = 32,
    mlp: int = 64,
    head: int = TV_HEAD,
    legacy_mlp: bool = False,
) -> dict[str, torch.Tensor]:
    """A random state dict in torchvision's ``VisionTransformer`` key layout (``legacy_mlp``: the
    older ``mlp.linear_1`` / ``linear_2`` names)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    n = (image // patch) ** 2 + 1
    state = {
        "class_token": r(1, 1, hidden),
        "conv_proj.weight": r(hidden, 3, patch, patch, scale=0.05),
        "conv_proj.bias": r(hidden),
        "encoder.pos_embedding": r(1, n, hidden),
        "encoder.ln.weight": 1 + r(hidden),
        "encoder.ln.bias": r(hidden),
        "heads.head.weight": r(head, hidden),
        "heads.head.bias": r(head),
    }
    fc1, fc2 = ("linear_1", "linear_2") if legacy_mlp else ("0", "3")
    for i in range(layers):
        pre = f"encoder.layers.encoder_layer_{i}."
        state.update(
            {
                pre + "ln_1.weight": 1 + r(hidden),
                pre + "ln_1.bias": r(hidden),
                pre + "self_attention.in_proj_weight": r(3 * hidden, hidden),
                pre + "self_attention.in_proj_bias": r(3 * hidden),
                pre + "self_attention.out_proj.weight": r(hidden, hidden),
                pre + "self_attention.out_proj.bias": r(hidden),
                pre + "ln_2.weight": 1 + r(hidden),
                pre + "ln_2.bias": r(hidden),
                pre + f"mlp.{fc1}.weight": r(mlp, hidden),
                pre + f"mlp.{fc1}.bias": r(mlp),
                pre + f"mlp.{fc2}.weight": r(hidden, mlp),
                pre + f"mlp.{fc2}.bias": r(hidden),
            }
        )
    return state


def tiny_tv_vit_file(root: Path | None = None, seed: int = 0) -> Path:
    path = (root or _root()) / f"tv-vit-{seed}.pth"
    if not path.exists():
        torch.save(torchvision_vit_state(seed), path)
    return path


def tiny_tv_vit(**options):
    from fedbench.backbones.tv_vit import TorchvisionViTOptions, build_torchvision_vit

    return build_torchvision_vit(
        TorchvisionViTOptions(
            **{"weights": str(tiny_tv_vit_file()), "resize": 40, "crop": 32, "heads": HEADS, **options}
        )
    )


def tiny_vilt(**options):
    from fedbench.backbones.vilt import ViltOptions, build_vilt

    return build_vilt(ViltOptions(model=str(tiny_vilt_dir()), **options))


def tiny_clip(**options):
    from fedbench.backbones.clip import ClipOptions, build_clip

    return build_clip(ClipOptions(model=str(tiny_clip_dir()), **{"max_text_tokens": 16, **options}))


def tiny_vit(**options):
    from fedbench.backbones.vit import ViTOptions, build_vit

    return build_vit(ViTOptions(model=str(tiny_vit_dir()), **options))


def register_hf_tiny() -> None:
    """Register the stand-ins, with the real specs' options and capabilities (the real spec is
    registered by ``fedbench.backbones.builtin``; ``model`` defaults to the tiny folder)."""
    for real, tiny, make in (
        ("vilt", "vilt-tiny", tiny_vilt_dir),
        ("clip", "clip-tiny", tiny_clip_dir),
        ("vit", "vit-tiny", tiny_vit_dir),
    ):
        spec = BACKBONES.get(real)

        def build(options, spec=spec, make=make):
            options = options if options is not None else spec.options()
            if options.model == spec.options().model:  # the real default id -> the tiny folder
                options = replace(options, model=str(make()))
            if spec.name == "clip" and options.max_text_tokens > 32:
                options = replace(options, max_text_tokens=16)  # the tiny text tower has 32 positions
            return spec.build(options)

        BACKBONES.register(
            BackboneSpec(
                tiny, build, spec.options, f"test stand-in for {real}: a tiny random model", spec.capabilities
            )
        )
    tv = BACKBONES.get("torchvision-vit")

    def build_tv(options, spec=tv):
        options = options if options is not None else spec.options()
        if not options.weights:  # the stand-in's checkpoint, at the tiny model's 32 px
            options = replace(options, weights=str(tiny_tv_vit_file()), resize=40, crop=32, heads=HEADS)
        return spec.build(options)

    BACKBONES.register(
        BackboneSpec(
            "tv-vit-tiny",
            build_tv,
            tv.options,
            "test stand-in for torchvision-vit: a tiny random checkpoint",
            tv.capabilities,
        )
    )
