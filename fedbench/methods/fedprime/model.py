"""FedPrime's client model (methods.md §2a-b) and its one-pool ablations FED-INTER and FED-INTRA.

Each pool is a prompt matrix [M, H] (the keys are the prompts themselves, as in the code) plus
its own query projection W_q = Linear(H, H, no bias). The projections are personal: they stay on
the client and are never aggregated (risk 2). The retrieved prompts of every pool
([intra kappa ; inter kappa] tokens) are prepended once, before layer 0, with keep mask 1; the
pooler reads position 0 (the code) or the text [CLS] behind the prompts.

Initialisation as the official ``Pool``: prompts U(-v, v) with v = sqrt(6 / (3*32*32 + H)), the
Xavier bound of ViLT's 32x32 RGB patch projection at this backbone's width; W_q U(-1, 1). The
queries are normalised, so W_q's scale only sets how fast an optimiser turns it.

Why W_q gets its own update rule. Retrieval indices are discrete, so the cross-entropy trains
the retrieved prompts, the pooler and the head, and W_q learns only from the lambda_r-weighted
regulariser. Under the code's plain SGD that weight (0.01) keeps W_q almost still; AdamW's step
does not depend on the gradient's scale, so inside the AdamW groups W_q moves at full speed
whatever lambda_r is, and with the "pull" sign the queries chase the prompts they already use
(fewer and fewer prompts in use). ``query_update="sgd"`` gives W_q a plain-SGD step of its own.

Local batches. With ``batch_size`` set (the code's 512 / 64), the loader's batches of a local
epoch are collected and cut into local batches of that size; each is one optimiser step and,
with ``selection="batch"``, one majority vote (:mod:`.training`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fedbench.errors import ConfigError
from fedbench.methods.base import ClientModule
from fedbench.methods.fedprime.config import FedPrimeOptions
from fedbench.methods.fedprime.diagnostics import UsageTracker
from fedbench.methods.fedprime.retrieval import (
    masked_token_max,
    padded_token_max,
    retrieval_regulariser,
    select,
    similarity,
)
from fedbench.methods.fedprime.training import local_batch_size, majority_indices, split_batches
from fedbench.methods.heads import ClassifierHead, Pooler

INTRA, INTER = "intra", "inter"


def prompt_init_bound(hidden: int) -> float:
    """v of the U(-v, v) prompt init; see the module docstring."""
    return math.sqrt(6.0 / (3 * 32 * 32 + hidden))


class FedPrimeModule(ClientModule):
    """Intra- and inter-client prompt pools with input-adaptive retrieval."""

    pools: tuple[str, ...] = (INTRA, INTER)

    def __init__(self, backbone, num_classes, train, options: FedPrimeOptions):
        super().__init__(backbone, num_classes, train, options)
        h, v = backbone.hidden_size, prompt_init_bound(backbone.hidden_size)
        for name in self.pools:
            self.register_parameter(
                f"{name}_pool", nn.Parameter(torch.empty(options.pool_size, h).uniform_(-v, v))
            )
            query = nn.Linear(h, h, bias=False)
            nn.init.uniform_(query.weight, -1.0, 1.0)
            query.weight.requires_grad_(options.query_update != "frozen")
            self.add_module(f"{name}_query", query)
            # W_q(0): the drift diagnostic's reference and, with global_query="initial", the
            # projection the global model is scored with (every client starts from it)
            self.register_buffer(f"{name}_query_init", query.weight.detach().clone(), persistent=False)
        self.pooler = Pooler(h, backbone.pooler_state())
        self.head = ClassifierHead(h, num_classes)
        self.automatic_optimization = options.batch_size is None and options.batch_size_both is None
        self.usage = UsageTracker(self.pools)
        self._used: dict[str, set[int]] = {name: set() for name in self.pools}
        self._reg: torch.Tensor | None = None
        self._buffer: list[dict[str, torch.Tensor]] = []
        self._eval_inter: list[int] = []  # inter prompts of the last evaluation batch
        self._pad_rows: torch.Tensor | None = None

    def personal_names(self) -> set[str]:
        """The query projections stay on their client (risk 2); pools, pooler and head are shared."""
        return {
            f"{name}_query.weight"
            for name in self.pools
            if getattr(self, f"{name}_query").weight.requires_grad
        }

    @property
    def batch_independent(self) -> bool:  # batch-wise majority selection couples a batch's samples
        return self.options.selection != "batch"

    # ----- retrieval --------------------------------------------------------------------------
    def query_weight(self, name: str) -> torch.Tensor:
        if not self.training and self.options.global_query == "initial":
            return getattr(self, f"{name}_query_init")
        return getattr(self, f"{name}_query").weight

    def pad_rows(self, batch: dict[str, torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        """[L, H]: the backbone's [PAD] embedding at text positions 0..L-1, L its fixed text length."""
        width = batch["text_ids"].shape[1] if "text_ids" in batch else 0
        rows = self._pad_rows
        if rows is None or rows.device != like.device or rows.shape[0] < width:
            embed = getattr(self.backbone, "text_embeddings", None)
            if embed is None or "text_ids" not in batch:
                raise ConfigError(
                    "method.options.query_padding='pad' needs a backbone with text_embeddings and text_ids "
                    "(the embedded one); use mask"
                )
            length = max(width, getattr(getattr(self.backbone, "options", None), "max_text_tokens", 0) or 0)
            pad_id = getattr(getattr(self.backbone, "tokenizer", None), "pad_token_id", None) or 0
            with torch.no_grad():
                rows = embed(torch.full((1, length), pad_id, dtype=torch.long, device=like.device))[0].float()
            self._pad_rows = rows
        return rows

    def query_input(
        self, batch: dict[str, torch.Tensor], tokens: torch.Tensor, keep: torch.Tensor
    ) -> torch.Tensor:
        """The max-pooled frozen input tokens [B, H] the query projection reads."""
        tokens = tokens.detach()
        if self.options.query_padding == "mask":
            return masked_token_max(tokens, keep)
        return padded_token_max(
            tokens.float(), keep, batch["text_ids"].shape[1], self.pad_rows(batch, tokens)
        )

    def similarities(self, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
        """cos(q(x), k(p)) per pool: {pool: [B, M]}."""
        out = {}
        for name in self.pools:
            pool: torch.Tensor = getattr(self, f"{name}_pool")
            if pool.shape[0] < self.options.kappa:
                raise ConfigError(
                    f"the {name} pool holds {pool.shape[0]} prompts, fewer than kappa={self.options.kappa}"
                )
            weight = self.query_weight(name)
            out[name] = similarity(pooled.to(weight.dtype) @ weight.T, pool)
        return out

    def retrieve(
        self,
        batch: dict[str, torch.Tensor],
        tokens: torch.Tensor,
        keep: torch.Tensor,
        indices: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(prompts [B, n_pools * kappa, H], regulariser, retrieved indices {pool: [B, kappa]});
        ``indices`` overrides the selection (a local batch's vote over several loader batches)."""
        opts = self.options
        sims = self.similarities(self.query_input(batch, tokens, keep))
        if indices is None:
            indices = {name: select(sim, opts.kappa, opts.selection) for name, sim in sims.items()}
        reg = sum(
            retrieval_regulariser(
                sims[name].float(), indices[name], opts.kappa, opts.lambda_r, opts.retrieval_sign
            )
            for name in self.pools
        )
        prompts = torch.cat([getattr(self, f"{name}_pool")[indices[name]] for name in self.pools], dim=1)
        return prompts, reg, indices

    def forward(
        self, batch: dict[str, torch.Tensor], indices: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Logits [B, C]; ``indices`` as in :meth:`retrieve`."""
        tokens, keep = self.backbone.embed(batch)
        prompts, reg, indices = self.retrieve(batch, tokens, keep, indices)
        if self.training:  # used-prompt bookkeeping and the loss term belong to local training only
            self._reg = reg
            self.note_used(indices, batch["code"])
        elif INTER in indices:
            self._eval_inter = indices[INTER].unique().tolist()

        def prompter(i: int, x: torch.Tensor, k: torch.Tensor):
            if i != 0:
                return x, k
            ones = torch.ones(prompts.shape[:2], dtype=torch.bool, device=k.device)
            return torch.cat([prompts.to(x.dtype), x], 1), torch.cat([ones, k], 1)

        hidden = self.backbone.run_layers(tokens, keep, prompter)
        if self.options.pool_token == "prompt":  # the first retrieved prompt, as the official code
            return self.head(self.pooler(hidden[:, 0]))
        return self.head(self.pooler(self.backbone.readout(hidden, prompts.shape[1])))

    def note_used(self, indices: dict[str, torch.Tensor], codes: torch.Tensor) -> None:
        for name, idx in indices.items():
            self.usage.record(name, idx, codes)
            used = set(idx.unique().tolist())
            if self.options.used_record == "last_batch":  # the code's checklist is reset every forward
                self._used[name] = used
            else:
                self._used[name] |= used

    # ----- local training -----------------------------------------------------------------------
    def extra_loss(self, batch, logits):
        reg, self._reg = self._reg, None
        return reg if self.options.lambda_r > 0 else None

    def training_step(self, batch, batch_idx):
        if self.automatic_optimization:
            return super().training_step(batch, batch_idx)
        self._buffer.append(batch)  # the local epoch's batches, cut into local batches at its end
        if batch_idx + 1 < self.trainer.num_training_batches:
            return None
        chunks, self._buffer = self._buffer, []
        size = local_batch_size(self.options, torch.cat([c["code"] for c in chunks]), len(chunks[0]["code"]))
        for group in split_batches(chunks, size):
            self.local_step(group)
        return None

    def local_step(self, group: list[dict[str, torch.Tensor]]) -> None:
        """One optimiser step on one local batch given as slices of loader batches; with
        ``selection="batch"`` every sample uses the batch's majority vote (W_q and the pools do not
        change within the step, so the vote can be taken before the forward passes)."""
        opt = self.optimizers()
        opt.zero_grad()
        n = sum(len(c["code"]) for c in group)
        votes = majority_indices(self, group) if self.options.selection == "batch" else None
        total = 0.0
        for chunk in group:
            idx = None if votes is None else {k: v.expand(len(chunk["code"]), -1) for k, v in votes.items()}
            logits = self(chunk, idx)
            loss = self.task_loss(logits, chunk["label"])
            extra = self.extra_loss(chunk, logits)
            loss = (loss if extra is None else loss + extra) * (len(chunk["code"]) / n)
            self.manual_backward(loss)
            total += float(loss.detach())
        opt.step()
        self.query_sgd_step()
        self._loss_sum += total
        self._loss_n += 1

    def query_params(self) -> list[nn.Parameter]:
        """W_q of every pool when it has its own SGD step (query_update="sgd")."""
        if self.options.query_update != "sgd":
            return []
        return [getattr(self, f"{name}_query").weight for name in self.pools]

    def query_sgd_step(self) -> None:
        """W_q <- W_q - query_lr * s * grad, s the round's lr-schedule factor when the main lr
        follows train.lr (1 with a fixed lr): plain SGD, so lambda_r scales the step."""
        scale = self.lr / self.train_settings.lr if self.options.lr is None else 1.0
        with torch.no_grad():
            for p in self.query_params():
                if p.grad is not None:
                    p -= self.options.query_lr * scale * p.grad
                    p.grad = None

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        optimizer.step(closure=optimizer_closure)
        self.query_sgd_step()

    def configure_optimizers(self):
        opts = self.options
        own = {id(p) for p in self.query_params()}
        params = [(n, p) for n, p in self.named_parameters() if p.requires_grad and id(p) not in own]
        lr = opts.lr if opts.lr is not None else self.lr
        if opts.optimizer == "sgd":  # the code: momentum 0, weight decay 0
            return torch.optim.SGD([p for _, p in params], lr=lr, momentum=0.0, weight_decay=0.0)
        decay = [p for n, p in params if p.ndim >= 2 and "norm" not in n.lower()]
        no_decay = [p for n, p in params if not (p.ndim >= 2 and "norm" not in n.lower())]
        groups = [
            {"params": decay, "weight_decay": self.train_settings.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=lr)

    # ----- federation hooks -------------------------------------------------------------------
    def on_round_start(self, global_state, round_index: int, payload=None) -> None:
        """``payload["start"]``: the state to start from instead of the one loaded (the code's
        first round, where every client trains its own copy even under the cyclic schedule)."""
        if payload and "start" in payload:
            self.load_trainable_state(payload["start"])
        self._used = {name: set() for name in self.pools}
        self.usage.reset()
        self._reg = None
        self._buffer = []

    def round_metadata(self) -> dict:
        meta: dict = {f"used_{name}": sorted(self._used[name]) for name in self.pools}
        meta["usage"] = self.usage.as_meta()
        with torch.no_grad():
            meta["query_drift"] = {
                name: [
                    float(
                        (getattr(self, f"{name}_query").weight - getattr(self, f"{name}_query_init")).norm()
                    ),
                    float(getattr(self, f"{name}_query_init").norm()),
                ]
                for name in self.pools
            }
        if self.options.server_used and INTER in self.pools:
            meta["server_used_inter"] = list(self._eval_inter)
        return meta


class FedInterModule(FedPrimeModule):
    """FED-INTER: the inter-client pool alone (kappa prompts), aggregated by clustering."""

    pools = (INTER,)


class FedIntraModule(FedPrimeModule):
    """FED-INTRA: the intra-client pool alone (kappa prompts), aggregated by FedAvg."""

    pools = (INTRA,)
