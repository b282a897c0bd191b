"""PPT's client model (methods.md §3a-b): an L2P prompt pool on the frozen backbone.

- Pool: [M, H] prompts, one token each, U(-v, v) as PFPT's ``Pool`` (v from
  :func:`~fedbench.methods.ppt.prompted.prompt_init_bound`).
- Query: the frozen backbone's read-out token ([CLS]) on the un-prompted input, computed without
  gradient, through a trainable projection W_q = Linear(H, H, no bias), init U(-1, 1); the key
  of a prompt is the prompt itself; relevance = cosine of query and key.
- The kappa most relevant prompts (per sample, or the code's batch-wise majority) are prepended
  before layer 0; the adaptor head reads the [CLS] behind them.
- Loss: cross-entropy + the query-key term (config.py, ``retrieval_sign``).
- Usage: every retrieval of every local batch of the round is counted per prompt; the client
  sends the counts divided by their maximum (the code's ``trained_prompts_checklist``), and the
  server matches only the rows some client used.

Trainable and shared: pool, W_q, adaptor head (nothing personal).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fedbench.errors import ConfigError
from fedbench.methods.base import ClientModule
from fedbench.methods.ppt.config import PPTOptions
from fedbench.methods.ppt.prompted import (
    AdaptorHead,
    adaptor_input,
    adaptor_width,
    pfpt_adam,
    prompt_init_bound,
    prompted_readout,
    query_features,
    visible_tokens,
)

POOL_KEY = "pool"


def similarity(query: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """cos(q_b, p_j): [B, H], [M, H] -> [B, M]."""
    return F.normalize(query, dim=-1) @ F.normalize(pool, dim=-1).T


def select(sim: torch.Tensor, kappa: int, selection: str) -> torch.Tensor:
    """Retrieved indices [B, kappa]: each row's top-kappa ("sample"), or for every row the kappa
    indices most frequent among the rows' top-kappa lists ("batch", L2P's ``batchwise_prompt``;
    ties go to the lower index, where the code's ``torch.unique``/``topk`` leaves them open)."""
    top = sim.detach().topk(kappa, dim=1).indices
    if selection == "sample":
        return top
    counts = torch.bincount(top.flatten(), minlength=sim.shape[1])
    order = torch.sort(counts, descending=True, stable=True).indices[:kappa]
    return order[None].expand(sim.shape[0], -1)


def select_in_chunks(sim: torch.Tensor, kappa: int, selection: str, chunk: int | None) -> torch.Tensor:
    """:func:`select` over consecutive chunks of ``chunk`` rows (None: the whole batch), as the code's
    batch-wise vote sees its loader's batches; per-sample selection does not depend on it."""
    if chunk is None or selection != "batch" or sim.shape[0] <= chunk:
        return select(sim, kappa, selection)
    return torch.cat([select(part, kappa, selection) for part in sim.split(chunk)])


def usage_counts(idx: torch.Tensor, pool_size: int) -> torch.Tensor:
    """How many samples of a batch were given each prompt: [B, kappa] -> [M] float.

    Under batch-wise selection every sample gets the batch's prompts, so a batch adds B to each;
    the code adds 1 per batch. After division by the maximum the two agree whenever the batches
    are equally large, and the server only looks at which entries are non-zero.
    """
    return torch.bincount(idx.flatten().cpu(), minlength=pool_size).to(torch.float64)


def normalised_usage(counts: torch.Tensor) -> list[float]:
    """counts / max(counts) (all zeros if nothing was counted), as a plain list for the update."""
    top = float(counts.max()) if counts.numel() else 0.0
    return (counts / top).tolist() if top > 0 else [0.0] * counts.numel()


def query_key_term(
    sim: torch.Tensor, idx: torch.Tensor, kappa: int, weight: float, sign: str
) -> torch.Tensor:
    """weight * (kappa - S) for "pull", weight * S for "push" (the code), with S the batch mean of
    the summed cosine between each query and its retrieved keys (the code's ``reduce_sim``)."""
    s = sim.gather(1, idx).sum(dim=1).mean()
    return weight * (kappa - s) if sign == "pull" else weight * s


class PPTModule(ClientModule):
    """L2P pool + query projection + adaptor head; see the module docstring."""

    def __init__(self, backbone, num_classes, train, options: PPTOptions):
        super().__init__(backbone, num_classes, train, options)
        h = backbone.hidden_size
        v = prompt_init_bound(h)
        self.pool = nn.Parameter(torch.empty(options.pool_size, h).uniform_(-v, v))
        self.query = nn.Linear(h, h, bias=False)
        nn.init.uniform_(self.query.weight, -1.0, 1.0)
        self.head = AdaptorHead(
            adaptor_width(backbone), num_classes, options.adaptor_width, options.adaptor_dropout
        )
        self.usage = torch.zeros(options.pool_size, dtype=torch.float64)
        self._reg: torch.Tensor | None = None

    @property
    def batch_independent(self) -> bool:  # batch-wise majority couples the samples of a batch
        return self.options.selection != "batch"

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        opts = self.options
        if self.pool.shape[0] < opts.kappa:
            raise ConfigError(
                f"the PPT pool holds {self.pool.shape[0]} prompts, fewer than kappa={opts.kappa}"
            )
        tokens, keep = visible_tokens(self.backbone, batch)
        feature = query_features(self.backbone, batch)
        sim = similarity(self.query(feature.to(self.pool.dtype)), self.pool)
        idx = (
            select(sim, opts.kappa, opts.selection)
            if self.training
            else select_in_chunks(sim, opts.kappa, opts.selection, opts.eval_vote_batch)
        )
        if self.training:  # usage and the query-key term belong to local training only
            if self.usage.numel() != self.pool.shape[0]:
                self.usage = torch.zeros(self.pool.shape[0], dtype=torch.float64)
            self.usage += usage_counts(idx, self.pool.shape[0])
            self._reg = query_key_term(sim.float(), idx, opts.kappa, opts.lambda_r, opts.retrieval_sign)
        return self.head(
            adaptor_input(self.backbone, prompted_readout(self.backbone, tokens, keep, self.pool[idx]))
        )

    # ----- federation hooks -----------------------------------------------------------------
    def extra_loss(self, batch, logits):
        reg, self._reg = self._reg, None
        return reg if self.options.lambda_r > 0 else None

    def on_round_start(self, global_state, round_index: int, payload=None) -> None:
        """Usage counts cover every local batch of this round (the code resets its checklist
        after each aggregation). ``payload["start"]``: tensors to start from instead of the ones
        loaded (under ``alias_shared`` the pool comes from the previous client of the chain and
        the rest from the global state; config.py)."""
        if payload and "start" in payload:
            self.load_trainable_state(payload["start"])
        self.usage = torch.zeros(self.pool.shape[0], dtype=torch.float64)
        self._reg = None

    def round_metadata(self) -> dict[str, list[float]]:
        return {"usage": normalised_usage(self.usage)}

    def configure_optimizers(self):
        return pfpt_adam(self, self.lr)
