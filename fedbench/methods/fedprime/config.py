"""FedPrime's options (methods.md §2), in two sets: ``fedprime`` (the paper's method, made a
correct federated algorithm where the text leaves room) and ``fedprime-official`` (what the
official code, hangpt01/Submission12364_FedPrime, actually does). Every difference between the two
is a named option, so each behaviour can be switched on its own; docs/fedprime.md has the table
and the validation numbers behind the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedbench import checks
from fedbench.aggregation.matched_centres import MatcherOptions
from fedbench.errors import ConfigError

CHOICES = {
    "retrieval_sign": ("pull", "push"),
    "selection": ("sample", "batch"),
    "pool_token": ("prompt", "cls"),
    "query_padding": ("mask", "pad"),
    "query_update": ("sgd", "frozen", "adamw"),
    "optimizer": ("adamw", "sgd"),
    "used_record": ("round", "last_batch"),
    "global_query": ("mean", "initial"),
}


@dataclass
class FedPrimeOptions(MatcherOptions):
    """Settings of the FedPrime client model and server (defaults: the paper mode, ``fedprime``).

    Client model
    - pool_size: prompts per pool at round 0 (tau, 20); the inter pool then follows the server.
    - kappa: prompts retrieved per pool (top_k 5), so 2 * kappa prepended tokens.
    - lambda_r, retrieval_sign: the retrieval regulariser; "pull" adds lambda_r * (kappa - S), the
      paper's "distance penalty", "push" the code's +lambda_r * S (S = summed cosine, risk 3).
    - selection: "sample" (each sample its own top-kappa; paper: input-adaptive) or "batch" (the
      code's majority vote over the local batch, L2P's batchwise_prompt).
    - batch_size, batch_size_both: the local batch in samples (None: train.batch_size). The code
      uses 512 (Food-101, one modality missing) and 64 (both missing); a client holding both
      text-missing and image-missing samples uses batch_size_both. Loader batches are accumulated
      into one optimiser step and one vote, so a 512 batch on a ~200-sample client is one step
      per epoch with every sample on the same prompts, as in the code.
    - pool_token: the pooler reads "prompt" (position 0, the code) or the text "cls".
    - query_padding: "mask" max-pools the query over real tokens only; "pad" also over the
      [PAD] embeddings up to the backbone's fixed text length (the code pools every position, so a
      missing text shows as a block of PAD embeddings).
    Query projection W_q (personal, never aggregated)
    - query_update: "sgd" = its own plain-SGD group at query_lr (times the round's lr schedule),
      so its step scales with the regulariser's weight lambda_r, as under the code's SGD; "frozen"
      = never trained; "adamw" = in the main AdamW groups (the old fedbench behaviour: AdamW's
      step ignores the gradient's scale, so lambda_r has no effect on W_q).
    - global_query: the global model is scored with the clients' sample-weighted "mean" W_q, or
      with the "initial" one (the code's server never updates its own W_q).
    Optimiser
    - optimizer, lr: "adamw" with train.lr and its schedule (lr None), or the code's plain "sgd"
      (lr 0.05, constant when lr is set).
    Server
    - used_record: inter prompts count as used in any local batch of the round ("round", PFPT's
      rule) or only in the last one ("last_batch", the code: its checklist is reset every forward);
      server_used adds the inter prompts of the server's last evaluation batch (the code).
    - matcher_cost: "joint" (fedbench's joint likelihood) or "official" (PFPT's Bernoulli term
      log Bern(c_old; pi) over assigned entries); prob_matching.py has both.
    - new_cluster_cost: price of a new inter centre: "auto" (calibrated from the prompts' own
      distances, matching_calibration.py), a number (nats per prompt dimension), or None (none;
      with matcher_cost="official" that is the code's matcher).
    - standardise: run the matcher on (x - mean) / rms (its unit-scale std needs it; "auto"
      implies it); centre_update: "mean" = each centre is the sample-weighted mean of its matched
      prompts, "matcher" = keep the matcher's centres (the code). Neither is in the paper or code.
    - outer_loops, matcher_hidden, matcher_lr: the matcher's settings (5, 128, 1e-3).
    """

    pool_size: int = 20
    kappa: int = 5
    lambda_r: float = 0.01
    retrieval_sign: str = "pull"
    selection: str = "sample"
    batch_size: int | None = None
    batch_size_both: int | None = None
    pool_token: str = "prompt"
    query_padding: str = "mask"
    query_update: str = "sgd"
    query_lr: float = 0.05
    global_query: str = "mean"
    optimizer: str = "adamw"
    lr: float | None = None
    used_record: str = "round"
    server_used: bool = False
    new_cluster_cost: float | str | None = "auto"
    outer_loops: int = 5  # the matcher's other settings: MatcherOptions' defaults

    def new_centre_price(self) -> float | str | None:
        return self.new_cluster_cost

    def validate(self) -> None:
        checks.at_least("method.options.kappa", self.kappa, 1, "5")
        if self.pool_size < self.kappa:
            raise ConfigError(
                f"method.options.pool_size: must be >= kappa ({self.kappa}), got {self.pool_size}; try 20"
            )
        checks.at_least("method.options.lambda_r", self.lambda_r, 0, "0.01")
        for name, allowed in CHOICES.items():
            checks.choice(f"method.options.{name}", getattr(self, name), allowed)
        for name in ("batch_size", "batch_size_both"):
            checks.at_least(f"method.options.{name}", getattr(self, name), 1, "null", null="train.batch_size")
        checks.at_least("method.options.query_lr", self.query_lr, 0, "0.05")
        if self.lr is not None:
            checks.positive("method.options.lr", self.lr, "null")
        self.check_matcher()
        cost = self.new_cluster_cost
        if isinstance(cost, str):
            if cost != "auto":
                raise ConfigError(
                    f"method.options.new_cluster_cost: must be 'auto', a number >= 0 or null, got {cost!r}; "
                    "try auto"
                )
        elif cost is not None:
            checks.at_least("method.options.new_cluster_cost", cost, 0, "auto")


@dataclass
class FedPrimeOfficialOptions(FedPrimeOptions):
    """The official code's behaviour (methods.md §2x), option by option. Two settings only mean
    something under the cyclic schedule this method runs with:

    - alias_shared: the code's server writes the same tensor objects (pooler, head, intra and
      inter prompts) into every client, which then train them in place one after another; so the
      server's FedAvg averages identical tensors and the matcher gets identical copies of every
      used inter prompt. The aggregator reproduces that by taking the last client's result.
    - parallel_first_round: in round 1 each client still trains its own deep copy of the initial
      model (the aliasing starts with the first aggregation).
    """

    retrieval_sign: str = "push"
    selection: str = "batch"
    batch_size: int | None = 512
    batch_size_both: int | None = 64
    query_padding: str = "pad"
    query_update: str = "sgd"
    query_lr: float = 0.05
    global_query: str = "initial"
    optimizer: str = "sgd"
    lr: float | None = 0.05
    used_record: str = "last_batch"
    server_used: bool = True
    matcher_cost: str = "official"
    new_cluster_cost: float | str | None = None
    standardise: bool = False
    centre_update: str = "matcher"
    alias_shared: bool = True
    parallel_first_round: bool = True
