"""What the transformers backbones (ViLT, CLIP, ViT) share: loading, a pre-LN layer, text inputs.

- **Loading** goes through ``from_pretrained`` with ``local_files_only`` (offline by default), so
  real weights (the user's HF cache or a folder) and the tests' tiny ``save_pretrained`` models
  take the same path; when the weights are absent the user gets one line naming the model and
  how to get it, not a hub traceback. A weights folder found but unusable (a truncated
  ``model.safetensors``, a garbage ``config.json``, only pickled ``pytorch_model.bin`` weights,
  which fedbench never unpickles) is one line naming the file and the fix
  (:mod:`fedbench.backbones.weights_folder`).
- **Layers** are run by :func:`prenorm_layer`, written against the sub-modules' weights rather
  than the layers' ``forward`` signatures, which changed between transformers 4.x and 5.x (and
  between ViT and ViLT). A bool keep mask goes to ``scaled_dot_product_attention``, so the same
  code runs under ``bf16-mixed`` and ``16-mixed`` autocast without finfo tricks.
- **Pixels** and **token ids** are cached on disk and read memory-mapped
  (:mod:`fedbench.backbones.pixels`, :mod:`fedbench.backbones.tokens`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fedbench.backbones.attention import attention
from fedbench.batch import TEXT_MISSING
from fedbench.data.base import ModalData
from fedbench.data.bundle import BUNDLE_SPLITS, DataBundle
from fedbench.errors import ConfigError, DataError

log = logging.getLogger(__name__)


# ----- loading ---------------------------------------------------------------------------------
def _quiet():
    """Silence transformers' load reports and progress bars (keeps a one-line error one line)."""
    from transformers.utils import logging as hf_logging

    state = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    def restore() -> None:
        hf_logging.set_verbosity(state[0])
        if state[1]:
            hf_logging.enable_progress_bar()

    return restore


def how_to_get(model: str) -> str:
    return (
        f"on a machine with internet run `hf download {model}` (older huggingface_hub: `huggingface-cli "
        f"download {model}`) and copy the HF cache, or set backbone.options.model to a folder written by "
        "save_pretrained"
    )


def load_model(cls, model: str, local_files_only: bool):
    """(model in eval mode, names of weights the checkpoint lacked) via ``cls.from_pretrained``,
    from safetensors only (``use_safetensors``: a pickled ``.bin`` is never loaded)."""
    from fedbench.backbones.weights_folder import check_weights

    check_weights(model, local_files_only)
    restore = _quiet()
    try:
        net, info = cls.from_pretrained(
            model, local_files_only=local_files_only, output_loading_info=True, use_safetensors=True
        )
    except (OSError, ValueError) as err:
        where = (
            "the Hugging Face cache or as a local folder"
            if local_files_only
            else "the hub, the HF cache or a local folder"
        )
        raise DataError(
            f"backbone.options.model: weights of {model!r} were not found in {where}; {how_to_get(model)}"
        ) from err
    finally:
        restore()
    return net.eval(), set(info.get("missing_keys", ()))


def load_tokenizer(model: str, local_files_only: bool):
    from transformers import AutoTokenizer

    from fedbench.backbones.weights_folder import check_config

    check_config(model, local_files_only)
    restore = _quiet()
    try:
        return AutoTokenizer.from_pretrained(model, local_files_only=local_files_only)
    except (OSError, ValueError) as err:
        raise DataError(
            f"backbone.options.model: the tokenizer of {model!r} was not found; {how_to_get(model)}"
        ) from err
    finally:
        restore()


