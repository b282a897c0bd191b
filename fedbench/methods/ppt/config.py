"""PPT's options (methods.md §3), with fedbench's defaults where paper, code and the risks list
leave room. Each choice that departs from the official code (PeiYauWeng/PFPT) is a named option;
``ppt-official`` is the same method with every one of them set to the code's behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedbench import checks
from fedbench.aggregation.matched_centres import MatcherOptions
from fedbench.errors import ConfigError

SELECTIONS = ("sample", "batch")
SIGNS = ("pull", "push")
NEW_CENTRE = ("auto", "drift", "fixed", "none")


@dataclass
class PPTOptions(MatcherOptions):
    """Settings of PPT's client model and server.

    pool_size: prompts in the L2P pool at round 0 (PFPT 20); later the server's matching sets it.
    kappa: prompts retrieved per sample, one token each (PFPT ``n_tokens`` = top_k = 10).
    lambda_r: weight of the query-key term (PFPT ``reduce_sim_scalar`` 0.01).
    retrieval_sign: "pull" adds lambda_r * (kappa - S), S = summed cosine of query and retrieved
        keys, pulling queries towards their keys (L2P's intent); "push" is the code's +lambda_r * S.
    selection: "sample": each sample its own top-kappa, so a test prediction does not depend on
        its batch; "batch": the code's batch-wise majority (``batchwise_prompt=True``).
    adaptor_width, adaptor_dropout: the adaptor head (PFPT 512, 0.5).
    outer_loops, matcher_hidden, matcher_lr: the probabilistic matcher (PFPT 50, 128, Adam 1e-3).
    matcher_cost: "joint" (fedbench's exact joint likelihood) or "official" (the code's Bernoulli
        term); see aggregation/prob_matching.py.
    new_centre: the price of opening a global prompt: "fixed" (``new_centre_cost`` nats per prompt
        dimension, on standardised prompts), "auto" (calibrated from the prompts' own spread,
        aggregation/matching_calibration.py) or "none" (no price: with matcher_cost "official"
        that is PFPT's matcher, which hardly ever merges, risk 17). Two fields rather than one
        because option types are checked against their defaults. Why "fixed": on the clients'
        pools of real PPT rounds (emoji, imbalanced, 5 clients, 18 used rows) each client's copy
        of a prompt had drifted by about half the distance to the nearest other prompt (median
        0.36 against 0.66); "fixed" returned the 18 prompts with every client's copies merged
        (rounds 1 and 2), "auto" 33 centres with 15 of the 18 rows split, the official matcher
        32; over the 8 rounds of the quick bench "auto" grew the pool to 206-534 (three
        partitions), "fixed" went from 18 down to 10 (imbalanced). "drift": the calibrated price
        with its radius from the clients' own updates, twice the largest client's median squared
        update of the rows it trained (matching_calibration.update_radius), so that copies of a
        prompt that clients moved independently merge however close the prompts have come. Over
        80 rounds at 5e-3 "fixed" let the pool collapse onto one direction and then multiply to
        thousands of prompts (docs/ppt.md section 4); "drift" targets that, measured there.
    new_centre_cost: the "fixed" price per dimension (FedPrime's measured 2.0 on RMS-unit prompts).
    standardise: run the matcher on standardised prompts (centred, divided by their RMS; "auto"
        implies it): prompts at their U(-0.04, 0.04) init scale sit far below the matcher's
        unit-scale std, and its Gaussian then cannot tell them apart (prob_matching.py).
    centre_update: "mean": each returned global prompt is the sample-weighted mean of the local
        prompts matched to it (FedAvg when every client's copy lands in one centre); "matcher":
        the matcher's own centres, as the code.
    eval_vote_batch: with selection "batch", evaluation votes over consecutive chunks of this many
        samples of an evaluation batch (None: the whole batch). The code evaluates on its test
        loader's batches, the training batch size (16: ``main.py:133``, ``--batch 16`` in every
        ``run_*.sh``), so a prediction depends on the 15 test samples beside it.
    alias_shared: the code's aliasing of the prompt pool (``Algo/communication.py:98-101``): after
        the first aggregation the server's and every client slot's ``pool.prompt`` are Parameters
        over one tensor, so from round 2 the round's clients train one pool one after another
        (each with its own fresh Adam, from the global query projection and head) and the matcher
        receives identical copies of the last client's pool. Round 1 trains separate copies
        (``Scenario.py:19-22`` deep-copies the server model). Needs the cyclic schedule
        (``ppt-official``); query projection and head stay real FedAvg of the clients' copies
        (``communication.py:66-75`` copies them, it does not alias them).
    """

    pool_size: int = 20
    kappa: int = 10
    lambda_r: float = 0.01
    retrieval_sign: str = "pull"
    selection: str = "sample"
    adaptor_width: int = 512
    adaptor_dropout: float = 0.5
    new_centre: str = "fixed"
    new_centre_cost: float = 2.0
    eval_vote_batch: int | None = None
    alias_shared: bool = False

    TEST_OPTIONS = {"pool_size": 6, "kappa": 2, "adaptor_width": 16, "outer_loops": 2, "matcher_hidden": 8}
    # options added after records existed, at the value that keeps the earlier behaviour
    # (federation.resolve.neutral_dropped)
    IDENTITY_NEUTRAL = {"eval_vote_batch": None, "alias_shared": False}

    def validate(self) -> None:
        checks.at_least("method.options.kappa", self.kappa, 1, "10")
        if self.pool_size < self.kappa:
            raise ConfigError(
                f"method.options.pool_size: must be >= kappa ({self.kappa}), got {self.pool_size}; try 20"
            )
        checks.at_least("method.options.lambda_r", self.lambda_r, 0, "0.01")
        checks.choice("method.options.retrieval_sign", self.retrieval_sign, SIGNS)
        checks.choice("method.options.selection", self.selection, SELECTIONS)
        checks.choice("method.options.new_centre", self.new_centre, NEW_CENTRE)
        checks.at_least("method.options.adaptor_width", self.adaptor_width, 1, "512")
        checks.within(
            "method.options.adaptor_dropout", self.adaptor_dropout, 0.0, 1.0, open_hi=True, hint="0.5"
        )
        self.check_matcher()
        checks.at_least(
            "method.options.eval_vote_batch", self.eval_vote_batch, 1, "16", null="the whole batch"
        )
        checks.at_least("method.options.new_centre_cost", self.new_centre_cost, 0, "2.0")

    def new_centre_price(self) -> float | str | None:
        return {"auto": "auto", "drift": "auto", "fixed": self.new_centre_cost, "none": None}[self.new_centre]


@dataclass
class PPTOfficialOptions(PPTOptions):
    """PPT as the released code runs it: batch-wise majority selection (votes over test batches of
    16), +lambda_r * S, the code's Bernoulli cost with no new-centre price, no standardisation,
    the matcher's own centres, and the prompt pool aliased across the round's clients."""

    retrieval_sign: str = "push"
    selection: str = "batch"
    matcher_cost: str = "official"
    new_centre: str = "none"
    standardise: bool = False
    centre_update: str = "matcher"
    eval_vote_batch: int | None = 16
    alias_shared: bool = True