def image_stats(model: str, local_files_only: bool, mean, std) -> tuple[list[float], list[float]]:
    """The checkpoint's image mean/std from its preprocessor_config.json, else the family's."""
    from transformers.utils import cached_file

    try:
        path = cached_file(
            model,
            "preprocessor_config.json",
            local_files_only=local_files_only,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
    except (OSError, ValueError):
        path = None
    if path:
        with open(path) as fh:
            cfg = json.load(fh)
        mean, std = cfg.get("image_mean", mean), cfg.get("image_std", std)
    return [float(m) for m in mean], [float(s) for s in std]


def weights_fingerprint(module: nn.Module) -> str:
    """SHA-256 of every tensor of ``module``: keys caches of frozen features by the weights
    themselves, so a local folder overwritten in place never serves stale features."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


# ----- one pre-LN transformer layer --------------------------------------------------------------
@dataclass
class BlockParts:
    ln1: nn.Module
    q: nn.Linear
    k: nn.Linear
    v: nn.Linear
    o: nn.Linear
    ln2: nn.Module
    fc1: nn.Linear
    act: nn.Module
    fc2: nn.Linear


def block_parts(layer: nn.Module) -> BlockParts:
    """The weights of a pre-LN encoder layer in any of the layouts transformers uses."""
    g = lambda path: _get(layer, path)  # noqa: E731
    if hasattr(layer, "self_attn"):  # CLIP
        a, m = layer.self_attn, layer.mlp
        return BlockParts(
            layer.layer_norm1,
            a.q_proj,
            a.k_proj,
            a.v_proj,
            a.out_proj,
            layer.layer_norm2,
            m.fc1,
            m.activation_fn,
            m.fc2,
        )
    if g("attention.q_proj") is not None:  # ViT in transformers 5.x
        a, m = layer.attention, layer.mlp
        return BlockParts(
            layer.layernorm_before,
            a.q_proj,
            a.k_proj,
            a.v_proj,
            a.o_proj,
            layer.layernorm_after,
            m.fc1,
            m.activation_fn,
            m.fc2,
        )
    if g("attention.attention.query") is not None:  # ViLT (and ViT in 4.x)
        s = layer.attention.attention
        return BlockParts(
            layer.layernorm_before,
            s.query,
            s.key,
            s.value,
            layer.attention.output.dense,
            layer.layernorm_after,
            layer.intermediate.dense,
            layer.intermediate.intermediate_act_fn,
            layer.output.dense,
        )
    raise ConfigError(
        f"backbone: unsupported layer layout {type(layer).__name__}; this transformers version is not "
        "supported"
    )


def encoder_layers(model: nn.Module) -> list[nn.Module]:
    """The encoder's layers wherever this transformers version keeps them (ViT: ``layers`` in
    5.x, ``encoder.layer`` in 4.x; ViLT ``encoder.layer``; CLIP ``encoder.layers``)."""
    for path in ("encoder.layer", "encoder.layers", "layers"):
        found = _get(model, path)
        if found is not None:
            return list(found)
    raise ConfigError(
        f"backbone: cannot find the layers of {type(model).__name__}; this transformers version is not "
        "supported"
    )


def _get(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def attention_mask(keep: torch.Tensor) -> torch.Tensor | None:
    """[B, 1, 1, S] bool for ``scaled_dot_product_attention``, or None when every token is kept
    (which lets it use its fastest kernels)."""
    return None if bool(keep.all()) else keep[:, None, None, :].to(torch.bool)


def prenorm_layer(p: BlockParts, x: torch.Tensor, mask: torch.Tensor | None, heads: int) -> torch.Tensor:
    """x + attn(ln1(x)), then + mlp(ln2(.)); ``mask`` from :func:`attention_mask`."""
    b, s, _ = x.shape
    h = p.ln1(x)

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.view(b, s, heads, -1).transpose(1, 2)

    q, k, v = split(p.q(h)), split(p.k(h)), split(p.v(h))
    ctx = attention(q, k, v, mask).transpose(1, 2).reshape(b, s, -1)
    x = x + p.o(ctx)
    return x + p.fc2(p.act(p.fc1(p.ln2(x))))


def run_prenorm(
    parts: list[BlockParts], x: torch.Tensor, keep: torch.Tensor, heads: int, prompter=None
) -> torch.Tensor:
    """Every layer, ``prompter(i, x, keep)`` before layer i (a method prepends tokens there)."""
    mask = attention_mask(keep)
    for i, p in enumerate(parts):
        if prompter is not None:
            x, new_keep = prompter(i, x, keep)
            if new_keep is not keep:  # rebuilt only when the prompter changed it
                keep, mask = new_keep, attention_mask(new_keep)
        x = prenorm_layer(p, x, mask, heads)
    return x


# ----- text ------------------------------------------------------------------------------------
def drop_missing_text(
    ids: torch.Tensor, keep: torch.Tensor, code: torch.Tensor, empty: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows whose code is TEXT_MISSING become the tokenisation of the empty string (``empty``,
    e.g. [CLS][SEP]): MAP feeds a missing text as ``''``."""
    gone = code == TEXT_MISSING
    if not bool(gone.any()):
        return ids, keep
    ids, keep = ids.clone(), keep.clone()
    n = min(len(empty), ids.shape[1])
    ids[gone, :n] = empty[:n].to(ids.device)
    keep[gone] = False
    keep[gone, :n] = True
    return ids, keep


def make_bundle(
    data: ModalData, columns: dict[str, torch.Tensor], info: dict, padded: tuple[str, ...] = ()
) -> DataBundle:
    """The bundle of ``data`` with ``columns`` plus ``row`` (each sample's row index): methods that
    keep per-row tables (FedMVP's frozen features, CLIP's text table) find their rows by it."""
    columns = {**columns, "row": torch.arange(len(data))}
    return DataBundle(
        name=data.name,
        num_classes=data.num_classes,
        label_names=list(data.label_names),
        labels=torch.as_tensor(data.labels, dtype=torch.float32 if data.multilabel else torch.long),
        columns=columns,
        splits={k: np.asarray(v) for k, v in data.splits.items() if k in BUNDLE_SPLITS},
        metric_spec=data.metric,
        info={**data.info, **info},
        padded=padded,
    )


def checked_size(size: int, default: int, patch: int, field: str = "backbone.options.image_size") -> int:
    """The image side to use: ``default`` (the checkpoint's) when 0; a multiple of the patch size."""
    size = size or default
    if size < patch or size % patch:
        raise ConfigError(
            f"{field}: {size} must be a positive multiple of the patch size {patch} (0 = the checkpoint's "
            f"{default})"
        )
    return size
